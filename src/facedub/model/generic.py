"""A configurable shared-encoder autoencoder; ``lite`` and ``hd`` are two settings of it.

Encoder: strided convolutions (one per width in ``enc_widths``, each halving the side) →
flatten → Dense(``dense``) → Dense(side·side·last) → upscale(``enc_up``). Decoder: one
upscale per width in ``dec_widths`` (each doubling the side), optionally followed by residual
blocks, then a convolution to RGB (+ mask). The side after the encoder's convolutions is
``size / 2**len(enc_widths)``; the decoder returns to ``size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from facedub.model.blocks import ConvAct, Dense, ResBlock, Upscale, scaled
from facedub.model.registry import ModelConfig, ModelMismatch


@dataclass(frozen=True)
class GenericConfig(ModelConfig):
    enc_widths: tuple[int, ...] = (48, 96, 192, 384)  # encoder conv widths, one stride-2 conv each
    enc_kernels: tuple[int, ...] = (5, 3, 3, 3)  # kernel size of each encoder conv
    dense: int = 256  # bottleneck width
    enc_up: int = 192  # channels after the encoder's upscale
    dec_widths: tuple[int, ...] = (128, 64, 32)  # decoder upscale widths, one ×2 each
    dec_res: tuple[int, ...] = (0, 0, 0)  # residual blocks after each decoder upscale
    out_kernel: int = 3  # kernel of the final RGB(+mask) convolution


def check_generic(c: GenericConfig) -> None:
    if len(c.enc_kernels) != len(c.enc_widths) or len(c.dec_res) != len(c.dec_widths):
        raise ModelMismatch("enc_kernels/enc_widths or dec_res/dec_widths lengths differ")
    if 2 ** len(c.enc_widths) > c.size or 2 ** (len(c.dec_widths) + 1) != 2 ** len(c.enc_widths):
        raise ModelMismatch(f"{len(c.enc_widths)} encoder stages need {len(c.enc_widths) - 1} decoder stages")


def make_encoder(c: GenericConfig) -> nn.Module:
    check_generic(c)
    ws = [scaled(w, c.width) for w in c.enc_widths]
    layers: list[nn.Module] = []
    cin = 3
    for w, k in zip(ws, c.enc_kernels):
        layers.append(ConvAct(cin, w, k, 2))
        cin = w
    s = c.size // 2 ** len(ws)
    layers += [
        Dense(cin * s * s, c.dense),
        Dense(c.dense, cin * s * s, unflatten=(cin, s, s)),
        Upscale(cin, scaled(c.enc_up, c.width)),
    ]
    return nn.Sequential(*layers)


def make_decoder(c: GenericConfig) -> nn.Module:
    cin = scaled(c.enc_up, c.width)
    layers: list[nn.Module] = []
    for w, nres in zip(c.dec_widths, c.dec_res):
        w = scaled(w, c.width)
        layers.append(Upscale(cin, w))
        layers += [ResBlock(w) for _ in range(nres)]
        cin = w
    layers.append(nn.Conv2d(cin, 4 if c.learned_mask else 3, c.out_kernel, padding=c.out_kernel // 2))
    return nn.Sequential(*layers)
