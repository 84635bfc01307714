"""``saehd``: a 256 px model for CUDA users, in the class of DeepFaceLab's SAEHD (its "df-d" layout).

The layout of DeepFaceLab's SAEHD with the ``df`` architecture and the ``-d`` option, written
from its published description (not its code): a shared encoder of four 5×5 stride-2
convolutions (``e_dims`` × 1, 2, 4, 8 channels) and an inner bottleneck (Dense ``ae_dims`` →
Dense to a ``size/32`` grid of ``ae_dims``·2 channels → ×2 upscale); per identity a decoder
of three ×2 upscales (``d_dims`` × 8, 4, 2), each followed by a residual block, that stops at
half the output side, where a 3×3 convolution gives four RGB pictures that a pixel shuffle
interleaves into the full ``size`` (the ``-d`` trick: the last, most expensive doubling costs
one convolution); and beside it a learned mask head, a narrow decoder of its own (``d_mask_dims``
× 8, 4, 2, 1) to a one-channel face mask at the full side.

Trained with facedub's losses (L1 + DSSIM, eyes and mouth weighted up, the mask loss against
the landmark hull — with ``--occlusion auto`` against the visible face, so the mask head learns
to leave out what covers the face). At 256 px with the default dims it has about 107 M
parameters and is meant for a GPU; every size, dim and ``double_res`` is configurable, and the
tests train a tiny version on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from facedub.model.base import SwapAutoencoder
from facedub.model.blocks import ConvAct, Dense, ResBlock, Upscale, scaled
from facedub.model.registry import ModelConfig, ModelMismatch, register


@dataclass(frozen=True)
class SAEHDConfig(ModelConfig):
    size: int = 256  # output side in pixels (a multiple of 32 with double_res, else of 16)
    coverage: float = 0.875  # share of the 256 px aligned crop: the whole face to below the chin
    e_dims: int = 64  # encoder channels of the first convolution (then ×2, ×4, ×8)
    ae_dims: int = 256  # bottleneck width
    d_dims: int = 64  # decoder channels (upscales of 8, 4, 2 × d_dims)
    d_mask_dims: int = 22  # mask head channels (upscales of 8, 4, 2, 1 × d_mask_dims)
    double_res: bool = True  # decode to size/2 and interleave four RGB pictures to the full side (DFL's -d)
    learned_mask: bool = True  # the mask head; its output is the 4th channel
    lr: float = 5e-5  # Adam learning rate
    beta1: float = 0.5  # Adam β1
    beta2: float = 0.999  # Adam β2
    batch_size: int = 8  # per identity (a 256 px batch of 8 is what an 8–12 GB GPU holds)
    l1_weight: float = 1.0  # mean absolute error
    dssim_weight: float = 1.0  # structural loss
    eye_mouth_weight: float = 3.0  # eyes and mouth count four times
    mask_weight: float = 0.5  # mask loss


def _levels(c: SAEHDConfig) -> int:
    """Encoder downscales (4) and the side of the inner dense grid."""
    need = 32 if c.double_res else 16
    if c.size % need:
        raise ModelMismatch(f"saehd: size must be a multiple of {need}{' with double_res' if c.double_res else ''} (got {c.size})")
    return c.size // need


class _Encoder(nn.Sequential):
    def __init__(self, c: SAEHDConfig) -> None:
        low = _levels(c)
        ws = [scaled(c.e_dims * m, c.width) for m in (1, 2, 4, 8)]
        ae, ae_out = scaled(c.ae_dims, c.width), scaled(c.ae_dims * 2, c.width)
        layers: list[nn.Module] = []
        cin = 3
        for w in ws:
            layers.append(ConvAct(cin, w, 5, 2))
            cin = w
        s = c.size // 16  # side after four stride-2 convolutions
        layers += [Dense(cin * s * s, ae), Dense(ae, low * low * ae_out, unflatten=(ae_out, low, low)), Upscale(ae_out, ae_out)]
        super().__init__(*layers)


class _Decoder(nn.Module):
    """RGB decoder + mask head of one identity: logits [B,4,S,S] (RGB, mask) or [B,3,S,S]."""

    def __init__(self, c: SAEHDConfig) -> None:
        super().__init__()
        cin = scaled(c.ae_dims * 2, c.width)
        layers: list[nn.Module] = []
        prev = cin
        for m in (8, 4, 2):
            w = scaled(c.d_dims * m, c.width)
            layers += [Upscale(prev, w), ResBlock(w)]
            prev = w
        self.body = nn.Sequential(*layers)
        self.double = c.double_res
        self.rgb = nn.Conv2d(prev, 12 if c.double_res else 3, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2) if c.double_res else nn.Identity()
        self.mask: nn.Module | None = None
        if c.learned_mask:
            mlayers: list[nn.Module] = []
            prev = cin
            for m in (8, 4, 2, 1) if c.double_res else (8, 4, 2):
                w = scaled(c.d_mask_dims * m, c.width)
                mlayers.append(Upscale(prev, w))
                prev = w
            mlayers.append(nn.Conv2d(prev, 1, 1))
            self.mask = nn.Sequential(*mlayers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        rgb = self.shuffle(self.rgb(self.body(z)))
        if self.mask is None:
            return rgb
        return torch.cat([rgb, self.mask(z)], 1)


@register("saehd", SAEHDConfig, "GPU 256 px model in the class of DeepFaceLab's SAEHD (df-d): residual decoders at half side + pixel-shuffle output, learned mask head")
class SAEHD(SwapAutoencoder):
    """The 256 px GPU model (see the module docstring)."""

    def __init__(self, config: SAEHDConfig) -> None:
        super().__init__(config, _Encoder(config), _Decoder(config), _Decoder(config))
