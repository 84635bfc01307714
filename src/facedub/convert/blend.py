"""Pasting the swapped face back into the frame (pure functions).

``paste_region`` maps the model's output square back into the frame with the inverse of
the frame → model affine, inside a region of interest (ROI) so work stays proportional to
the face, not the frame. ``alpha_blend`` and ``poisson_blend`` mix the face into the
frame's ROI; a pixel whose mask is 0 comes out bit-identical to the frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from facedub.convert.config import BlendMode
from facedub.faces.align import invert_affine, transform_points


class Region(NamedTuple):
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def square_region(frame_to_model: np.ndarray, size: int, frame_shape: tuple[int, int], margin: int = 2) -> Region | None:
    """Bounding box (clipped to the frame) of the model square mapped back into the frame."""
    h, w = frame_shape
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float64)
    pts = transform_points(corners, invert_affine(frame_to_model))
    x0 = max(int(np.floor(pts[:, 0].min())) - margin, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - margin, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + margin, w)
    y1 = min(int(np.ceil(pts[:, 1].max())) + margin, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return Region(x0, y0, x1, y1)


def region_matrix(frame_to_model: np.ndarray, region: Region) -> np.ndarray:
    """2×3 model → ROI matrix (inverse affine, shifted to the ROI's origin)."""
    inv = invert_affine(frame_to_model).copy()
    inv[0, 2] -= region.x0
    inv[1, 2] -= region.y0
    return inv


def warp_back(image: np.ndarray, model_to_roi: np.ndarray, region: Region, fill: float = 0.0) -> np.ndarray:
    """Warp a model-space image (S×S or S×S×C) into the ROI, bilinear, constant border ``fill``."""
    import cv2

    return cv2.warpAffine(
        image,
        np.asarray(model_to_roi, dtype=np.float64),
        (region.width, region.height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )


def alpha_blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``fg·m + bg·(1−m)`` per pixel, uint8. Where ``m`` is 0 the result equals ``bg`` exactly.

    One pass of OpenCV's ``blendLinear`` (it divides by ``m + (1 − m)`` plus a tiny epsilon,
    which rounds back to the exact value at ``m = 0`` and ``m = 1``).
    """
    import cv2

    if fg.shape != bg.shape or mask.shape != bg.shape[:2]:
        raise ValueError(f"alpha_blend: shapes differ ({fg.shape}, {bg.shape}, mask {mask.shape})")
    w = np.clip(mask, 0.0, 1.0).astype(np.float32, copy=False)
    return cv2.blendLinear(np.ascontiguousarray(fg), np.ascontiguousarray(bg), w, 1.0 - w)


def poisson_blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson image editing (OpenCV ``seamlessClone``, normal clone) inside ``mask > 0``.

    The gradient-domain result is then mixed in with the soft mask, so the edge is feathered
    and pixels with mask 0 stay exactly ``bg``.
    """
    import cv2

    if fg.shape != bg.shape or mask.shape != bg.shape[:2]:
        raise ValueError(f"poisson_blend: shapes differ ({fg.shape}, {bg.shape}, mask {mask.shape})")
    hard = (mask > 0.02).astype(np.uint8) * 255
    if not hard.any():
        return bg.copy()
    # seamlessClone misbehaves when the mask touches the image border: pad both images.
    pad = 4
    fg_p = cv2.copyMakeBorder(fg, pad, pad, pad, pad, cv2.BORDER_REFLECT101)
    bg_p = cv2.copyMakeBorder(bg, pad, pad, pad, pad, cv2.BORDER_REFLECT101)
    hard_p = cv2.copyMakeBorder(hard, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(hard_p)
    # seamlessClone centres the mask's bounding box at ``center``: keep it in place.
    center = (x + w // 2, y + h // 2)
    try:
        cloned = cv2.seamlessClone(fg_p, bg_p, hard_p, center, cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    except cv2.error:
        cloned = fg
    return alpha_blend(cloned, bg, mask)


def sharpen(image: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Unsharp mask: ``image + amount × (image − gaussian(image, sigma))``, clipped to uint8.

    Applied to the model's output at its own resolution, before it is scaled up into the
    frame, so ``sigma`` is in model pixels. ``amount`` 0 returns ``image`` unchanged; a flat
    area stays flat; an edge gets steeper.
    """
    import cv2

    if amount <= 0:
        return image
    src = np.asarray(image)
    soft = cv2.GaussianBlur(src, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT101)
    return cv2.addWeighted(src, 1.0 + float(amount), soft, -float(amount), 0.0)


def mask_overlay(frame: np.ndarray, pasted: tuple[Region, np.ndarray, np.ndarray | None] | None) -> np.ndarray:
    """A picture of the paste mask for previews: ``frame`` dimmed, green where the new face is
    pasted (by the mask's strength), red where the face is hidden behind something and left alone.

    ``pasted`` is (ROI, paste mask over the ROI, hidden-face map over the ROI or ``None``), or
    ``None`` when nothing was pasted (the frame comes back dimmed).
    """
    out = np.asarray(frame, np.float32) * 0.45
    if pasted is not None:
        region, mask, hidden = pasted
        roi = out[region.slices()]
        m = np.clip(np.asarray(mask, np.float32), 0, 1)[..., None]
        roi += m * np.array([0, 140, 40], np.float32)
        if hidden is not None:
            h = np.asarray(hidden, np.float32)[..., None] * (1 - m)
            roi += h * np.array([150, 0, 0], np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray, mode: BlendMode) -> np.ndarray:
    if mode == "alpha":
        return alpha_blend(fg, bg, mask)
    if mode == "poisson":
        return poisson_blend(fg, bg, mask)
    raise ValueError(f"unknown blend mode {mode!r}")
