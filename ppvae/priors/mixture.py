r"""A learnable Gaussian mixture prior.

.. math::  p(z) = \sum_{k=1}^K \pi_k \, \mathcal{N}(z;\, \mu_k, \operatorname{diag}\sigma_k^2)

with :math:`\pi = \operatorname{softmax}(\text{logits})`, all learned with the VAE. The means
start as draws from N(0, I) and the scales at 1, so at initialisation p(z) is a broad blob
around the origin that training can split into modes. The KL to q(z|x) has no closed form:
objectives use a Monte Carlo estimate.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from ppvae.priors.base import Prior, register


@register("mixture")
class Mixture(Prior):
    """Diagonal Gaussian mixture with ``components`` learnable components."""

    def __init__(self, latent_dim: int | None = None, components: int = 10):
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise ValueError(f"mixture: components must be a positive integer, got {components!r}")
        self.components = components
        super().__init__(latent_dim)

    def _build(self, latent_dim: int) -> None:
        self.logits = nn.Parameter(torch.zeros(self.components))
        self.loc = nn.Parameter(torch.randn(self.components, latent_dim))
        self.log_scale = nn.Parameter(torch.zeros(self.components, latent_dim))

    def forward(self) -> dist.Distribution:
        components = dist.Normal(self.loc, self.log_scale.exp()).to_event(1)
        return dist.MixtureSameFamily(dist.Categorical(logits=self.logits), components)


def mixture(latent_dim: int | None = None, components: int = 10) -> Mixture:
    return Mixture(latent_dim, components)
