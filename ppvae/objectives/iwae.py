r"""Importance-weighted and Rényi bounds as training objectives.

.. math::  \mathcal{L}_\alpha(x) = \frac{1}{1-\alpha}\,\log \frac1K \sum_{k=1}^K
           \Big(\frac{p(x, z_k)}{q(z_k \mid x)}\Big)^{1-\alpha}, \qquad z_k \sim q(z\mid x)

the Rényi bound of Li & Turner (2016), Pyro's ``RenyiELBO``. :math:`\alpha = 0` (the default)
is the IWAE bound of Burda et al. (2016), :math:`\mathcal{L}_0 \ge \mathrm{ELBO}`, tighter as
K grows; :math:`\alpha \to 1` is the ELBO. Computed per row, as Pyro's ``RenyiELBO`` with
``vectorize_particles=True`` does for a model whose sites all sit in the ``"rows"`` plate, but
from the K-fold repeated batch of :func:`ppvae.evaluation.particle_log_weights` (so any model
works, broadcasting or not) and as a differentiable loss (reparameterised gradients).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ppvae.evaluation import particle_log_weights
from ppvae.objectives.base import Objective, register


@register("iwae")
class IWAE(Objective):
    """Train on the K-particle Rényi bound; ``alpha=0`` is the IWAE bound."""

    def __init__(self, num_particles: int = 8, alpha: float = 0.0):
        super().__init__()
        if (
            isinstance(num_particles, bool)
            or not isinstance(num_particles, int)
            or num_particles < 1
        ):
            raise ValueError(
                f"iwae: num_particles must be a positive integer, got {num_particles!r}"
            )
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha == 1:
            raise ValueError(f"iwae: alpha must be a number other than 1, got {alpha!r}")
        self.num_particles, self.alpha = num_particles, float(alpha)

    def differentiable_loss(self, model: Callable, guide: Callable, data) -> torch.Tensor:
        lw = particle_log_weights(model, guide, data, self.num_particles)  # [B, K]
        scaled = (1.0 - self.alpha) * lw
        bound = (torch.logsumexp(scaled, dim=-1) - math.log(self.num_particles)) / (1 - self.alpha)
        self.metrics = {"bound": float(bound.detach().mean())}
        return -bound.sum()


def iwae(num_particles: int = 8, alpha: float = 0.0) -> IWAE:
    return IWAE(num_particles, alpha)
