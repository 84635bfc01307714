"""Between the frame and the model: cutting the model's input out of a frame, and pasting the
swapped face back (mask → colour → blend).

``model_input`` aligns a face exactly as training cut its inputs (frame → 256 px crop →
``crop_to_model``) and returns the exact frame → model matrix
(:func:`facedub.faces.align.model_matrix`: ``crop_to_model_matrix`` after ``align_matrix``).
:class:`Compositor` pastes one face per frame with that matrix: paste mask, colour transfer
(statistics smoothed over time), sharpening and blend, cutting out what the occlusion model
found in front of the face. The rest are pure functions: ``square_region``,
``region_matrix`` and ``warp_back`` map the model's output square back into the frame with the
inverse of the frame → model affine, inside a region of interest (ROI) so work stays
proportional to the face, not the frame. ``alpha_blend`` and ``poisson_blend`` mix the face into the
frame's ROI; a pixel whose mask is 0 comes out bit-identical to the frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from facedub.convert import color as color_mod
from facedub.convert import mask as mask_mod
from facedub.convert import occlusion as occ_mod
from facedub.convert.config import BlendMode, ConvertConfig
from facedub.faces.align import (
    CROP_SIZE,
    align_matrix,
    compose,
    model_matrix,
    face_outline,
    inner_cut,
    invert_affine,
    points5_from_68,
    resize_to_model,
    scale_of,
    transform_points,
    warp,
)

# Auto erosion / feather as shares of the face size (the 256 px crop's side in frame pixels).
AUTO_ERODE = 0.015
AUTO_FEATHER = 0.05


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
    hard = mask > 0.02
    if not hard.any():
        return bg.copy()
    return alpha_blend(poisson_face(fg, bg, mask), bg, mask)


def poisson_face(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The face :func:`poisson_blend` mixes in with the soft mask: ``fg`` cloned into ``bg``
    in the gradient domain inside ``mask > 0.02`` (``bg`` where nothing is cloned)."""
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
        return cv2.seamlessClone(fg_p, bg_p, hard_p, center, cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    except cv2.error:
        return fg


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


# ---------------------------------------------------------------------------------------
# Frame ↔ model geometry and the compositor
# ---------------------------------------------------------------------------------------
def model_input(rgb: np.ndarray, lm68: np.ndarray, coverage: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align as training did: frame → 256 crop (``warp``) → ``crop_to_model``.

    Only the part of the crop that ``crop_to_model`` keeps (``crop[lo:hi, lo:hi]``) is warped:
    the same pixel grid, so the same pixels (up to OpenCV's fixed-point rounding, ±1 on under
    1 % of them), at (hi − lo)² / 256² of the cost.
    Returns (model input uint8 S×S×3, frame→crop matrix, exact frame→model matrix).
    """
    a = align_matrix(points5_from_68(lm68))
    lo, hi = inner_cut(coverage)
    shifted = a.copy()
    shifted[:, 2] -= lo
    x = resize_to_model(warp(rgb, shifted, hi - lo), size)
    return np.ascontiguousarray(x), a, model_matrix(a, coverage, size)


def face_size(frame_to_crop: np.ndarray) -> float:
    """Side of the 256 px aligned crop, in frame pixels."""
    return CROP_SIZE / max(scale_of(frame_to_crop), 1e-9)


class Compositor:
    """Mask → colour → blend for one face, with colour statistics smoothed over time.

    With the occlusion model's visible-face map, what is in front of the face (a hand, a
    microphone, glasses) is cut out of the paste mask and of the colour statistics. The last
    paste mask is kept (``last_mask``) for the preview's mask panel.
    """

    def __init__(self, config: ConvertConfig, size: int) -> None:
        self.config = config
        self.size = size
        self._src_stats: color_mod.LabStats | None = None
        self._ref_stats: color_mod.LabStats | None = None
        self.record = False  # keep the last paste mask (previews)
        self.last_mask: tuple[Region, np.ndarray, np.ndarray | None] | None = None  # (ROI, paste mask, hidden face)
        self.layers = False  # keep the last paste's layers (image-sequence outputs composite them at the plate's precision)
        self.last_paste: tuple[Region, np.ndarray, np.ndarray] | None = None  # (ROI, alpha, the face mixed in with it, uint8)

    def reset(self) -> None:
        self._src_stats = self._ref_stats = None

    def paste(
        self,
        frame: np.ndarray,
        face: np.ndarray,
        learned: np.ndarray | None,
        face_in: np.ndarray,
        lm68: np.ndarray,
        frame_to_model: np.ndarray,
        frame_to_crop: np.ndarray,
        visible: np.ndarray | None = None,
        frame_to_seg: np.ndarray | None = None,
    ) -> np.ndarray:
        """Paste ``face`` (model output for the model input ``face_in``) into ``frame`` in place.

        ``visible`` is the occlusion model's visible-face map and ``frame_to_seg`` maps the
        frame into its pixels (both ``None``: occlusion off)."""
        cfg = self.config
        self.last_mask = self.last_paste = None
        size = self.size
        if face.shape[0] != size:  # a detail stage made the face larger: work at its size
            import cv2

            k = face.shape[0] / size
            frame_to_model = compose(np.array([[k, 0.0, (k - 1) / 2], [0.0, k, (k - 1) / 2]]), frame_to_model)
            size = face.shape[0]
            face_in = cv2.resize(face_in, (size, size), interpolation=cv2.INTER_LINEAR)
            if learned is not None:
                learned = cv2.resize(learned, (size, size), interpolation=cv2.INTER_LINEAR)
        if visible is not None and frame_to_seg is not None:
            # A face the network cannot read at all: the landmark mask alone decides.
            if not occ_mod.readable(visible, transform_points(face_outline(lm68, cfg.forehead), frame_to_seg)):
                visible = frame_to_seg = None
        region = square_region(frame_to_model, size, frame.shape[:2])
        if region is None:
            return frame
        use_learned = learned is not None and cfg.mask in ("learned-hull", "learned")
        use_hull = cfg.mask == "hull" or (cfg.mask == "learned-hull") or (cfg.mask == "learned" and not use_learned)
        outline = face_outline(lm68, cfg.forehead)  # the landmarks, and the forehead above the brows
        # Colour transfer in model space (cheap: S×S pixels), measured inside the face.
        if cfg.color != "none":
            cmask = mask_mod.hull_mask(transform_points(outline, frame_to_model), (size, size))
            if use_learned:
                cmask = mask_mod.intersect(cmask, learned)
            if visible is not None and frame_to_seg is not None:
                cmask = mask_mod.intersect(cmask, occ_mod.visible_in(visible, frame_to_seg, frame_to_model, size) >= 0.5)
            face = self._color(face, face_in, cmask)
        if cfg.sharpen > 0:
            face = sharpen(face, cfg.sharpen)
        m_roi = region_matrix(frame_to_model, region)
        face_roi = warp_back(face, m_roi, region)
        pts = outline - (region.x0, region.y0) if use_hull else None
        fs = face_size(frame_to_crop)
        erode_px = cfg.erode if cfg.erode is not None else int(round(AUTO_ERODE * fs))
        feather_px = cfg.feather if cfg.feather is not None else max(1, int(round(AUTO_FEATHER * fs)))
        seg_roi = None if visible is None or frame_to_seg is None else region_matrix(frame_to_seg, region)
        mask = mask_mod.paste_mask(
            (region.height, region.width), pts, m_roi, size, learned if use_learned else None, erode_px, feather_px,
            visible=None if seg_roi is None else visible, visible_to_roi=seg_roi,
        )
        if self.record:  # for the preview: the paste mask, and the face found hidden
            hidden = None
            if seg_roi is not None:
                reach = mask_mod.hull_mask(outline - (region.x0, region.y0), (region.height, region.width)) > 0.5
                hidden = reach & (warp_back(visible, seg_roi, region, fill=1.0) < 0.5)
            self.last_mask = (region, mask, hidden)
        if not mask.any():
            return frame
        sl = region.slices()
        if self.layers:
            fg = poisson_face(face_roi, frame[sl], mask) if cfg.blend == "poisson" else face_roi
            self.last_paste = (region, mask, fg)
            frame[sl] = alpha_blend(fg, frame[sl], mask)
        else:
            frame[sl] = blend(face_roi, frame[sl], mask, cfg.blend)
        return frame

    def _color(self, face: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mode = self.config.color
        if mode == "none":
            return face
        if mode == "hist":
            return color_mod.histogram_match(face, bg, mask)
        lab = color_mod.to_lab(face)
        s = color_mod.lab_stats(face, mask, lab)
        r = color_mod.lab_stats(bg, mask)
        if s is None or r is None:
            return face
        keep = self.config.color_smoothing
        self._src_stats = color_mod.blend_stats(self._src_stats, s, keep)
        self._ref_stats = color_mod.blend_stats(self._ref_stats, r, keep)
        return color_mod.reinhard_apply(face, self._src_stats, self._ref_stats, lab)
