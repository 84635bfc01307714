"""Colour transfer of the swapped face onto the frame's colours (pure functions).

All statistics are computed *inside the mask* only, so hair, background and the dark
surround of the model square never pull the colours. Images are uint8 RGB H×W×3, masks
float H×W in [0, 1] (a pixel counts where the mask is above ``MASK_THRESHOLD``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from facedub.convert.config import ColorMode

MASK_THRESHOLD = 0.5
_MIN_PIXELS = 16  # fewer masked pixels than this: leave the face as it is
_EPS = 1e-3


class LabStats(NamedTuple):
    mean: np.ndarray  # (3,) L, a, b
    std: np.ndarray  # (3,)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB → float32 CIE L*a*b* (L in [0, 100])."""
    import cv2

    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """float32 L*a*b* → uint8 RGB (clipped)."""
    import cv2

    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _select(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape[:2], dtype=bool)
    if mask.shape != shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {shape[:2]}")
    return mask > MASK_THRESHOLD


def lab_stats(rgb: np.ndarray, mask: np.ndarray | None = None, lab: np.ndarray | None = None) -> LabStats | None:
    """Per-channel mean and standard deviation in L*a*b* inside ``mask`` (None if too few pixels)."""
    sel = _select(mask, rgb.shape)
    if int(sel.sum()) < _MIN_PIXELS:
        return None
    lab = to_lab(rgb) if lab is None else lab
    px = lab[sel].astype(np.float64)
    return LabStats(px.mean(axis=0), px.std(axis=0))


def reinhard_apply(rgb: np.ndarray, src: LabStats, ref: LabStats, lab: np.ndarray | None = None) -> np.ndarray:
    """Shift and scale every pixel's L*a*b* from the ``src`` statistics to the ``ref`` ones."""
    lab = to_lab(rgb) if lab is None else lab
    scale = (ref.std / np.maximum(src.std, _EPS)).astype(np.float32)
    out = (lab - src.mean.astype(np.float32)) * scale + ref.mean.astype(np.float32)
    return from_lab(out)


def reinhard(src: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer: ``src`` takes ``ref``'s mean and std in L*a*b*.

    Both images have the same size; statistics of both are taken inside ``mask``. The whole of
    ``src`` is adjusted (the mask only chooses which pixels are measured).
    """
    lab = to_lab(src)
    s = lab_stats(src, mask, lab)
    r = lab_stats(ref, mask)
    if s is None or r is None:
        return src.copy()
    return reinhard_apply(src, s, r, lab)


def _cdf(values: np.ndarray) -> np.ndarray:
    hist = np.bincount(values, minlength=256).astype(np.float64)
    cdf = np.cumsum(hist)
    return cdf / cdf[-1]


def histogram_match(src: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-channel (RGB) histogram matching of ``src`` to ``ref``, histograms taken inside ``mask``."""
    sel = _select(mask, src.shape)
    if int(sel.sum()) < _MIN_PIXELS:
        return src.copy()
    out = np.empty_like(src)
    levels = np.arange(256, dtype=np.float64)
    for c in range(3):
        s_cdf = _cdf(src[..., c][sel])
        r_cdf = _cdf(ref[..., c][sel])
        # For each source level, the reference level with the same cumulative share.
        lut = np.interp(s_cdf, r_cdf, levels)
        out[..., c] = np.clip(lut + 0.5, 0, 255).astype(np.uint8)[src[..., c]]
    return out


def transfer_color(src: np.ndarray, ref: np.ndarray, mask: np.ndarray | None, mode: ColorMode) -> np.ndarray:
    """Dispatch on ``mode`` (``reinhard``, ``hist`` or ``none``)."""
    if mode == "reinhard":
        return reinhard(src, ref, mask)
    if mode == "hist":
        return histogram_match(src, ref, mask)
    if mode == "none":
        return src.copy()
    raise ValueError(f"unknown colour mode {mode!r}")


def blend_stats(previous: LabStats | None, current: LabStats, keep: float) -> LabStats:
    """Exponential moving average of statistics: ``keep`` share of the previous value."""
    if previous is None or keep <= 0.0:
        return current
    return LabStats(keep * previous.mean + (1 - keep) * current.mean, keep * previous.std + (1 - keep) * current.std)
