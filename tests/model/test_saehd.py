"""``saehd``: the 256 px model for CUDA users, on tiny configs here (a gpu-marked test trains it on CUDA)."""

from __future__ import annotations

import json

import pytest
import torch

from facedub.errors import ModelMismatch
from facedub.model import build_model, default_config, load_model
from facedub.model.checkpoint import WEIGHTS, save_checkpoint
from facedub.train.losses import reconstruction_loss

TINY = dict(size=64, e_dims=8, ae_dims=32, d_dims=8, d_mask_dims=4)


def test_defaults_are_256_px_with_a_mask_head_and_the_shared_losses():
    cfg = default_config("saehd")
    assert (cfg.size, cfg.double_res, cfg.learned_mask) == (256, True, True)
    assert cfg.l1_weight > 0 and cfg.dssim_weight > 0 and cfg.eye_mouth_weight > 0 and cfg.mask_weight > 0


@pytest.mark.parametrize("double_res", [True, False])
def test_256_px_shapes_with_narrow_dims(double_res):
    torch.manual_seed(0)
    cfg = default_config("saehd", width=1 / 16, double_res=double_res)  # the 256 px geometry, 1/16 of the channels
    net = build_model("saehd", cfg).eval()
    with torch.no_grad():
        rgb, mask = net(torch.rand(1, 3, 256, 256), "target")
    assert rgb.shape == (1, 3, 256, 256) and mask.shape == (1, 1, 256, 256)
    assert 0 <= float(rgb.min()) and float(rgb.max()) <= 1 and 0 <= float(mask.min()) and float(mask.max()) <= 1
    # the RGB decoder stops at half the side with double_res; the mask head always reaches the full side
    body = net.decoders["source"].body
    with torch.no_grad():
        half = body(net.encoder(torch.rand(1, 3, 256, 256)))
    assert half.shape[-1] == (128 if double_res else 256)


def test_size_and_dims_are_configurable_and_checked():
    a = build_model("saehd", default_config("saehd", **TINY))
    b = build_model("saehd", default_config("saehd", **{**TINY, "d_dims": 16}))
    assert sum(p.numel() for p in b.parameters()) > sum(p.numel() for p in a.parameters())
    no_mask = build_model("saehd", default_config("saehd", **TINY, learned_mask=False))
    assert no_mask(torch.rand(1, 3, 64, 64), "source")[1] is None
    with pytest.raises(ModelMismatch, match="multiple of 32 with double_res"):
        build_model("saehd", default_config("saehd", **{**TINY, "size": 80}))
    assert build_model("saehd", default_config("saehd", **{**TINY, "size": 80, "double_res": False}))(torch.rand(1, 3, 80, 80), "source")[0].shape[-1] == 80


def test_one_training_step_lowers_the_loss_on_its_batch():
    torch.manual_seed(0)
    cfg = default_config("saehd", **TINY)
    net = build_model("saehd", cfg)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(cfg.beta1, cfg.beta2))
    x = torch.rand(2, 3, 64, 64)
    em, hull = (torch.rand(2, 1, 64, 64) > 0.8).float(), torch.ones(2, 1, 64, 64)

    def loss() -> torch.Tensor:
        (a, ma), (b, mb) = net.forward_both(x, x)
        return reconstruction_loss(a, x, cfg, em, ma, hull) + reconstruction_loss(b, x, cfg, em, mb, hull)

    before = loss()
    opt.zero_grad()
    before.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    opt.step()
    with torch.no_grad():
        assert float(loss()) < float(before)


