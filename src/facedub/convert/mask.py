"""Masks that decide where the swapped face replaces the frame (pure functions).

Masks are float32 H×W arrays in [0, 1]. The pipeline builds one per face in frame
coordinates (inside the face's region of interest): the model's learned mask warped back,
intersected with the convex hull of the 68 landmarks, with the model square itself and with
the visible part of the face (the occlusion model's segmentation, where it is on), then
eroded and feathered so the edge is soft and stays inside the face — and away from whatever
is in front of it.
"""

from __future__ import annotations

import numpy as np

from facedub.faces.align import compose


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
    visible: np.ndarray | None = None,
) -> np.ndarray:
    """The final paste mask: intersection, then erosion by ``erode_px + feather_px / 2``, then feather.

    ``square`` is where the model square lands in the frame (so its edge never shows);
    ``hull`` the landmark hull; ``learned`` the model's mask; ``visible`` the probability that
    the face is visible (not behind an occluder). The visible map is cut at ½ and gets an edge
    of its own, a third of the face's feather, wholly on the visible side: the swap stops just
    short of an occluder, and a thin one (a glasses frame) does not carve a wide gap into the
    face. Values in [0, 1]; the result is 0 wherever any input is 0, so pixels outside the
    face are never touched.
    """
    m = intersect(square, hull, learned)
    m = (m > 0.5).astype(np.float32) if learned is None else m
    m = erode(m, erode_px + feather_px // 2)
    m = feather(m, feather_px)
    if visible is not None:
        occ_feather = max(1, feather_px // 3)
        v = erode((np.asarray(visible) >= 0.5).astype(np.float32), occ_feather // 2 + 1)
        m *= feather(v, occ_feather)
    # Nothing outside the hard intersection, whatever the blur did.
    hard = intersect(square, hull) > 0.0
    m[~hard] = 0.0
    return m


def square_mask(model_to_roi: np.ndarray, size: int, shape: tuple[int, int]) -> np.ndarray:
    """Where the ``size`` px model square lands in an ROI of ``shape`` (filled polygon, soft edge).

    The square's outer pixel edges (−½ and ``size − ½`` in model pixel centres) mapped by the
    2×3 ``model_to_roi`` matrix: what warping an all-ones S×S image gives, without the warp.
    """
    e = size - 0.5
    corners = np.array([[-0.5, -0.5], [e, -0.5], [e, e], [-0.5, e]], dtype=np.float64)
    m = np.asarray(model_to_roi, dtype=np.float64)
    return hull_mask(corners @ m[:, :2].T + m[:, 2], shape)


# Feather ramps at least this wide (pixels) are computed at a reduced resolution (see paste_mask).
_SOFT_PX = 6.0


def paste_mask(
    shape: tuple[int, int],
    hull_points: np.ndarray | None,
    model_to_roi: np.ndarray,
    size: int,
    learned: np.ndarray | None = None,
    erode_px: int = 0,
    feather_px: int = 0,
    visible: np.ndarray | None = None,
    visible_to_roi: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`face_mask` for one face's ROI of ``shape``, from geometry instead of full-size masks.

    ``hull_points`` are the landmarks in ROI pixels (``None``: no hull), ``model_to_roi`` maps
    model pixels into the ROI and ``learned`` is the model's S×S mask (or ``None``);
    ``visible`` is the occlusion model's visible-face map (or ``None``) and ``visible_to_roi``
    maps its pixels into the ROI (outside it nothing counts as hidden). A wide
    feather is smooth, so the erosion and blur run on a copy scaled down until the ramp is
    about ``_SOFT_PX`` pixels wide and the result is scaled back up (at a 512² frame's face
    that is 12× fewer pixels). The hard limits stay exact at full size: nothing outside the
    hull or the model square is ever touched.
    """
    import cv2

    h, w = shape
    scale = 1.0 if feather_px <= _SOFT_PX else _SOFT_PX / feather_px
    if scale < 1.0:
        sh, sw = max(2, int(np.ceil(h * scale))), max(2, int(np.ceil(w * scale)))
        sy, sx = sh / h, sw / w
        # Pixel-centre convention of cv2.resize: x_small = (x + ½)·s − ½.
        to_small = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
    else:
        sh, sw, sx, sy = h, w, 1.0, 1.0
        to_small = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    m_small = compose(to_small, model_to_roi)
    hull_s = None if hull_points is None else hull_mask(np.asarray(hull_points, np.float64) * (sx, sy) + to_small[:, 2], (sh, sw))
    learned_s = None
    if learned is not None:
        learned_s = cv2.warpAffine(
            np.asarray(learned, np.float32), m_small, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
        )
    visible_s = None
    if visible is not None:
        if visible_to_roi is None:
            raise ValueError("paste_mask: visible needs visible_to_roi")
        visible_s = cv2.warpAffine(
            np.asarray(visible, np.float32),
            compose(to_small, visible_to_roi),
            (sw, sh),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=1.0,
        )
    k = (sx + sy) / 2.0
    small = face_mask(
        square=square_mask(m_small, size, (sh, sw)),
        hull=hull_s,
        learned=learned_s,
        erode_px=int(round(erode_px * k)),
        feather_px=int(round(feather_px * k)),
        visible=visible_s,
    )
    if small.shape == (h, w):
        return small
    m = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    hard = square_mask(model_to_roi, size, shape) > 0.0
    if hull_points is not None:
        hard &= hull_mask(hull_points, shape) > 0.0
    m[~hard] = 0.0
    return m
