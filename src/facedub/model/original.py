"""``original``: the 2018 shared-encoder autoencoder, layer for layer.

64×64×3 input. Encoder: four Conv2D(k5, s2) + LeakyReLU(0.1) with 128, 256, 512, 1024
filters → flatten → Dense(1024) → Dense(4·4·1024) → reshape → upscale(512). Each decoder:
upscale(256) → upscale(128) → upscale(64) → Conv2D(k5, 3) + sigmoid, where upscale(n) is
Conv2D(k3, 4n) + LeakyReLU(0.1) + pixel shuffle ×2. Trained with L1 loss and Adam
(lr 5e-5, β1 0.5) on random-warped faces. About 82 M parameters; ≈11.4 GFLOP per example
per training step (forward + backward) at 64 px — slow on a CPU; prefer ``lite`` there.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from facedub.model.base import SwapAutoencoder
from facedub.model.blocks import ConvAct, Dense, Upscale, scaled
from facedub.model.registry import ModelConfig, register


@dataclass(frozen=True)
class OriginalConfig(ModelConfig):
    """The 2018 settings. ``width`` scales every convolution; ``dense`` is the bottleneck size."""

    size: int = 64  # input side in pixels (the 2018 model: 64; any multiple of 16 works)
    coverage: float = 0.6875  # share of the 256 px aligned crop the model sees
    width: float = 1.0  # channel multiplier on 128-256-512-1024 / 512 / 256-128-64
    dense: int = 1024  # bottleneck width (Dense(1024))
    lr: float = 5e-5  # Adam learning rate of the 2018 model
    beta1: float = 0.5  # Adam β1 of the 2018 model
    batch_size: int = 64  # the 2018 batch (per identity)
    l1_weight: float = 1.0  # L1 only
    dssim_weight: float = 0.0  # no structural loss in 2018
    eye_mouth_weight: float = 0.0  # no landmark weighting in 2018


def _encoder(c: OriginalConfig) -> nn.Module:
    w = [scaled(n, c.width) for n in (128, 256, 512, 1024)]
    s = c.size // 16
    up = scaled(512, c.width)
    return nn.Sequential(
        ConvAct(3, w[0], 5, 2),
        ConvAct(w[0], w[1], 5, 2),
        ConvAct(w[1], w[2], 5, 2),
        ConvAct(w[2], w[3], 5, 2),
        Dense(w[3] * s * s, c.dense),
        Dense(c.dense, s * s * w[3], unflatten=(w[3], s, s)),
        Upscale(w[3], up),
    )


def _decoder(c: OriginalConfig, out_ch: int) -> nn.Module:
    up = scaled(512, c.width)
    w = [scaled(n, c.width) for n in (256, 128, 64)]
    return nn.Sequential(
        Upscale(up, w[0]),
        Upscale(w[0], w[1]),
        Upscale(w[1], w[2]),
        nn.Conv2d(w[2], out_ch, 5, padding=2),
    )


@register("original", OriginalConfig, "the 2018 model: 64 px, 82 M parameters, L1, Adam 5e-5 (slow on CPU)")
class Original(SwapAutoencoder):
    """The 2018 model (see the module docstring)."""

    def __init__(self, config: OriginalConfig) -> None:
        out_ch = 4 if config.learned_mask else 3
        super().__init__(config, _encoder(config), _decoder(config, out_ch), _decoder(config, out_ch))