def test_save_and_load_through_the_checkpoint_module(tmp_path):
    from safetensors import safe_open

    torch.manual_seed(2)
    cfg = default_config("saehd", **TINY, double_res=True)
    net = build_model("saehd", cfg).eval()
    save_checkpoint(tmp_path / "m", net, {"arch": "saehd", "config": cfg.to_dict(), "step": 0})
    with safe_open(str(tmp_path / "m" / WEIGHTS), framework="pt") as f:  # weights are safetensors
        assert any(k.startswith("decoders.source.mask.") for k in f.keys())
    assert json.loads((tmp_path / "m" / "model.json").read_text())["config"]["double_res"] is True
    lm = load_model(tmp_path / "m", device="cpu")
    assert lm.arch == "saehd" and lm.config == cfg
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for side in ("source", "target"):
            for got, want in zip(lm.net(x, side), net(x, side)):
                torch.testing.assert_close(got, want)


def _train_cfg(two_facesets, out, **kw):
    from facedub.train import TrainConfig

    a, b = two_facesets
    base = dict(source=str(a), target=str(b), out=str(out), arch="saehd", size=64, width=0.125, batch_size=2, lr=2e-4,
                steps=4, preview_every=0, save_every=0, precision="fp32", seed=0, threads=1, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def two_facesets(tmp_path_factory):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("fakefaces", Path(__file__).parents[1] / "train" / "fakefaces.py")
    ff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ff)
    root = tmp_path_factory.mktemp("facesets")
    return ff.make_faceset(root / "alice", "alice", n=24, seed=0), ff.make_faceset(root / "bob", "bob", n=24, seed=1)


def test_tiny_saehd_trains_and_resumes_exactly(two_facesets, tmp_path):
    from safetensors.torch import load_file

    from facedub.train import train

    u = train(_train_cfg(two_facesets, tmp_path / "u", steps=4))
    train(_train_cfg(two_facesets, tmp_path / "r", steps=2))
    r = train(_train_cfg(two_facesets, tmp_path / "r", steps=2, resume=True))
    assert u.step == r.step == 4 and u.arch == "saehd" and u.loss_source is not None
    wu, wr = load_file(str(tmp_path / "u" / WEIGHTS)), load_file(str(tmp_path / "r" / WEIGHTS))
    assert wu.keys() == wr.keys() and all(torch.equal(wu[k], wr[k]) for k in wu)
    lm = load_model(tmp_path / "u", device="cpu")
    assert lm.config.size == 64 and lm.config.learned_mask


def test_convert_asks_for_cuda_when_there_is_one(tmp_path, monkeypatch):
    """load_convert_model's device choice, without a GPU: CUDA when torch reports one, else the CPU."""
    import facedub.model as model_pkg
    from facedub.convert.runner import load_convert_model

    (tmp_path / "m").mkdir()
    asked: list[str] = []
    monkeypatch.setattr(model_pkg, "load_model", lambda folder, device: asked.append(device) or "loaded")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert load_convert_model(tmp_path / "m") == "loaded"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    load_convert_model(tmp_path / "m")
    load_convert_model(tmp_path / "m", device="cpu")
    assert asked == ["cuda", "cpu", "cpu"]


@pytest.mark.gpu
def test_saehd_trains_on_cuda(two_facesets, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from facedub.train import train

    s = train(_train_cfg(two_facesets, tmp_path / "g", steps=3, device="cuda", precision="auto", batch_size=4))
    meta = json.loads((tmp_path / "g" / "model.json").read_text())
    assert s.step == 3 and meta["train"]["device"] == "cuda" and meta["arch"] == "saehd"
    assert s.loss_source is not None and s.loss_source == s.loss_source  # finite, not NaN


@pytest.mark.gpu
def test_load_convert_model_picks_cuda(two_facesets, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from facedub.convert.runner import Runner, load_convert_model
    from facedub.train import train

    train(_train_cfg(two_facesets, tmp_path / "m", steps=1))
    model = load_convert_model(tmp_path / "m")
    assert next(model.net.parameters()).device.type == "cuda"
    rgb, mask = Runner(model)(torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8).numpy())
    assert rgb.shape == (2, 64, 64, 3) and mask is not None and mask.shape == (2, 64, 64)
