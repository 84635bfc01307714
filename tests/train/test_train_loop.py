"""The training loop on tiny configs: learning, previews, checkpoints, exact resume, stopping."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

from facedub.errors import BadInput, Cancelled, ModelMismatch
from facedub.model import load_model
from facedub.model.checkpoint import WEIGHTS
from facedub.progress import RecordingReporter
from facedub.train import TrainConfig, train


def _cfg(two_facesets, out, **kw) -> TrainConfig:
    a, b = two_facesets
    base = dict(
        source=str(a), target=str(b), out=str(out), arch="lite", width=0.25, size=32, batch_size=6, lr=1e-3,
        steps=8, preview_every=0, save_every=0, precision="fp32", seed=0, threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_short_run_learns_and_writes_previews(two_facesets, tmp_path):
    rep = RecordingReporter()
    s = train(_cfg(two_facesets, tmp_path / "m", steps=150, preview_every=25), rep)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    vs, vt = meta["losses"]["val_source"], meta["losses"]["val_target"]
    assert meta["losses"]["val_step"] == [25, 50, 75, 100, 125, 150]
    assert vs[-1] + vt[-1] < 0.85 * (vs[0] + vt[0])
    assert s.step == 150 and s.steps_run == 150 and s.val_source == pytest.approx(vs[-1], rel=1e-4)
    assert len(s.previews) == 6 and all(Image.open(p).size[0] > 100 for p in s.previews)
    assert Image.open(s.loss_curve).format == "PNG"
    assert [c for _, c in rep.images].count("loss curve") == 6
    assert {"step", "loss_src", "loss_tgt", "ex_s", "eta"} <= set(rep.metrics)
    # model.json carries what the brief asks for
    # The model carries both identities' consent records, as the facesets bound them.
    assert meta["consent"]["source"]["subject"] == "alice" and meta["consent"]["target"]["subject"] == "bob"
    assert len(meta["id"]) == 16
    assert len(meta["source_descriptor"]) == 128 and meta["facesets"]["target"]["faces"] == 40
    assert len(meta["facesets"]["source"]["sha256"]) == 64
    assert meta["elapsed_s"] > 0 and meta["step"] == 150
    lm = load_model(tmp_path / "m", device="cpu")
    assert lm.config.size == 32 and lm.meta["arch"] == "lite"


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / WEIGHTS))


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_resume_matches_unbroken_run(two_facesets, tmp_path, precision):
    unbroken = train(_cfg(two_facesets, tmp_path / "u", steps=10, precision=precision))
    train(_cfg(two_facesets, tmp_path / "r", steps=4, precision=precision))
    resumed = train(_cfg(two_facesets, tmp_path / "r", steps=6, resume=True, precision=precision))
    assert unbroken.step == resumed.step == 10
    wu, wr = _weights(tmp_path / "u"), _weights(tmp_path / "r")
    assert wu.keys() == wr.keys()
    for k in wu:
        assert torch.equal(wu[k], wr[k]), k
    mu = json.loads((tmp_path / "u" / "model.json").read_text())
    mr = json.loads((tmp_path / "r" / "model.json").read_text())
    assert mu["losses"]["source"] == mr["losses"]["source"]


def test_stop_request_saves_and_raises(two_facesets, tmp_path):
    class StopAfter(RecordingReporter):
        def should_stop(self) -> bool:
            return self.done >= 3 and self.phases[-1][0] == "train"

    with pytest.raises(Cancelled, match="step 3"):
        train(_cfg(two_facesets, tmp_path / "m", steps=50), StopAfter())
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["step"] == 3
    s = train(_cfg(two_facesets, tmp_path / "m", steps=2, resume=True))
    assert s.step == 5


def test_refusals_leave_the_model_untouched(two_facesets, tmp_path):
    out = tmp_path / "m"
    train(_cfg(two_facesets, out, steps=2))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(BadInput, match="already exists"):
        train(_cfg(two_facesets, out))
    with pytest.raises(ModelMismatch, match="cannot resume it as 'original'"):
        train(_cfg(two_facesets, out, arch="original", resume=True))
    with pytest.raises(ModelMismatch, match="size=32"):
        train(_cfg(two_facesets, out, resume=True, size=64))
    a, b = two_facesets
    with pytest.raises(ModelMismatch, match="different source faceset"):
        train(replace(_cfg(two_facesets, out, resume=True), target=str(a), source=str(b)))
    with pytest.raises(BadInput, match="same faceset"):
        train(replace(_cfg(two_facesets, tmp_path / "x"), target=str(a)))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not (tmp_path / "x").exists()


def test_out_of_memory_becomes_bad_input(two_facesets, tmp_path, monkeypatch):
    import facedub.train.loop as loop

    def boom(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 123456789 bytes")

    monkeypatch.setattr(loop, "reconstruction_loss", boom)
    with pytest.raises(BadInput, match="--batch-size 6 does not fit.*try --batch-size 3"):
        train(_cfg(two_facesets, tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_choose_device_without_and_with_cuda():
    import torch

    from facedub.errors import BadInput
    from facedub.train.loop import choose_device

    assert choose_device(None, 0, cuda_available=False) == torch.device("cpu")
    assert choose_device(None, 1, cuda_available=True) == torch.device("cuda", 1)  # this rank's GPU
    assert choose_device("cpu", 1, cuda_available=True) == torch.device("cpu")  # asked for wins
    with pytest.raises(BadInput, match="CUDA is not available"):
        choose_device("cuda:0", cuda_available=False)
    with pytest.raises(BadInput, match="not a device name"):
        choose_device("gpu0", cuda_available=False)


@pytest.mark.gpu
def test_training_on_cuda_with_mixed_precision(two_facesets, tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    s = train(_cfg(two_facesets, tmp_path / "g", steps=3, precision="fp16"))
    assert s.step == 3 and s.loss_source is not None
