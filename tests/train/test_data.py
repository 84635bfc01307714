"""Dataset and augmentation: shapes, ranges, reproducibility, colour matching, splits."""

from __future__ import annotations

import torch

from facedub.faceset import load_faceset
from facedub.train.config import AugmentConfig
from facedub.train.data import Sampler, colour_stats, geometry, load_identity, make_batch, split_indices, val_batch


def _load(two_facesets, size=32):
    a, b = two_facesets
    return (
        load_identity("source", load_faceset(a), a, size, 0.6875),
        load_identity("target", load_faceset(b), b, size, 0.6875),
    )


def test_split_and_geometry():
    tr, va = split_indices(40)
    assert len(va) == 4 and not set(tr) & set(va) and len(tr) + len(va) == 40
    assert split_indices(1000)[1].__len__() == 64
    ctx, cov = geometry(64, 0.6875)
    assert ctx == 80 and abs(cov - 0.6875 * 80 / 64) < 1e-9
    ctx, cov = geometry(64, 1.0)  # no room for a margin
    assert ctx == 64 and cov == 1.0


def test_identity_tensors(two_facesets):
    src, tgt = _load(two_facesets)
    assert src.train.dtype == torch.uint8 and src.train.shape == (36, 5, 40, 40)
    assert src.val.shape == (4, 5, 32, 32)
    x, fm, em = val_batch(src)
    assert x.shape == (4, 3, 32, 32) and 0.2 < fm.mean() < 0.9 and 0 < em.mean() < fm.mean()


def test_batches_are_reproducible_and_in_range(two_facesets):
    src, tgt = _load(two_facesets)
    idx = torch.arange(8)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    b1 = make_batch(src, tgt, idx, 32, AugmentConfig(), g1)
    b2 = make_batch(src, tgt, idx, 32, AugmentConfig(), g2)
    for t1, t2 in zip(b1, b2):
        assert torch.equal(t1, t2)
    inp, target, fm, em = b1
    assert inp.shape == target.shape == (8, 3, 32, 32) and fm.shape == em.shape == (8, 1, 32, 32)
    assert inp.min() >= 0 and inp.max() <= 1
    assert (inp - target).abs().mean() > 0.005  # the warp moved pixels
    b3 = make_batch(src, tgt, idx, 32, AugmentConfig(), g1)
    assert not torch.equal(b3[0], b1[0])  # the stream moves on


def test_no_augmentation_gives_the_plain_crop(two_facesets):
    src, tgt = _load(two_facesets)
    off = AugmentConfig(warp=False, rotate_deg=0, zoom=0, shift=0, flip=False, colour=False, colour_match=0)
    idx = torch.arange(4)
    inp, target, _, _ = make_batch(src, tgt, idx, 32, off, torch.Generator().manual_seed(0))
    torch.testing.assert_close(inp, target)
    m = (40 - 32) // 2
    plain = src.train[idx, :3, m : m + 32, m : m + 32].float() / 255
    torch.testing.assert_close(target, plain, atol=1e-5, rtol=0)


def test_colour_match_moves_statistics_to_the_other_identity(two_facesets):
    src, tgt = _load(two_facesets)
    only = AugmentConfig(warp=False, rotate_deg=0, zoom=0, shift=0, flip=False, colour=False, colour_match=1.0)
    idx = torch.arange(16)
    _, target, fm, _ = make_batch(src, tgt, idx, 32, only, torch.Generator().manual_seed(0))
    before, _ = colour_stats(src.train[idx, :3].float() / 255, src.train[idx, 3:4].float() / 255)
    after, _ = colour_stats(target, fm)
    other = tgt.col_mean.mean(0)
    assert (after.mean(0) - other).abs().sum() < 0.5 * (before.mean(0) - other).abs().sum()


def test_sampler_state_roundtrip():
    s = Sampler({"source": 10, "target": 7}, seed=5)
    for _ in range(3):
        s.take("source", 4)
        s.take("target", 4)
    t, js = s.state()
    s2 = Sampler({"source": 10, "target": 7}, seed=99)
    s2.load_state(t, js)
    for _ in range(5):
        assert torch.equal(s.take("source", 4), s2.take("source", 4))
        assert torch.equal(s.take("target", 9), s2.take("target", 9))
    # every face is seen once per pass
    s3 = Sampler({"source": 10}, seed=0)
    assert sorted(s3.take("source", 10).tolist()) == list(range(10))


def test_context_view_is_the_exact_crop_to_model_geometry():
    """The model square inside a training context is where crop_to_model_matrix puts it, also
    where inner_cut rounds the context and the model square differently (128 px at 0.875)."""
    import numpy as np

    from facedub.faces.align import crop_to_model_matrix, invert_affine, transform_points
    from facedub.train.data import context_view

    size, cov = 128, 0.875
    ctx, ctx_cov = geometry(size, cov)
    k, off = context_view(size, cov, ctx, ctx_cov)
    assert abs(k - size / ctx) > 1e-3  # the old centred size/C square was off here
    # Model pixel centres → context pixels, by the normalised map and by the two matrices.
    xs = np.array([0.0, 17.0, size - 1.0])
    u = (2 * xs + 1) / size - 1
    by_view = ((k * u + off + 1) * ctx - 1) / 2
    model_to_crop = invert_affine(crop_to_model_matrix(cov, size))
    pts = transform_points(np.stack([xs, xs], 1), model_to_crop)
    by_matrix = transform_points(pts, crop_to_model_matrix(ctx_cov, ctx))[:, 0]
    np.testing.assert_allclose(by_view, by_matrix, atol=1e-9)


def test_training_loss_mask_matches_converts_mask(two_facesets):
    """The face-hull mask training weighs its loss with and the hull convert pastes inside, for
    the same face's landmarks, cover the same model pixels."""
    import numpy as np

    from facedub.convert import mask as mask_mod
    from facedub.faces.align import face_outline, model_matrix, transform_points

    a, b = two_facesets
    size, cov = 128, 0.875  # inner_cut rounds the context and the model square differently here
    fs = load_faceset(a)
    src = load_identity("source", fs, a, size, cov)
    _, hull, _ = val_batch(src)
    recs = {f.file: f for f in fs.faces}
    for i, name in enumerate(src.val_files):
        rec = recs[name]
        m = model_matrix(rec.affine_array(), cov, size)
        conv = mask_mod.hull_mask(transform_points(face_outline(rec.landmarks_array(), 0.2), m), (size, size)) > 0.5
        train = hull[i, 0].numpy() > 0.5
        iou = (conv & train).sum() / (conv | train).sum()
        assert iou > 0.95, (name, iou)
        # Same place, not only the same amount: centroids within a third of a pixel.
        cy, cx = np.argwhere(conv).mean(0)
        ty, tx = np.argwhere(train).mean(0)
        assert abs(cy - ty) < 0.34 and abs(cx - tx) < 0.34
