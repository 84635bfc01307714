"""Two processes on CPU (gloo) train one model through torchrun, as several machines would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from facedub.model import load_model


@pytest.mark.slow
def test_torchrun_two_gloo_processes(two_facesets, tmp_path):
    a, b = two_facesets
    out = tmp_path / "m"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "facedub", "--quiet", "train", "--source", str(a), "--target", str(b), "--out", str(out),
        "--arch", "lite", "--size", "32", "--width", "0.25", "--batch-size", "4", "--steps", "3",
        "--threads", "1", "--precision", "fp32", "--preview-every", "3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((out / "model.json").read_text())
    assert meta["train"]["world_size"] == 2
    assert meta["step"] == 3 and meta["examples"] == 3 * 2 * 4 * 2
    assert len(list((out / "previews").glob("*.png"))) == 1  # rank 0 alone writes
    load_model(out, device="cpu")


@pytest.mark.gpu
def test_torchrun_two_nccl_processes(two_facesets, tmp_path):
    """The same run on two GPUs: DDP over NCCL (skipped without two CUDA devices)."""
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    a, b = two_facesets
    out = tmp_path / "m"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "facedub", "--quiet", "train", "--source", str(a), "--target", str(b), "--out", str(out),
        "--arch", "lite", "--size", "32", "--width", "0.25", "--batch-size", "4", "--steps", "3",
        "--precision", "fp16", "--preview-every", "3",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((out / "model.json").read_text())
    assert meta["train"]["world_size"] == 2 and meta["train"]["device"] == "cuda"
    assert meta["train"]["precision"] == "float16" and meta["step"] == 3
    load_model(out, device="cpu")
