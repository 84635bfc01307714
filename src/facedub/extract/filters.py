"""Pure per-face filters: size, detector score, sharpness (absolute or relative to the faceset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from facedub.extract.config import ExtractConfig, RejectReason

# Side (px) of the crop the relative blur filter measures sharpness at: about what the models
# train at (64–80 px), so a face counts as sharp when it is sharp where it will be used, and
# faces of every size in the source are measured alike (a 112 px face and a 400 px face of the
# same quality score about the same; the absolute score, on the 256 px crop, differs ~5×).
SHARPNESS_SIZE = 64

# Fewer faces than this: no spread to compare with; only faces below BLUR_FLOOR are dropped.
MIN_FACES_FOR_SPREAD = 8
# Sharpness at SHARPNESS_SIZE below which a face is blurred whatever the others look like
# (measured: sharp faces 600–1600; a Gaussian blur of σ≈1.5 px at 64 px gives ~200, σ≈3 ~50).
BLUR_FLOOR = 60.0


def _laplacian_var(inner: np.ndarray) -> float:
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(inner), cv2.COLOR_RGB2GRAY) if inner.ndim == 3 else inner
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _inner(crop: np.ndarray) -> np.ndarray:
    s = crop.shape[0]
    return crop[int(0.30 * s) : int(0.80 * s), int(0.25 * s) : int(0.75 * s)]


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian over the inner face of an aligned crop (eyes to chin).

    Higher is sharper. The background is left out so a blurred backdrop does not count.
    This absolute score is what faceset.json records and ``--blur-threshold`` compares with.
    """
    return _laplacian_var(_inner(crop))


def sharpness_at(crop: np.ndarray, size: int = SHARPNESS_SIZE) -> float:
    """:func:`sharpness` of the crop shrunk to ``size`` px (area averaging): comparable
    between faces of any size in the source (see SHARPNESS_SIZE)."""
    import cv2

    small = crop if crop.shape[0] == size else cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_AREA)
    return _laplacian_var(_inner(small))


@dataclass(frozen=True)
class BlurLimit:
    """The relative blur limit of one faceset: faces whose sharpness at SHARPNESS_SIZE is
    below ``limit`` are dropped."""

    limit: float
    median: float  # of the faces' sharpness at SHARPNESS_SIZE
    faces: int  # faces the spread was measured on
    rule: str  # how the limit was set, in words

    def describe(self) -> str:
        return f"sharpness at {SHARPNESS_SIZE} px below {self.limit:.0f} ({self.rule}; median of {self.faces} faces {self.median:.0f})"


def blur_limit(scores: Sequence[float], config: ExtractConfig) -> BlurLimit:
    """Where the blurry faces of a faceset start, from the faces' own sharpness spread.

    A face is blurry when it is far below the others on a log scale: under
    median − ``blur_mads`` robust standard deviations (1.4826 × MAD) *and* under
    median / ``blur_ratio``; so a faceset of equally good faces loses none, however low its
    resolution, and a heavily blurred face among sharp ones goes. A face under BLUR_FLOOR
    goes whatever the spread. With fewer than MIN_FACES_FOR_SPREAD faces only BLUR_FLOOR applies.
    """
    s = np.asarray([v for v in scores if np.isfinite(v)], dtype=np.float64)
    n = int(s.size)
    if n == 0:
        return BlurLimit(BLUR_FLOOR, 0.0, 0, "too few faces to compare; fixed floor")
    med = float(np.median(s))
    if n < MIN_FACES_FOR_SPREAD:
        return BlurLimit(BLUR_FLOOR, med, n, f"fewer than {MIN_FACES_FOR_SPREAD} faces to compare; fixed floor")
    logs = np.log(np.maximum(s, 1e-3))
    mlog = float(np.median(logs))
    sigma = 1.4826 * float(np.median(np.abs(logs - mlog)))
    spread_limit = float(np.exp(mlog - config.blur_mads * sigma))
    ratio_limit = med / config.blur_ratio
    limit = max(min(spread_limit, ratio_limit), BLUR_FLOOR)
    rule = f"far below the faceset's own spread: under median − {config.blur_mads:g} MAD-sigmas and under median/{config.blur_ratio:g}"
    if limit == BLUR_FLOOR:
        rule = "fixed floor (the faceset's spread allows lower)"
    return BlurLimit(limit, med, n, rule)


def reject_reason(face_size: float, score: float, sharp: float | None, config: ExtractConfig) -> RejectReason | None:
    """Why a face fails the filters, or None when it passes. ``sharp`` None = not measured yet.

    ``sharp`` is compared only with an absolute ``blur_threshold``; the relative filter
    (``blur_threshold=None``) decides over the whole faceset, see :func:`blur_limit`.
    """
    if face_size < config.min_size:
        return "too_small"
    if score < config.min_score:
        return "low_score"
    if sharp is not None and config.blur_threshold and sharp < config.blur_threshold:
        return "blurry"
    return None
