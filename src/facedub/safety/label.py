"""Visible "AI-generated" label in a corner of each frame.

The label (white text on a half-transparent dark box) is rendered once per frame size with
PIL's built-in default font (no font file needed) and alpha-blended into the corner with
numpy, so labelling a frame costs a small blend, not a PIL round trip.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

LABEL_TEXT = "AI-generated"
Corner = Literal["bottom-right", "bottom-left", "top-right", "top-left"]


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)  # scalable built-in font (Pillow ≥ 10.1 with FreeType)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()  # fixed bitmap font, always present


def render_label(frame_h: int, frame_w: int, text: str = LABEL_TEXT) -> tuple[np.ndarray, np.ndarray]:
    """The label patch for a frame size: (rgb uint8 h×w×3, alpha float32 h×w×1)."""
    from PIL import Image, ImageDraw

    px = max(9, int(round(min(frame_h, frame_w) * 0.045)))
    font = _font(px)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font)
    pad = max(2, px // 4)
    w = min(frame_w, x1 - x0 + 2 * pad)
    h = min(frame_h, y1 - y0 + 2 * pad)
    box = Image.new("L", (w, h), 0)
    ImageDraw.Draw(box).text((pad - x0, pad - y0), text, fill=255, font=font)
    text_a = np.asarray(box, np.float32)[..., None] / 255.0
    bg_alpha = 0.55
    alpha = bg_alpha + (1.0 - bg_alpha) * text_a  # box everywhere, text opaque
    rgb = (255.0 * text_a / np.maximum(alpha, 1e-6)).clip(0, 255).astype(np.uint8)
    rgb = np.repeat(rgb, 3, 2)
    return rgb, alpha.astype(np.float32)


class Labeler:
    """Stamps the label into frames; caches the rendered patch for the frame size."""

    def __init__(self, text: str = LABEL_TEXT, corner: Corner = "bottom-right") -> None:
        self.text = text
        self.corner = corner
        self._key: tuple[int, int] | None = None
        self._patch: tuple[np.ndarray, np.ndarray] | None = None

    def _slices(self, fh: int, fw: int, ph: int, pw: int) -> tuple[slice, slice]:
        m = max(2, int(min(fh, fw) * 0.02))
        m = min(m, max(0, fh - ph), max(0, fw - pw))
        ys = slice(fh - ph - m, fh - m) if self.corner.startswith("bottom") else slice(m, m + ph)
        xs = slice(fw - pw - m, fw - m) if self.corner.endswith("right") else slice(m, m + pw)
        return ys, xs

    def _patch_for(self, fh: int, fw: int) -> tuple[np.ndarray, np.ndarray]:
        if self._key != (fh, fw):
            self._patch = render_label(fh, fw, self.text)
            self._key = (fh, fw)
        return self._patch  # type: ignore[return-value]

    def box(self, fh: int, fw: int) -> tuple[slice, slice]:
        """Where the label lands in a frame of ``fh``×``fw`` (rows, columns)."""
        prgb, _ = self._patch_for(fh, fw)
        return self._slices(fh, fw, prgb.shape[0], prgb.shape[1])

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Return a labelled copy of an H×W×3 uint8 frame."""
        fh, fw = rgb.shape[:2]
        prgb, alpha = self._patch_for(fh, fw)
        ys, xs = self._slices(fh, fw, prgb.shape[0], prgb.shape[1])
        out = rgb.copy()
        region = out[ys, xs].astype(np.float32)
        out[ys, xs] = (region * (1.0 - alpha) + prgb.astype(np.float32) * alpha + 0.5).astype(np.uint8)
        return out


def add_label(rgb: np.ndarray, text: str = LABEL_TEXT, corner: Corner = "bottom-right") -> np.ndarray:
    return Labeler(text, corner).apply(rgb)
