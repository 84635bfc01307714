"""Training recipe options (issue 21): weight averaging, learning-rate schedule, the warp left out
at the end, eye/mouth and high-frequency loss weights — exact resume still holds."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from facedub.errors import BadInput, ModelMismatch
from facedub.model.checkpoint import OPTIMIZER, WEIGHTS
from facedub.model.registry import default_config
from facedub.train import AugmentConfig, train
from facedub.train.losses import high_band, reconstruction_loss


from tests.train.test_train_loop import _cfg  # the same tiny lite run as the loop's tests


def test_ema_and_loss_weights_resume_exactly(two_facesets, tmp_path):
    kw = dict(ema=0.9, hf_weight=1.0, eye_mouth_weight=4.0)
    train(_cfg(two_facesets, tmp_path / "u", steps=10, **kw))
    train(_cfg(two_facesets, tmp_path / "r", steps=4, **kw))
    train(_cfg(two_facesets, tmp_path / "r", steps=6, resume=True, ema=0.9))  # loss weights come from the model
    wu, wr = load_file(str(tmp_path / "u" / WEIGHTS)), load_file(str(tmp_path / "r" / WEIGHTS))
    for k in wu:
        assert torch.equal(wu[k], wr[k]), k
    meta = json.loads((tmp_path / "u" / "model.json").read_text())
    assert meta["config"]["hf_weight"] == 1.0 and meta["config"]["eye_mouth_weight"] == 4.0 and meta["train"]["ema"] == 0.9
    # The saved weights are the average; the raw ones travel in the training state and differ.
    raw = {k[4:]: v for k, v in load_file(str(tmp_path / "u" / OPTIMIZER)).items() if k.startswith("raw.")}
    assert raw.keys() == wu.keys()
    assert any(not torch.equal(raw[k], wu[k]) for k in wu if wu[k].is_floating_point())


def test_resume_refuses_other_loss_weights(two_facesets, tmp_path):
    train(_cfg(two_facesets, tmp_path / "m", steps=2, hf_weight=1.0))
    with pytest.raises(ModelMismatch, match="hf_weight=1.0"):
        train(_cfg(two_facesets, tmp_path / "m", steps=2, resume=True, hf_weight=2.0))


def test_warp_off_for_the_whole_session_equals_no_warp(two_facesets, tmp_path):
    """The warp's random draws are taken either way, so leaving it out changes only the warp."""
    train(_cfg(two_facesets, tmp_path / "a", steps=4, augment=AugmentConfig(warp_off_share=1.0)))
    train(_cfg(two_facesets, tmp_path / "b", steps=4, augment=AugmentConfig(warp=False)))
    train(_cfg(two_facesets, tmp_path / "c", steps=4))
    wa, wb, wc = (load_file(str(tmp_path / n / WEIGHTS)) for n in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_cosine_schedule_changes_the_run_and_is_recorded(two_facesets, tmp_path):
    train(_cfg(two_facesets, tmp_path / "c", steps=4, lr_schedule="cosine", warmup_steps=2))
    train(_cfg(two_facesets, tmp_path / "k", steps=4))
    wc, wk = (load_file(str(tmp_path / n / WEIGHTS)) for n in "ck")
    assert any(not torch.equal(wc[k], wk[k]) for k in wc)
    meta = json.loads((tmp_path / "c" / "model.json").read_text())
    assert meta["train"]["lr_schedule"] == "cosine" and meta["train"]["warmup_steps"] == 2


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(ema=1.0), "--ema"),
        (dict(lr_schedule="step"), "--lr-schedule"),
        (dict(warmup_steps=-1), "--warmup-steps"),
        (dict(hf_weight=-1.0), "--hf-weight"),
        (dict(augment=AugmentConfig(warp_off_share=1.5)), "--warp-off-share"),
    ],
)
def test_bad_recipe_options_are_one_line_errors(two_facesets, tmp_path, kw, match):
    with pytest.raises(BadInput, match=match):
        train(_cfg(two_facesets, tmp_path / "m", **kw))
    assert not (tmp_path / "m").exists()


def test_high_band_loss_pays_for_edges_only():
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert float(high_band(flat).abs().max()) < 1e-6
    edge = flat.clone()
    edge[..., 16:] = 0.9
    blurred = torch.nn.functional.avg_pool2d(edge, 5, stride=1, padding=2, count_include_pad=False)
    cfg = default_config("lite")
    plain = reconstruction_loss(blurred, edge, cfg)
    with_hf = reconstruction_loss(blurred, edge, replace(cfg, hf_weight=2.0))
    assert float(with_hf) > float(plain) + 1e-4
    assert float(reconstruction_loss(edge, edge, replace(cfg, hf_weight=2.0))) < 1e-6
