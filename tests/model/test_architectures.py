"""Architectures: shapes, gradients, the 2018 parameter count, the registry."""

from __future__ import annotations

import pytest
import torch

from facedub.errors import ModelMismatch
from facedub.model import ARCH_NAMES, build_model, config_from_dict, default_config, get_arch


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def _dense(fin: int, fout: int) -> int:
    return fin * fout + fout


def test_original_parameter_count_matches_2018_layer_list():
    # The 2018 model, layer by layer (64 px input; 'same' padding; biases everywhere).
    enc = (
        _conv(3, 128, 5)
        + _conv(128, 256, 5)
        + _conv(256, 512, 5)
        + _conv(512, 1024, 5)
        + _dense(4 * 4 * 1024, 1024)
        + _dense(1024, 4 * 4 * 1024)
        + _conv(1024, 512 * 4, 3)  # upscale(512)
    )
    dec = _conv(512, 256 * 4, 3) + _conv(256, 128 * 4, 3) + _conv(128, 64 * 4, 3) + _conv(64, 3, 5)
    expected = enc + 2 * dec
    net = build_model("original")
    got = sum(p.numel() for p in net.parameters())
    assert got == expected == 82_062_470
    assert sum(p.numel() for p in net.encoder.parameters()) == enc
    assert sum(p.numel() for p in net.decoders["source"].parameters()) == dec


TINY = {
    "original": dict(width=1 / 16, size=32, dense=32),
    "lite": dict(width=0.25, size=32),
    "hd": dict(width=0.125, size=64, dense=32),
    "saehd": dict(width=0.125, size=64),
}


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_tiny_configs_shapes_grads_no_nan(arch):
    torch.manual_seed(0)
    cfg = default_config(arch, **TINY[arch])
    net = build_model(arch, cfg)
    s = cfg.size
    x = torch.rand(3, 3, s, s)
    for side in ("source", "target"):
        rgb, mask = net(x, side)
        assert rgb.shape == (3, 3, s, s)
        assert rgb.min() >= 0 and rgb.max() <= 1
        if cfg.learned_mask:
            assert mask is not None and mask.shape == (3, 1, s, s)
        else:
            assert mask is None
    (a, ma), (b, mb) = net.forward_both(x, x.flip(0))
    loss = (a - x).abs().mean() + (b - x.flip(0)).abs().mean()
    if ma is not None:
        loss = loss + ma.mean() + mb.mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"
    # forward_both is the same computation as two forward calls
    with torch.no_grad():
        (a2, _), (b2, _) = net.forward_both(x, x.flip(0))
        torch.testing.assert_close(a2, net(x, "source")[0])
        torch.testing.assert_close(b2, net(x.flip(0), "target")[0])


def test_channels_last_gives_same_output():
    torch.manual_seed(0)
    cfg = default_config("lite", **TINY["lite"])
    net = build_model("lite", cfg).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, _ = net(x, "source")
        net = net.to(memory_format=torch.channels_last)
        b, _ = net(x.contiguous(memory_format=torch.channels_last), "source")
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_hd_defaults_meet_the_brief():
    cfg = default_config("hd")
    assert cfg.size >= 128 and cfg.learned_mask and cfg.dssim_weight > 0 and cfg.l1_weight > 0 and cfg.eye_mouth_weight > 0
    assert any(cfg.dec_res)


def test_original_defaults_are_2018():
    cfg = default_config("original")
    assert (cfg.size, cfg.lr, cfg.beta1, cfg.l1_weight, cfg.dssim_weight) == (64, 5e-5, 0.5, 1.0, 0.0)


def test_lite_is_much_cheaper_than_original():
    n_lite = sum(p.numel() for p in build_model("lite").parameters())
    assert n_lite < 82_062_470 / 5


def test_registry_errors():
    with pytest.raises(ModelMismatch, match="unknown architecture"):
        get_arch("nope")
    with pytest.raises(ModelMismatch, match="no setting"):
        config_from_dict("lite", {"size": 64, "bogus": 1})
    with pytest.raises(ModelMismatch, match="multiple of 16"):
        default_config("lite", size=40)
    with pytest.raises(ModelMismatch, match="coverage"):
        default_config("lite", coverage=1.5)
    with pytest.raises(ValueError):
        build_model("lite", default_config("lite", width=0.25))(torch.rand(1, 3, 80, 80), "other")
