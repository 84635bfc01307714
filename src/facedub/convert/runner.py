"""The swap model as convert runs it: loading a model folder, the occlusion model it asks for,
and :class:`Runner`, which decodes batches of aligned faces with the other identity's decoder
(plus the per-identity detail stage when there is one).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from facedub.convert import occlusion as occ_mod
from facedub.convert.config import ConvertConfig
from facedub.errors import FacedubError, ModelMismatch


def load_convert_model(model: Any, device: str | None = None) -> Any:
    """A loaded model (anything with ``.net``, ``.config.size``/``.coverage``, ``.meta``) or a folder."""
    if hasattr(model, "net"):
        return model
    folder = Path(model)
    if not folder.is_dir():
        raise ModelMismatch(f"{folder}: not a facedub model folder (no such folder)")
    from facedub.model import load_model

    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return load_model(folder, device)
    except FacedubError:
        raise
    except Exception as e:  # a broken file must still be a one-line error
        raise ModelMismatch(f"{folder}: not a usable facedub model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def occlusion_model(config: ConvertConfig, model: Any = None) -> "occ_mod.OcclusionModel | None":
    """The occlusion model ``config.occlusion`` asks for: ``None`` when off; for ``auto`` the model
    folder's own ``occlusion.safetensors`` when it has one, else the generic one in the package."""
    if config.occlusion == "off":
        return None
    own = Path(model) / occ_mod.PROJECT_WEIGHTS if isinstance(model, (str, os.PathLike)) else None
    return occ_mod.load_occlusion(own if own is not None and own.is_file() else None)


class Runner:
    """Runs one decoder (the source's, or the target's when reversed) on batches of uint8 model inputs."""

    def __init__(self, model: Any, reverse: bool = False, precision: str = "fp32", detail: str = "off") -> None:
        import torch

        from facedub.model.precision import resolve_precision

        # The swap decodes with the *other* identity's decoder: normally the source's.
        self.side = "target" if reverse else "source"
        self.net = model.net
        self.net.eval()
        self.size = int(model.config.size)
        self.coverage = float(model.config.coverage)
        try:
            self.device = next(self.net.parameters()).device
        except StopIteration:
            self.device = torch.device("cpu")
        self.amp_dtype = resolve_precision(precision, self.device)  # None = plain fp32
        self.precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        # The per-identity detail stage (facedub.convert.detail): a larger, sharper face when the
        # model folder has one trained for these weights; ``detail_note`` says why one was skipped.
        self.detail, self.detail_note = None, None
        if detail == "auto":
            from facedub.convert.detail import load_detail

            self.detail, self.detail_note = load_detail(model, self.side)
        self.out_size = self.size * (self.detail.config.scale if self.detail is not None else 1)

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
            with torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None else contextlib.nullcontext():
                rgb, mask = self.net(x, self.side)
                if self.detail is not None:
                    rgb = self.detail.net(rgb.float().clamp(0, 1))
            rgb_np = rgb.float().clamp(0, 1).mul(255.0).add_(0.5).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
            mask_np = None if mask is None else mask[:, 0].float().clamp(0, 1).contiguous().cpu().numpy()
        return rgb_np, mask_np


def model_meta(model: Any) -> dict[str, Any]:
    """The loaded model's metadata (descriptors, consent, training settings) as a plain dict."""
    meta = getattr(model, "meta", None)
    return dict(meta) if isinstance(meta, dict) else {}
