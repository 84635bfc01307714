"""Building blocks shared by the architectures.

Plain convolutions, LeakyReLU and pixel shuffle: the layers oneDNN runs fastest on CPU in
channels-last layout. No normalisation layers, so a batch of any size (even 1) behaves the
same in training and conversion.
"""

from __future__ import annotations

import torch
from torch import nn

LEAK = 0.1  # LeakyReLU slope of the 2018 model


def scaled(width: int, mult: float, minimum: int = 4) -> int:
    """``width × mult`` rounded to a multiple of 4 (oneDNN likes channel counts in multiples of 8/16)."""
    return max(minimum, int(round(width * mult / 4.0)) * 4)


class ConvAct(nn.Sequential):
    """Conv2d (``same`` padding for odd kernels) + LeakyReLU(0.1)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2),
            nn.LeakyReLU(LEAK, inplace=True),
        )


class Upscale(nn.Sequential):
    """The 2018 ``upscale(n)``: Conv2d(k3, 4n) + LeakyReLU(0.1) + pixel shuffle ×2 → n channels."""

    def __init__(self, cin: int, n: int, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(cin, 4 * n, kernel, padding=kernel // 2),
            nn.LeakyReLU(LEAK, inplace=True),
            nn.PixelShuffle(2),
        )


class ResBlock(nn.Module):
    """Two 3×3 convolutions with a skip connection: ``lrelu(x + conv(lrelu(conv(x))))``.

    The second convolution starts at a small scale so a fresh block is close to identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)
        with torch.no_grad():
            self.conv2.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class Dense(nn.Module):
    """Flatten → Linear, or Linear → reshape to (C, H, W) with ``unflatten``."""

    def __init__(self, fin: int, fout: int, unflatten: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.linear = nn.Linear(fin, fout)
        self.unflatten = unflatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x.flatten(1))
        if self.unflatten is not None:
            # Linear output is contiguous NCHW; convert to the caller's memory format lazily.
            y = y.view(-1, *self.unflatten)
        return y
