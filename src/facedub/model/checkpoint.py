"""Model folders: ``weights.safetensors`` + ``model.json`` (+ ``optimizer.safetensors`` while training).

``model.json`` carries everything needed to rebuild the network (architecture name and full
config), the training record (step, elapsed time, loss history, faceset ids and hashes,
consent ids, mean identity descriptors) and the SHA-256 of each tensor file, so a file that
does not belong to this ``model.json`` (a crash between writes, a copy gone wrong) is
detected. Only safetensors and JSON are read: opening a model never runs code.

``optimizer.safetensors`` holds the optimizer's tensors and the training RNG states; its
scalar state sits in ``model.json["training_state"]``. Together they make ``--resume`` exact.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facedub.errors import BadInput, ModelMismatch
from facedub.fileio import write_bytes, write_json
from facedub.model.registry import ModelConfig, build_model, config_from_dict

MODEL_JSON = "model.json"
WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
FORMAT = "facedub-model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: ``net(x, side) -> (rgb, mask | None)`` in eval mode on ``device``."""

    net: nn.Module
    config: ModelConfig  # .size, .coverage, …
    meta: dict[str, Any]  # model.json
    arch: str
    folder: Path
    device: torch.device


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(
    folder: str | os.PathLike[str],
    net: nn.Module,
    meta: dict[str, Any],
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write the tensor files, then ``model.json`` last (each atomically).

    ``meta`` must hold ``arch`` and ``config``; the ``format``, ``files`` and ``version`` keys are
    filled in here. ``extra_tensors`` (optimizer, RNG) go to ``optimizer.safetensors``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    data = _tensor_bytes(net.state_dict())
    write_bytes(folder / WEIGHTS, data)
    files[WEIGHTS] = _sha(data)
    del data
    if extra_tensors is not None:
        data = _tensor_bytes(extra_tensors)
        write_bytes(folder / OPTIMIZER, data)
        files[OPTIMIZER] = _sha(data)
        del data
    out = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "files": files}
    write_json(folder / MODEL_JSON, out)


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``model.json``. BadInput with a one-line reason when it is not a model."""
    folder = Path(folder)
    js = folder / MODEL_JSON
    if not folder.exists():
        raise BadInput(f"{folder}: no such model folder")
    if not js.is_file():
        raise BadInput(f"{folder}: not a facedub model (no {MODEL_JSON})")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{js}: corrupt model file ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInput(f"{js}: not a facedub model file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BadInput(f"{js}: unsupported model format version {meta.get('format_version')!r}")
    for key in ("arch", "config", "files"):
        if key not in meta:
            raise BadInput(f"{js}: corrupt model file (no {key!r})")
    return meta


def _read_tensors(folder: Path, name: str, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    path = folder / name
    want = meta["files"].get(name)
    if want is None:
        raise BadInput(f"{path}: not listed in {MODEL_JSON}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror or e})") from None
    if _sha(data) != want:
        raise BadInput(f"{path}: corrupted (checksum does not match {MODEL_JSON})")
    try:
        return load(data)
    except Exception as e:  # safetensors raises its own error types
        raise BadInput(f"{path}: corrupted ({str(e).splitlines()[0]})") from None


def config_of(meta: dict[str, Any]) -> ModelConfig:
    cfg = dict(meta["config"])
    # JSON has lists where the dataclasses have tuples.
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
    try:
        return config_from_dict(meta["arch"], cfg)
    except TypeError as e:
        raise ModelMismatch(f"model.json: bad config ({e})") from None


def build_from_meta(meta: dict[str, Any]) -> nn.Module:
    return build_model(meta["arch"], config_of(meta))


def load_state(net: nn.Module, folder: Path, meta: dict[str, Any]) -> None:
    sd = _read_tensors(folder, WEIGHTS, meta)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ModelMismatch(f"{folder / WEIGHTS}: weights do not fit the {meta['arch']!r} config ({str(e).splitlines()[0]})") from None


def load_training_tensors(folder: str | os.PathLike[str], meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    return _read_tensors(Path(folder), OPTIMIZER, meta)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(folder: str | os.PathLike[str], device: str | torch.device | None = None) -> LoadedModel:
    """Rebuild a model from its folder alone (``model.json`` + ``weights.safetensors``)."""
    folder = Path(folder)
    meta = read_meta(folder)
    net = build_from_meta(meta)
    load_state(net, folder, meta)
    dev = torch.device(device) if device is not None else default_device()
    net = net.to(dev)
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return LoadedModel(net=net, config=net.config, meta=meta, arch=meta["arch"], folder=folder, device=dev)


# --- optimizer state in a safe format ----------------------------------------------------------


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``opt.state_dict()`` into tensors (for safetensors) and JSON scalars."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars.setdefault(str(pid), {})[k] = v
    groups = []
    for g in sd["param_groups"]:
        groups.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()})
    return tensors, {"param_groups": groups, "scalars": scalars, "ids": sorted(int(p) for p in sd["state"])}


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for pid in js["ids"]:
        st: dict[str, Any] = dict(js["scalars"].get(str(pid), {}))
        prefix = f"optim.{pid}."
        for k, v in tensors.items():
            if k.startswith(prefix):
                st[k[len(prefix) :]] = v
        state[int(pid)] = st
    groups = []
    for g in js["param_groups"]:
        groups.append({k: (tuple(v) if k == "betas" else v) for k, v in g.items()})
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise ModelMismatch(f"optimizer state does not fit the model ({str(e).splitlines()[0]})") from None
