"""Pure per-face filters: size, detector score, sharpness."""

from __future__ import annotations

import numpy as np

from facedub.extract.config import ExtractConfig, RejectReason


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian over the inner face of an aligned crop (eyes to chin).

    Higher is sharper. The background is left out so a blurred backdrop does not count.
    """
    import cv2

    s = crop.shape[0]
    inner = crop[int(0.30 * s) : int(0.80 * s), int(0.25 * s) : int(0.75 * s)]
    grey = cv2.cvtColor(np.ascontiguousarray(inner), cv2.COLOR_RGB2GRAY) if inner.ndim == 3 else inner
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def reject_reason(face_size: float, score: float, sharp: float | None, config: ExtractConfig) -> RejectReason | None:
    """Why a face fails the filters, or None when it passes. ``sharp`` None = not measured yet."""
    if face_size < config.min_size:
        return "too_small"
    if score < config.min_score:
        return "low_score"
    if sharp is not None and config.blur_threshold > 0 and sharp < config.blur_threshold:
        return "blurry"
    return None
