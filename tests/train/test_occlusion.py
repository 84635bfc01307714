"""Occlusion-aware training: pixels the occlusion network finds hidden carry no loss; masks are cached."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facedub.convert import occlusion as occ_mod
from facedub.faceset import load_faceset
from facedub.model import default_config
from facedub.train import TrainConfig, train
from facedub.train import occlusion as tocc
from facedub.train.config import AugmentConfig
from facedub.train.data import load_identity, training_batch, val_keep
from facedub.train.losses import reconstruction_loss

# The pasted occluder: a box over the left cheek, in 256 px crop pixels.
BOX = (88, 118, 126, 168)  # x0, y0, x1, y1 (inside the face outline of every drawn face)


def _paste(folder: Path, colour: tuple[int, int, int]) -> None:
    from PIL import Image

    x0, y0, x1, y1 = BOX
    for p in sorted((folder / "faces").glob("*.png")):
        a = np.asarray(Image.open(p).convert("RGB")).copy()
        a[y0:y1, x0:x1] = colour
        Image.fromarray(a).save(p)


@pytest.fixture(scope="module")
def occluded(tmp_path_factory, fakefaces):
    """Two facesets whose every face has the same box pasted over it, and a copy of the source
    whose box has another colour (the same faces otherwise)."""
    root = tmp_path_factory.mktemp("occluded")
    a = fakefaces.make_faceset(root / "alice", "alice", n=30, seed=0)
    b = fakefaces.make_faceset(root / "bob", "bob", n=30, seed=1)
    a2 = fakefaces.make_faceset(root / "alice2", "alice", n=30, seed=0)
    _paste(a, (90, 90, 90))
    _paste(b, (90, 90, 90))
    _paste(a2, (250, 20, 200))
    return a, b, a2


class KnownMask:
    """Stands in for the occlusion network: the face is visible everywhere except the pasted box."""

    def __init__(self) -> None:
        self.size, self.coverage, self.calls = occ_mod.SEG_SIZE, occ_mod.SEG_COVERAGE, 0
        m = occ_mod.seg_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), self.size, self.coverage)
        yy, xx = np.mgrid[0 : self.size, 0 : self.size].astype(np.float64)
        # seg pixel → crop pixel
        cx, cy = (xx - m[0, 2]) / m[0, 0], (yy - m[1, 2]) / m[1, 1]
        x0, y0, x1, y1 = BOX
        self.map = np.where((cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1), 0.0, 1.0).astype(np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += len(batch)
        return np.repeat(self.map[None], len(batch), 0)


def _source(tmp_path: Path, net: KnownMask) -> tocc.MapSource:
    return tocc.MapSource(cache=tmp_path / "cache", loader=lambda path: net)


def _box_in_model(size: int, coverage: float) -> tuple[slice, slice]:
    """The pasted box in model pixels, shrunk by two pixels (resampling blurs its edge)."""
    from facedub.faces.align import crop_to_model_matrix

    m = crop_to_model_matrix(coverage, size)
    x0, y0, x1, y1 = BOX
    c = lambda v, k: int(np.ceil(v * m[k, k] + m[k, 2]))  # noqa: E731
    return slice(c(y0, 1) + 2, c(y1, 1) - 3), slice(c(x0, 0) + 2, c(x1, 0) - 3)


def test_keep_mask_is_zero_on_the_known_occluder_and_cached(occluded, tmp_path):
    a, _, _ = occluded
    net = KnownMask()
    d = load_identity("source", load_faceset(a), a, 32, 0.875, _source(tmp_path, net))
    assert d.train.shape[1] == 6 and net.calls == 30
    keep = val_keep(d)
    ys, xs = _box_in_model(32, 0.875)
    assert keep[:, 0, ys, xs].max() == 0  # the box carries no loss
    assert keep.mean() > 0.85  # and the rest of the face does
    assert 0.05 < d.occlusion["hidden_share"] < 0.4 and d.occlusion["computed"] == 30
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 30
    # Again: every map comes from the cache, the network is not asked, the masks are the same.
    again = load_identity("source", load_faceset(a), a, 32, 0.875, _source(tmp_path, net))
    assert net.calls == 30 and again.occlusion["computed"] == 0
    assert torch.equal(again.train, d.train)
    # Another model size uses the same cached maps.
    load_identity("source", load_faceset(a), a, 48, 0.875, _source(tmp_path, net))
    assert net.calls == 30


def test_a_new_crop_or_new_weights_is_a_new_key(occluded, tmp_path):
    a, _, a2 = occluded
    net = KnownMask()
    load_identity("source", load_faceset(a), a, 32, 0.875, _source(tmp_path, net))
    load_identity("source", load_faceset(a2), a2, 32, 0.875, _source(tmp_path, net))  # other pixels in the box
    assert net.calls == 60
    w = tmp_path / "other.safetensors"
    w.write_bytes(occ_mod.WEIGHTS.read_bytes() + b"")
    w.write_bytes(w.read_bytes()[:-1] + bytes([w.read_bytes()[-1] ^ 1]))  # a byte changed: another weights hash
    tocc.MapSource(w, cache=tmp_path / "cache", loader=lambda path: net).visible_maps(
        [np.zeros((256, 256, 3), np.uint8)], ["k" * 64]
    )
    assert net.calls == 61 and len({p.parent for p in (tmp_path / "cache").rglob("*.png")}) == 2


def _batches(occluded, tmp_path, occlusion: bool):
    a, b, a2 = occluded
    net = KnownMask()
    src = _source(tmp_path, net) if occlusion else None
    d1 = load_identity("source", load_faceset(a), a, 32, 0.875, src)
    d2 = load_identity("source", load_faceset(a2), a2, 32, 0.875, src)
    other = load_identity("target", load_faceset(b), b, 32, 0.875, src)
    idx = torch.arange(8)
    aug = AugmentConfig()  # warp, rotation, zoom, shift, flip and colour all on
    b1 = training_batch(d1, other, idx, 32, aug, torch.Generator().manual_seed(3))
    b2 = training_batch(d2, other, idx, 32, aug, torch.Generator().manual_seed(3))
    return b1, b2


@pytest.mark.parametrize("occlusion", [True, False])
def test_occluded_pixels_carry_no_loss_only_with_occlusion(occluded, tmp_path, occlusion):
    (x1, y1, f1, e1, k1), (x2, y2, f2, e2, k2) = _batches(occluded, tmp_path, occlusion)
    assert torch.equal(f1, f2) and torch.equal(e1, e2)
    differs = (y1 - y2).abs().amax(1, keepdim=True) > 1e-6  # where the occluder's colour shows in the target
    assert differs.float().mean() > 0.02
    cfg = default_config("hd", size=32, width=0.125, dense=32)  # L1 + DSSIM + eyes/mouth + mask loss
    torch.manual_seed(0)
    pred = torch.rand_like(y1).requires_grad_(True)
    pmask = torch.rand_like(f1)
    loss1 = reconstruction_loss(pred, y1, cfg, e1, pmask, f1, k1)
    (g,) = torch.autograd.grad(loss1, pred)
    loss2 = reconstruction_loss(pred, y2, cfg, e2, pmask, f2, k2)
    g_occ = g.abs().amax(1, keepdim=True)[differs]
    if occlusion:
        assert k1 is not None and torch.equal(k1, k2)
        assert (k1[differs] == 0).all()  # every pixel the occluder reaches carries no loss
        assert float(g_occ.abs().max()) == 0.0  # no gradient there
        assert float(loss1.detach()) == pytest.approx(float(loss2.detach()), rel=1e-6, abs=1e-7)  # another occluder: the same loss
        assert float(g.abs().amax(1, keepdim=True)[k1 > 0.99].abs().mean()) > 0  # the rest of the face still teaches
    else:
        assert k1 is None
        assert float(g_occ.abs().min()) > 0  # every occluder pixel pulls on the decoder
        assert abs(float(loss1.detach()) - float(loss2.detach())) > 1e-3


def _cfg(fs, out, **kw) -> TrainConfig:
    a, b = fs
    base = dict(
        source=str(a), target=str(b), out=str(out), arch="lite", width=0.25, size=32, batch_size=6, lr=1e-3,
        steps=6, preview_every=0, save_every=0, precision="fp32", seed=0, threads=1, occlusion="auto",
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture()
def stub_net(monkeypatch, tmp_path):
    net = KnownMask()
    monkeypatch.setattr(occ_mod, "load_occlusion", lambda path=None: net)
    monkeypatch.setattr(tocc, "cache_root", lambda: tmp_path / "cache")
    return net


def test_training_with_occlusion_records_it_and_reuses_the_cache(occluded, tmp_path, stub_net):
    from facedub.progress import RecordingReporter

    a, b, _ = occluded
    rep = RecordingReporter()
    s = train(_cfg((a, b), tmp_path / "on", steps=3, preview_every=3), rep)
    assert s.step == 3 and stub_net.calls == 60
    meta = json.loads((tmp_path / "on" / "model.json").read_text())
    assert meta["train"]["occlusion"] == "auto"
    assert meta["facesets"]["source"]["occlusion"]["computed"] == 30
    assert any("occlusion (source)" in n for n in rep.notes)
    train(_cfg((a, b), tmp_path / "on2", steps=1))
    assert stub_net.calls == 60  # the second run computes nothing
    off = train(_cfg((a, b), tmp_path / "off", steps=3, occlusion="off"))
    assert off.loss_source != pytest.approx(s.loss_source, rel=1e-6)  # the mask changes what is learned


def test_resume_with_occlusion_matches_unbroken_run(occluded, tmp_path, stub_net):
    from safetensors.torch import load_file

    a, b, _ = occluded
    train(_cfg((a, b), tmp_path / "u", steps=6))
    train(_cfg((a, b), tmp_path / "r", steps=2))
    r = train(_cfg((a, b), tmp_path / "r", steps=4, resume=True))
    assert r.step == 6
    wu, wr = load_file(str(tmp_path / "u" / "weights.safetensors")), load_file(str(tmp_path / "r" / "weights.safetensors"))
    assert wu.keys() == wr.keys() and all(torch.equal(wu[k], wr[k]) for k in wu)


def test_shipped_network_maps_are_cached_once(occluded, tmp_path):
    a, _, _ = occluded
    src = tocc.MapSource(cache=tmp_path / "cache")
    d = load_identity("source", load_faceset(a), a, 32, 0.875, src)
    assert src.computed == 30 and d.train.shape[1] == 6
    files = sorted((tmp_path / "cache").rglob("*.png"))
    assert len(files) == 30 and files[0].parent.name == src.weights_sha[:16]
    from PIL import Image

    assert Image.open(files[0]).size == (occ_mod.SEG_SIZE, occ_mod.SEG_SIZE) and Image.open(files[0]).mode == "L"
    src2 = tocc.MapSource(cache=tmp_path / "cache")
    d2 = load_identity("source", load_faceset(a), a, 32, 0.875, src2)
    assert src2.computed == 0 and src2._model is None  # not even loaded
    assert torch.equal(d.train, d2.train)


def test_bad_occlusion_option_is_one_line(occluded, tmp_path):
    from facedub.errors import BadInput

    a, b, _ = occluded
    with pytest.raises(BadInput, match="--occlusion 'on'"):
        train(_cfg((a, b), tmp_path / "x", occlusion="on"))
    assert not (tmp_path / "x").exists()


def test_training_preview_shows_the_ignored_pixels(occluded, tmp_path, stub_net):
    from PIL import Image

    a, b, _ = occluded
    on = train(_cfg((a, b), tmp_path / "on", steps=2, preview_every=2))
    off = train(_cfg((a, b), tmp_path / "off", steps=2, preview_every=2, occlusion="off"))
    p_on = np.asarray(Image.open(on.previews[-1]).convert("RGB")).astype(int)
    p_off = np.asarray(Image.open(off.previews[-1]).convert("RGB")).astype(int)
    assert p_on.shape == p_off.shape
    # Same seed, same batches: the first steps' weights differ only through the masked loss, so
    # compare the input panels (the faces themselves, which do not depend on the weights).
    s2, gap, label_w = 64, 4, 110  # 32 px faces drawn at twice their size
    ys, xs = _box_in_model(32, 0.875)
    inp_on = p_on[: s2, label_w : label_w + s2]
    inp_off = p_off[: s2, label_w : label_w + s2]
    diff = np.abs(inp_on - inp_off).max(2) > 0
    box = np.zeros_like(diff)
    box[2 * ys.start : 2 * ys.stop, 2 * xs.start : 2 * xs.stop] = True
    assert diff[box].all()  # the occluder is tinted
    assert diff.mean() < 0.35  # and most of the face is not
    assert (inp_on[box][:, 0] > inp_on[box][:, 1]).all()  # magenta over the grey box
