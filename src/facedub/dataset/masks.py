"""Manipulation masks: the convert pipeline's own paste alpha, and how well it matches the
pixels that changed.

A mask is written per swapped frame as an 8-bit greyscale PNG the size of the frame: the
alpha the blend used × 255, rounded (0 = the frame's own pixel, kept bit for bit; 255 = the
new face's pixel). It is taken from the paste itself (``convert_video(on_paste=...)``),
not guessed afterwards from a comparison.

The check: the binary mask (PNG value ≥ ``MASK_LEVEL``) against a direct comparison of the
frame before encoding (the decoded input vs the composited frame, before the watermark and the
encoder): a pixel *changed* when any channel differs by ``DIFF_LEVEL`` or more. IoU per frame.
"""

from __future__ import annotations

import numpy as np

MASK_LEVEL = 4  # PNG value from which a mask pixel counts as replaced (alpha ≥ 4/255 ≈ 1.6 %)
DIFF_LEVEL = 1  # grey levels (any channel) from which a pixel counts as changed: any change
# Why 4: no pixel outside the mask ever changes (alpha 0 keeps the plate's bit), so the only
# disagreement is the feathered edge, where a small alpha times a small face/plate difference
# rounds to no change at all. Measured with the tests' tiny model on 30 frames of three shared
# clips: mask ≥ 1 gives IoU 0.954-0.957 (worst frame), ≥ 4 gives 0.977 (the best level; ≥ 8
# 0.969-0.973, ≥ 13 0.958-0.962). Labels record both the IoU at MASK_LEVEL and at ≥ 1.


def full_mask(shape: tuple[int, int], region: object | None, alpha: np.ndarray | None) -> np.ndarray:
    """The frame-sized uint8 mask (alpha × 255, rounded) from a paste record's ROI and alpha."""
    out = np.zeros(shape, np.uint8)
    if region is not None and alpha is not None:
        sl = region.slices()  # type: ignore[attr-defined]
        out[sl] = np.rint(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)
    return out


def changed_pixels(plate: np.ndarray, composite: np.ndarray, level: int = DIFF_LEVEL) -> np.ndarray:
    """Bool per pixel: some channel of ``composite`` differs from ``plate`` by ``level`` or more."""
    import cv2

    d = cv2.absdiff(np.ascontiguousarray(plate), np.ascontiguousarray(composite))
    return d.max(axis=2) >= level


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool images; 1.0 when both are empty."""
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(a & b)) / union


def mask_iou(mask: np.ndarray, plate: np.ndarray, composite: np.ndarray, mask_level: int = MASK_LEVEL, diff_level: int = DIFF_LEVEL) -> float:
    """IoU of the stored mask (≥ ``mask_level``) with the pixels that changed (≥ ``diff_level``)."""
    return iou(mask >= mask_level, changed_pixels(plate, composite, diff_level))


def write_png(path: object, mask: np.ndarray) -> None:
    """A greyscale PNG, written atomically."""
    from PIL import Image

    from facedub.fileio import atomic_path

    with atomic_path(path, ".png") as tmp:  # type: ignore[arg-type]
        Image.fromarray(mask, mode="L").save(tmp, format="PNG", compress_level=1)


def read_png(path: object) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:  # type: ignore[arg-type]
        return np.asarray(im.convert("L"))
