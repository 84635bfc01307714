"""Losses, plateau hint, preview grid and loss curve."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from facedub.model import default_config
from facedub.train.losses import reconstruction_loss, ssim
from facedub.train.preview import plateaued, preview_grid, write_loss_curve, write_preview


def test_ssim_bounds():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(a, a), torch.ones(2), atol=1e-5)
    assert (ssim(a, torch.rand(2, 3, 32, 32)) < 0.2).all()
    assert ssim(a, (a + 0.05 * torch.randn_like(a)).clamp(0, 1)).min() > ssim(a, torch.rand_like(a)).max()


def test_eye_mouth_weighting_counts_errors_there_more():
    cfg = default_config("lite")  # eye_mouth_weight 2
    tgt = torch.zeros(1, 3, 16, 16)
    em = torch.zeros(1, 1, 16, 16)
    em[..., :4, :4] = 1
    err_in = tgt.clone()
    err_in[..., :4, :4] = 0.5
    err_out = tgt.clone()
    err_out[..., 8:12, 8:12] = 0.5
    l1 = cfg.__class__(**{**cfg.to_dict(), "dssim_weight": 0.0})
    assert reconstruction_loss(err_in, tgt, l1, em) > 2 * reconstruction_loss(err_out, tgt, l1, em)
    assert torch.isclose(reconstruction_loss(err_in, tgt, l1), reconstruction_loss(err_out, tgt, l1))


def test_mask_loss_only_with_mask():
    cfg = default_config("hd")
    x = torch.rand(1, 3, 16, 16)
    fm = torch.ones(1, 1, 16, 16)
    base = reconstruction_loss(x, x, cfg)
    assert base < 1e-4
    assert reconstruction_loss(x, x, cfg, pred_mask=torch.zeros(1, 1, 16, 16), face_mask=fm) > 0.4


def test_plateaued():
    assert not plateaued([1.0, 0.9, 0.8])
    falling = [1.0 * 0.9**i for i in range(12)]
    assert not plateaued(falling)
    flat = falling + [falling[-1] * 1.001] * 5
    assert plateaued(flat)
    assert not plateaued(flat[:-1])  # the window is not yet full of flat checks


def test_preview_grid_and_curve(tmp_path):
    x = torch.rand(3, 3, 32, 32)
    rows = [(f"r{i}", x, 1 - x) for i in range(4)]
    g = preview_grid(rows, scale=2)
    assert g.shape[0] == 4 * (64 + 4) and g.dtype == np.uint8
    write_preview(tmp_path / "p.png", rows)
    assert Image.open(tmp_path / "p.png").size[1] == 4 * (64 + 4)
    write_loss_curve(
        tmp_path / "loss.png",
        {"step": [10, 20, 30], "source": [1, 0.5, 0.4], "target": [1, 0.6, 0.5], "val_step": [30], "val_source": [0.45], "val_target": [0.55]},
    )
    assert Image.open(tmp_path / "loss.png").size == (700, 400)


def test_preview_grid_rows_of_different_lengths():
    # Validation slices of different sizes (a face removed from one faceset only).
    a, b = torch.zeros(4, 3, 16, 16), torch.ones(2, 3, 16, 16)
    g = preview_grid([("t->t", a, a), ("s->s", b, b)], scale=1)
    label_w = 110
    assert g.shape[1] == label_w + 4 * (2 * 16 + 4)
    row2 = g[16 + 4 : 2 * 16 + 4]
    assert row2[:, label_w : label_w + 16].min() == 255  # the second row's first face is drawn
    assert row2[:, label_w + 2 * (2 * 16 + 4) :].max() == 32  # and its missing faces leave background


def test_preview_tints_what_the_loss_ignores():
    from facedub.train.preview import IGNORED_TINT

    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16) * 0.5
    keep = torch.ones(2, 1, 16, 16)
    keep[:, :, 4:9, 3:7] = 0  # the part of each face an occluder hides
    plain = preview_grid([("t->t", x, x, None), ("s->s", x, x)], scale=1)
    tinted = preview_grid([("t->t", x, x, keep), ("s->s", x, x)], scale=1)
    assert plain.shape == tinted.shape
    label_w = 110
    changed = np.abs(tinted.astype(int) - plain.astype(int)).max(2) > 0
    changed[:, :label_w] = False  # the legend line is allowed to differ
    expect = np.zeros_like(changed)
    for i in range(2):  # the first row's input panels, inside the hidden box
        x0 = label_w + i * (2 * 16 + 4)
        expect[4:9, x0 + 3 : x0 + 7] = True
    assert np.array_equal(changed, expect)  # exactly there, nowhere else (outputs and other rows untouched)
    px = tinted[5, label_w + 4].astype(int)
    assert px[0] > px[1] and px[2] > px[1]  # magenta
    assert np.abs(px - np.asarray(IGNORED_TINT)).max() < np.abs(plain[5, label_w + 4].astype(int) - np.asarray(IGNORED_TINT)).max()


def test_with_a_keep_mask_the_learned_mask_learns_the_visible_face():
    cfg = default_config("hd")
    x = torch.rand(1, 3, 16, 16)
    hull = torch.ones(1, 1, 16, 16)
    keep = torch.ones(1, 1, 16, 16)
    keep[..., 4:10, 4:10] = 0  # an occluder over the face
    visible = hull * keep
    assert reconstruction_loss(x, x, cfg, pred_mask=visible, face_mask=hull, keep=keep) < 1e-4
    assert reconstruction_loss(x, x, cfg, pred_mask=hull, face_mask=hull, keep=keep) > 0.05  # the hull is no longer the goal
    assert reconstruction_loss(x, x, cfg, pred_mask=hull, face_mask=hull) < 1e-4  # without occlusion it is
