"""``hd``: the quality model for GPU users.

128 px, five strided 5×5/3×3 encoder convolutions, a 512-wide bottleneck, decoders with
residual blocks at 16, 32 and 64 px, and a learned mask channel trained against the face
hull from the landmarks (so conversion can respect occlusions such as a hand or hair).
Loss: L1 + DSSIM, eyes and mouth weighted up, plus the mask loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from facedub.model.base import SwapAutoencoder
from facedub.model.generic import GenericConfig, make_decoder, make_encoder
from facedub.model.registry import register


@dataclass(frozen=True)
class HDConfig(GenericConfig):
    size: int = 128  # input side in pixels
    coverage: float = 0.6875  # share of the 256 px aligned crop the model sees
    enc_widths: tuple[int, ...] = (64, 128, 256, 512, 768)  # five stride-2 convs: 128 → 4 px
    enc_kernels: tuple[int, ...] = (5, 5, 5, 3, 3)  # kernel of each encoder conv
    dense: int = 512  # bottleneck width
    enc_up: int = 512  # channels after the encoder's upscale (8×8)
    dec_widths: tuple[int, ...] = (384, 192, 96, 48)  # decoder upscales: 16, 32, 64, 128 px
    dec_res: tuple[int, ...] = (1, 1, 1, 0)  # residual blocks after each upscale
    out_kernel: int = 5  # final convolution kernel
    learned_mask: bool = True  # 4th output channel: the face mask
    lr: float = 5e-5  # Adam learning rate
    beta1: float = 0.5  # Adam β1
    beta2: float = 0.999  # Adam β2
    batch_size: int = 16  # per identity
    l1_weight: float = 1.0  # mean absolute error
    dssim_weight: float = 1.0  # structural loss
    eye_mouth_weight: float = 3.0  # eyes and mouth count four times
    mask_weight: float = 0.5  # mask loss against the landmark face hull


@register("hd", HDConfig, "GPU quality model: 128 px, residual decoders, learned mask, L1+DSSIM, eye/mouth weighting")
class HD(SwapAutoencoder):
    """The GPU quality model (see the module docstring)."""

    def __init__(self, config: HDConfig) -> None:
        super().__init__(config, make_encoder(config), make_decoder(config), make_decoder(config))
