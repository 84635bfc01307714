"""Preview grid and loss-curve PNGs written during training."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from facedub.fileio import atomic_path, write_png

ROWS = (("target", "target"), ("target", "source"), ("source", "source"), ("source", "target"))


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return (x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy())


IGNORED_TINT = (255, 0, 200)  # magenta: what the loss leaves out (occlusion on)
IGNORED_ALPHA = 0.6  # how strongly it covers the input face


def tint_ignored(rgb: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """uint8 images [K,H,W,3] with the pixels the loss ignores (keep < 0.5, [K,H,W]) tinted magenta."""
    h = (np.asarray(keep) < 0.5)[..., None].astype(np.float32) * IGNORED_ALPHA
    out = rgb.astype(np.float32) * (1 - h) + np.asarray(IGNORED_TINT, np.float32) * h
    return (out + 0.5).astype(np.uint8)


def preview_grid(rows: Sequence[tuple], scale: int = 1) -> np.ndarray:
    """One row per (label, inputs [K,3,S,S], outputs [K,3,S,S][, keep [K,1,S,S]]): label, then
    input|output pairs. With a keep mask (occlusion-aware training) the input faces are tinted
    magenta where the loss ignores them (keep < 0.5): what the occlusion network found in front
    of the face.

    Rows may hold different numbers of faces (validation slices of different sizes); the grid
    is as wide as the fullest row and shorter rows leave their end empty."""
    from PIL import Image, ImageDraw

    k = max(int(r[1].shape[0]) for r in rows)
    s = int(rows[0][1].shape[-1])
    s2 = s * scale
    label_w = max(110, s2)
    gap = 4
    w = label_w + k * (2 * s2 + gap)
    h = len(rows) * (s2 + gap)
    canvas = np.full((h, w, 3), 32, np.uint8)
    any_keep = False
    for r, (_, inp, out, *rest) in enumerate(rows):
        a, b = _to_u8(inp), _to_u8(out)
        keep = rest[0] if rest else None
        if keep is not None:
            a = tint_ignored(a, keep.detach().float()[:, 0].cpu().numpy()[: len(a)])
            any_keep = True
        if scale > 1:
            a = a.repeat(scale, 1).repeat(scale, 2)
            b = b.repeat(scale, 1).repeat(scale, 2)
        y = r * (s2 + gap)
        for i in range(min(len(a), len(b))):
            x = label_w + i * (2 * s2 + gap)
            canvas[y : y + s2, x : x + s2] = a[i]
            canvas[y : y + s2, x + s2 : x + 2 * s2] = b[i]
    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    for r, (label, *_) in enumerate(rows):
        text = label.replace("->", "→").replace("→", " -> ") + "\n(in | out)" + ("\nmagenta: no loss" if any_keep else "")
        draw.text((6, r * (s2 + gap) + s2 // 2 - 12), text, fill=(230, 230, 230))
    return np.asarray(im)


def write_preview(path: str | os.PathLike[str], rows: Sequence[tuple]) -> None:
    s = rows[0][1].shape[-1]
    write_png(path, preview_grid(rows, scale=2 if s < 96 else 1))


def write_loss_curve(path: str | os.PathLike[str], losses: dict[str, list[float]], title: str = "") -> None:
    """Training loss (per identity, smoothed) and validation loss against steps, log scale."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    steps = np.asarray(losses.get("step", []), float)
    for key, colour, label in (("source", "tab:blue", "train source"), ("target", "tab:orange", "train target")):
        y = np.asarray(losses.get(key, []), float)
        if len(y):
            ax.plot(steps, y, color=colour, alpha=0.35, lw=1, label=label)
    vsteps = np.asarray(losses.get("val_step", []), float)
    for key, colour, label in (("val_source", "tab:blue", "validation source"), ("val_target", "tab:orange", "validation target")):
        y = np.asarray(losses.get(key, []), float)
        if len(y):
            ax.plot(vsteps, y, color=colour, lw=2, marker="o", ms=3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if len(steps) or len(vsteps):
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, format="png")


def plateaued(val: Sequence[float], window: int = 5, min_improvement: float = 0.01) -> bool:
    """True when the best of the last ``window`` validation losses is not ``min_improvement``
    (relative) better than the best before them."""
    if len(val) < window + 2:
        return False
    before = min(val[:-window])
    recent = min(val[-window:])
    return recent > before * (1.0 - min_improvement)
