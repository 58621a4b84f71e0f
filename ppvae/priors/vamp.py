r"""The VampPrior (Tomczak & Welling, 2018): a mixture of the encoder's own posteriors.

.. math::  p(z) = \frac{1}{K} \sum_{k=1}^K q(z \mid u_k)

at K learned *pseudo-inputs* :math:`u_k` in the encoder's feature space. For mixed-type
tables the pseudo-inputs are unconstrained vectors (the one-hot blocks of categorical columns
are relaxed to real values); they start at transformed training rows plus a little noise
(:meth:`VampPrior.init_from`, called by ``TabularVAE.fit``). The encoder is the model's own
(shared, not copied), so p(z) follows the aggregate posterior as training goes. The KL has
no closed form: objectives use a Monte Carlo estimate.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from ppvae.priors.base import Prior, register


@register("vamp")
class VampPrior(Prior):
    """Mixture of q(z | u_k) over ``components`` learned pseudo-inputs."""

    def __init__(
        self, latent_dim: int | None = None, components: int = 64, init_noise: float = 0.1
    ):
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise ValueError(f"vamp: components must be a positive integer, got {components!r}")
        self.components, self.init_noise = components, float(init_noise)
        super().__init__(latent_dim)
        self._encoder: list[nn.Module] = []  # a list, so the encoder is not a submodule

    def bind(self, model: nn.Module) -> None:
        super().bind(model)
        self._encoder[:] = [model.encoder]
        if not hasattr(self, "pseudo_inputs"):
            self.pseudo_inputs = nn.Parameter(
                0.5 * torch.randn(self.components, model.layout.input_dim)
            )

    @torch.no_grad()
    def init_from(self, features: torch.Tensor) -> None:
        """Start the pseudo-inputs at ``components`` random rows of ``features`` ``[n, D]``."""
        self._check_bound()
        idx = torch.randint(0, features.shape[0], (self.components,), device=features.device)
        start = features[idx] + self.init_noise * torch.randn_like(features[idx])
        self.pseudo_inputs.copy_(start.to(self.pseudo_inputs.device))

    def _check_bound(self) -> None:
        if not self._encoder:
            raise RuntimeError(
                "the VampPrior needs its model's encoder: it is bound when the model is built"
            )

    def forward(self) -> dist.Distribution:
        self._check_bound()
        loc, scale = self._encoder[0](self.pseudo_inputs)
        weights = torch.zeros(self.components, device=loc.device, dtype=loc.dtype)
        return dist.MixtureSameFamily(
            dist.Categorical(logits=weights), dist.Normal(loc, scale).to_event(1)
        )


def vamp(latent_dim: int | None = None, components: int = 64) -> VampPrior:
    return VampPrior(latent_dim, components)
