"""The encoder and decoder networks: plain ``nn.Module``s with no Pyro calls.

Shapes: ``B`` rows, ``D = layout.input_dim`` features, ``d`` latent dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.functional import softplus

MIN_SCALE = 1e-3


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Amortised Gaussian posterior: features ``[B, D]`` -> ``(loc, scale)``, each ``[B, d]``."""

    def __init__(self, input_dim: int, hidden: Sequence[int], latent_dim: int):
        super().__init__()
        self.body = mlp([input_dim, *hidden])
        self.head = nn.Linear(hidden[-1] if hidden else input_dim, 2 * latent_dim)
        self.act = nn.ReLU()

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.act(self.body(features)) if len(self.body) else features
        loc, raw = self.head(h).chunk(2, dim=-1)
        return loc, softplus(raw) + 1e-4


class Decoder(nn.Module):
    """Latent ``[B, d]`` -> raw likelihood parameters, one block per width in ``widths``.

    Returns a tuple of tensors ``[B, w]`` for ``w`` in ``widths`` (the model's slot groups
    turn each block into a distribution).
    """

    def __init__(self, latent_dim: int, hidden: Sequence[int], widths: Sequence[int]):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.body = mlp([latent_dim, *hidden])
        self.head = nn.Linear(hidden[-1] if hidden else latent_dim, sum(self.widths))
        self.act = nn.ReLU()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.act(self.body(z)) if len(self.body) else z
        return self.head(h).split(self.widths, dim=-1)
