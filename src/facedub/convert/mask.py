"""Masks that decide where the swapped face replaces the frame (pure functions).

Masks are float32 H×W arrays in [0, 1]. The pipeline builds one per face in frame
coordinates (inside the face's region of interest): the model's learned mask warped back,
intersected with the convex hull of the 68 landmarks and with the model square itself, then
eroded and feathered so the edge is soft and stays inside the face.
"""

from __future__ import annotations

import numpy as np


def hull_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Filled convex hull of ``points`` (N×2, x/y pixels) in an image of ``shape`` (h, w)."""
    import cv2

    h, w = shape
    out = np.zeros((h, w), dtype=np.uint8)
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) >= 3:
        # Sub-pixel accurate polygon: 4 fractional bits.
        hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 255, lineType=cv2.LINE_AA, shift=4)
    return out.astype(np.float32) * (1.0 / 255.0)


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    """Shrink the mask by ``px`` pixels (a negative ``px`` grows it).

    Uses the Euclidean distance to the mask's edge (``mask > 0.5``), so the cost does not
    grow with ``px``; soft values inside what is kept are preserved. The image border counts
    as outside, so a mask touching it shrinks away from it too.
    """
    import cv2

    px = int(round(px))
    m = mask.astype(np.float32, copy=True)
    if px == 0:
        return m
    inside = (m > 0.5).astype(np.uint8)
    if px > 0:
        padded = cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_5)[1:-1, 1:-1]
        m[dist <= px] = 0.0
        return m
    dist = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_5)
    m[dist <= -px] = 1.0
    return m


def feather(mask: np.ndarray, px: int) -> np.ndarray:
    """Soften the edge over about ``px`` pixels (Gaussian blur; the edge stays where it was).

    Half of the ramp falls outside the original edge; :func:`face_mask` erodes by half a
    feather first so the soft band stays inside.
    """
    import cv2

    px = int(round(px))
    if px <= 0:
        return mask.astype(np.float32, copy=True)
    sigma = px / 3.0  # ±3σ ≈ the ramp width
    k = 2 * int(np.ceil(1.5 * sigma)) + 1
    pad = k
    m = cv2.copyMakeBorder(mask.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    m = cv2.GaussianBlur(m, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)
    return np.clip(m[pad:-pad, pad:-pad], 0.0, 1.0)


def intersect(*masks: np.ndarray | None) -> np.ndarray:
    """Pixel-wise minimum of the masks given (``None`` entries ignored)."""
    present = [m for m in masks if m is not None]
    if not present:
        raise ValueError("intersect needs at least one mask")
    out = present[0].astype(np.float32, copy=True)
    for m in present[1:]:
        np.minimum(out, m, out=out)
    return out


def face_mask(
    *,
    square: np.ndarray,
    hull: np.ndarray | None = None,
    learned: np.ndarray | None = None,
    erode_px: int = 0,
    feather_px: int = 0,
) -> np.ndarray:
    """The final paste mask: intersection, then erosion by ``erode_px + feather_px / 2``, then feather.

    ``square`` is where the model square lands in the frame (so its edge never shows);
    ``hull`` the landmark hull; ``learned`` the model's mask. Values in [0, 1]; the result is
    0 wherever any input is 0, so pixels outside the face are never touched.
    """
    m = intersect(square, hull, learned)
    m = (m > 0.5).astype(np.float32) if learned is None else m
    m = erode(m, erode_px + feather_px // 2)
    m = feather(m, feather_px)
    # Nothing outside the hard intersection, whatever the blur did.
    hard = intersect(square, hull) > 0.0
    m[~hard] = 0.0
    return m
