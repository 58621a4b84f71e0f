r"""The importance-weighted bound (IWAE; Burda et al. 2016) as a training objective.

.. math::  \mathcal{L}_K(x) = \mathbb{E}\Big[\log \frac1K \sum_{k=1}^K
           \frac{p(x, z_k)}{q(z_k \mid x)}\Big] \;\ge\; \mathcal{L}_1(x) = \mathrm{ELBO}(x)

It is the :math:`\alpha = 0` member of the Rényi family of Pyro's ``RenyiELBO`` (Li &
Turner 2016), computed here by :func:`ppvae.evaluation.importance_log_likelihood` with
reparameterised gradients, so it works with any model that has a ``"rows"`` plate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ppvae.evaluation import importance_log_likelihood
from ppvae.objectives.base import Objective, register


@register("iwae")
class IWAE(Objective):
    """Train on the K-sample importance-weighted bound."""

    def __init__(self, num_particles: int = 8):
        super().__init__()
        if (
            isinstance(num_particles, bool)
            or not isinstance(num_particles, int)
            or num_particles < 1
        ):
            raise ValueError(
                f"iwae: num_particles must be a positive integer, got {num_particles!r}"
            )
        self.num_particles = num_particles

    def differentiable_loss(
        self, model: Callable, guide: Callable, data, *args, **kwargs
    ) -> torch.Tensor:
        bound = importance_log_likelihood(
            model, guide, data, num_particles=self.num_particles, grad=True
        )
        self.metrics = {"iw_bound": float(bound.detach().mean())}
        return -bound.sum()


def iwae(num_particles: int = 8) -> IWAE:
    return IWAE(num_particles)
