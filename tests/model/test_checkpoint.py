"""Model folders: save → load_model round trip, corruption detected, optimizer state kept."""

from __future__ import annotations

import json

import pytest
import torch

from facedub.errors import BadInput, ModelMismatch
from facedub.model import build_model, default_config, load_model
from facedub.model.checkpoint import (
    OPTIMIZER,
    WEIGHTS,
    load_optimizer_state,
    load_training_tensors,
    optimizer_state,
    read_meta,
    save_checkpoint,
)


def _tiny(tmp_path, arch="lite", **kw):
    torch.manual_seed(1)
    cfg = default_config(arch, width=0.25, size=32, **kw)
    net = build_model(arch, cfg)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.99))
    x = torch.rand(2, 3, 32, 32)
    for _ in range(2):
        (a, _), (b, _) = net.forward_both(x, x)
        loss = (a - x).abs().mean() + (b - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ot, oj = optimizer_state(opt)
    meta = {"arch": arch, "config": cfg.to_dict(), "step": 2, "training_state": {"optimizer": oj}}
    save_checkpoint(tmp_path / "m", net, meta, ot)
    return net, opt, x


def test_roundtrip_rebuilds_from_folder_alone(tmp_path):
    net, _, x = _tiny(tmp_path)
    lm = load_model(tmp_path / "m", device="cpu")
    assert lm.arch == "lite" and lm.config.size == 32 and lm.config.coverage == net.config.coverage
    assert lm.meta["step"] == 2
    net.eval()
    with torch.no_grad():
        for side in ("source", "target"):
            torch.testing.assert_close(lm.net(x, side)[0], net(x, side)[0], atol=1e-5, rtol=1e-4)
    assert not any(p.requires_grad for p in lm.net.parameters())


def test_tuple_fields_survive_json(tmp_path):
    _tiny(tmp_path, arch="hd", dense=32)
    lm = load_model(tmp_path / "m", device="cpu")
    assert isinstance(lm.config.enc_widths, tuple) and lm.config.learned_mask


def test_optimizer_state_roundtrip(tmp_path):
    net, opt, _ = _tiny(tmp_path)
    meta = read_meta(tmp_path / "m")
    tensors = load_training_tensors(tmp_path / "m", meta)
    opt2 = torch.optim.Adam(net.parameters(), lr=0.5)
    load_optimizer_state(opt2, tensors, meta["training_state"]["optimizer"])
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for k in a["state"]:
        for n in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(a["state"][k][n], b["state"][k][n])


def test_corrupted_weights_are_detected(tmp_path):
    _tiny(tmp_path)
    w = tmp_path / "m" / WEIGHTS
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BadInput, match="corrupted"):
        load_model(tmp_path / "m", device="cpu")


def test_truncated_optimizer_is_detected(tmp_path):
    _tiny(tmp_path)
    o = tmp_path / "m" / OPTIMIZER
    o.write_bytes(o.read_bytes()[:100])
    with pytest.raises(BadInput, match="corrupted"):
        load_training_tensors(tmp_path / "m", read_meta(tmp_path / "m"))


def test_bad_model_json(tmp_path):
    _tiny(tmp_path)
    js = tmp_path / "m" / "model.json"
    js.write_text("{not json")
    with pytest.raises(BadInput, match="corrupt"):
        load_model(tmp_path / "m")
    js.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BadInput, match="not a facedub model"):
        load_model(tmp_path / "m")
    with pytest.raises(BadInput, match="no such"):
        load_model(tmp_path / "missing")


def test_weights_that_do_not_fit_config(tmp_path):
    _tiny(tmp_path)
    js = tmp_path / "m" / "model.json"
    meta = json.loads(js.read_text())
    meta["config"]["width"] = 0.5
    js.write_text(json.dumps(meta))
    with pytest.raises(ModelMismatch, match="do not fit"):
        load_model(tmp_path / "m")
