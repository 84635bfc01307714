"""The shared-encoder autoencoder shape every architecture follows.

One encoder sees faces of both identities; each identity has its own decoder. Encoding a
target face and decoding it with the *source* decoder gives the source person with the
target's pose, expression and lighting (the swap).
"""

from __future__ import annotations

import torch
from torch import nn

from facedub.model.registry import ModelConfig


class SwapAutoencoder(nn.Module):
    """``encoder`` + ``decoders["source"]`` + ``decoders["target"]``.

    ``forward(x, side)``: ``x`` is a float batch [B,3,S,S] in [0, 1]; returns
    ``(rgb [B,3,S,S] in [0,1], mask [B,1,S,S] in [0,1] or None)``.
    """

    config: ModelConfig

    def __init__(self, config: ModelConfig, encoder: nn.Module, dec_source: nn.Module, dec_target: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoders = nn.ModuleDict({"source": dec_source, "target": dec_target})

    def _split(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        y = torch.sigmoid(y)
        if self.config.learned_mask:
            return y[:, :3], y[:, 3:4]
        return y, None

    def decode(self, z: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        if side not in self.decoders:
            raise ValueError(f"side must be 'source' or 'target', got {side!r}")
        return self._split(self.decoders[side](z))

    def forward(self, x: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.decode(self.encoder(x), side)

    def forward_both(
        self, x_source: torch.Tensor, x_target: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]]:
        """Training forward: one encoder pass over both batches, each decoded by its own decoder."""
        n = x_source.shape[0]
        z = self.encoder(torch.cat([x_source, x_target], 0))
        return self.decode(z[:n], "source"), self.decode(z[n:], "target")

    def out_channels(self) -> int:
        return 4 if self.config.learned_mask else 3
