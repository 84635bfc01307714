"""Losses: L1, DSSIM, an optional high-frequency L1 and the mask loss, with extra weight on eyes and mouth.

All are means over pixels weighted by ``1 + eye_mouth_weight · eyes_mouth_mask`` (normalised
by the weights' mean, so the scale does not change with the weighting), times the keep mask
of occlusion-aware training (0 where something covers the face).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from facedub.model.registry import ModelConfig


@lru_cache(maxsize=8)
def _gauss(window: int, sigma: float) -> torch.Tensor:
    x = torch.arange(window, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, window: int, sigma: float) -> torch.Tensor:
    c = x.shape[1]
    g = _gauss(window, sigma).to(x)
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, window), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, window, 1), groups=c)


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM (Wang et al. 2004) per pixel and channel, images in [0,1]; 'valid' border (smaller map)."""
    c1, c2 = 0.01**2, 0.03**2
    window = min(window, a.shape[-1], a.shape[-2])
    sigma = min(sigma, window / 6 if window < 11 else sigma)
    mu_a, mu_b = _blur(a, window, sigma), _blur(b, window, sigma)
    s_aa = _blur(a * a, window, sigma) - mu_a**2
    s_bb = _blur(b * b, window, sigma) - mu_b**2
    s_ab = _blur(a * b, window, sigma) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image: [B]."""
    return ssim_map(a, b).mean((1, 2, 3))


def high_band(x: torch.Tensor, window: int = 7, sigma: float = 1.0) -> torch.Tensor:
    """x minus its Gaussian blur (σ 1 px), 'valid' border: the edges and texture a blurry
    decoder loses and a plain L1 barely pays for."""
    b = _blur(x, window, sigma)
    return _crop_like(x, b) - b


def _crop_like(w: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    dh = (w.shape[-2] - m.shape[-2]) // 2
    dw = (w.shape[-1] - m.shape[-1]) // 2
    return w[..., dh : dh + m.shape[-2], dw : dw + m.shape[-1]]


def weighted_mean(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    if w is None:
        return x.mean()
    w = _crop_like(w, x)
    return (x * w).mean() / w.mean().clamp_min(1e-8)


def ssim_window(h: int, w: int, window: int = 11) -> int:
    """The SSIM window :func:`ssim_map` uses for an image of h×w pixels."""
    return min(window, h, w)


def window_min(keep: torch.Tensor, window: int) -> torch.Tensor:
    """The smallest ``keep`` under each SSIM window ('valid', the size of :func:`ssim_map`):
    a window that reaches a pixel carrying no loss carries none either, so what lies there
    cannot move the structural loss through a neighbouring window."""
    return -F.max_pool2d(-keep, window, stride=1)


def pixel_weights(eyes_mouth: torch.Tensor | None, cfg: ModelConfig) -> torch.Tensor | None:
    if eyes_mouth is None or cfg.eye_mouth_weight <= 0:
        return None
    return 1.0 + cfg.eye_mouth_weight * eyes_mouth


def reconstruction_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    cfg: ModelConfig,
    eyes_mouth: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    face_mask: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """The training loss of one identity's batch, as the architecture's config asks.

    ``keep`` [B,1,S,S] (occlusion on): 0 where the face is hidden behind something. The
    pixel losses are multiplied by it (the structural loss by its minimum under each SSIM
    window), so whatever is in front of the face neither adds to the loss nor moves its
    gradient; a learned mask is trained towards the visible face (hull × keep)."""
    pred = pred.float()
    w = pixel_weights(eyes_mouth, cfg)
    loss = pred.new_zeros(())
    if cfg.l1_weight:
        w1 = w if keep is None else (keep if w is None else w * keep)
        loss = loss + cfg.l1_weight * weighted_mean((pred - target).abs(), w1)
    if cfg.dssim_weight:
        w2 = w
        if keep is not None:
            kw = window_min(keep, ssim_window(pred.shape[-2], pred.shape[-1]))
            w2 = kw if w is None else _crop_like(w, kw) * kw
        loss = loss + cfg.dssim_weight * weighted_mean((1 - ssim_map(pred, target)) / 2, w2)
    if getattr(cfg, "hf_weight", 0.0):
        w3 = w if keep is None else (keep if w is None else w * keep)
        loss = loss + cfg.hf_weight * weighted_mean((high_band(pred) - high_band(target)).abs(), w3)
    if pred_mask is not None and face_mask is not None and cfg.mask_weight:
        goal = face_mask if keep is None else face_mask * keep
        loss = loss + cfg.mask_weight * (pred_mask.float() - goal).abs().mean()
    return loss


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse <= 0 else 10 * math.log10(1.0 / mse)
