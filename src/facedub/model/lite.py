"""``lite``: a swap model for people without a GPU.

Built for two CPU cores: 80 px, 3×3 convolutions after a 5×5 stem, channel counts that are
multiples of 16 (oneDNN's fast path), a narrow 256-wide bottleneck and decoders a quarter as
wide as the 2018 ones — about 4× fewer FLOPs per example than ``original``. It sees 87.5 % of
the aligned crop, down to below the chin: at the 2018 model's 68.75 % the chin and the lower
jaw line fall outside the model square and stay the target's, and face shape is a large part
of what makes a face read as someone. With a higher
learning rate, L1 + DSSIM and extra weight on eyes and mouth it learns a recognisable swap on
two cores within an hour (see BENCHMARKS.md for the measured validation SSIM).
"""

from __future__ import annotations

from dataclasses import dataclass

from facedub.model.base import SwapAutoencoder
from facedub.model.generic import GenericConfig, make_decoder, make_encoder
from facedub.model.registry import register


@dataclass(frozen=True)
class LiteConfig(GenericConfig):
    size: int = 80  # input side in pixels
    coverage: float = 0.875  # share of the 256 px aligned crop the model sees: chin and jaw included
    enc_widths: tuple[int, ...] = (48, 96, 192, 384)  # encoder conv widths (stride 2 each)
    enc_kernels: tuple[int, ...] = (5, 3, 3, 3)  # 5×5 stem, then 3×3
    dense: int = 256  # bottleneck width
    enc_up: int = 192  # channels after the encoder's upscale (10×10 at 80 px)
    dec_widths: tuple[int, ...] = (128, 64, 32)  # decoder upscale widths: 20, 40, 80 px
    dec_res: tuple[int, ...] = (0, 0, 0)  # no residual blocks (speed)
    lr: float = 2e-4  # higher than 2018's 5e-5: the small net tolerates it and learns faster
    beta1: float = 0.5  # Adam β1
    beta2: float = 0.99  # Adam β2
    batch_size: int = 16  # per identity
    l1_weight: float = 1.0  # mean absolute error
    dssim_weight: float = 1.0  # structural loss
    eye_mouth_weight: float = 2.0  # eyes and mouth count three times


@register("lite", LiteConfig, "CPU model: 80 px, whole face to the chin, ~4x fewer FLOPs than original, L1+DSSIM, eye/mouth weighting")
class Lite(SwapAutoencoder):
    """The CPU model (see the module docstring)."""

    def __init__(self, config: LiteConfig) -> None:
        super().__init__(config, make_encoder(config), make_decoder(config), make_decoder(config))
