r"""The evidence lower bound, :math:`\mathbb{E}_q[\log p(x\mid z)] - \mathrm{KL}(q(z\mid x)\,\|\,p(z))`.

Like Pyro's ``TraceMeanField_ELBO`` it uses the closed-form KL when the prior has one and a
single-sample Monte Carlo estimate otherwise (:mod:`ppvae.objectives.terms`), and it
averages ``num_particles`` independent draws.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ppvae.objectives.base import Objective, register
from ppvae.objectives.terms import elbo_terms


@register("elbo")
class ELBO(Objective):
    """The plain ELBO. ``analytic_kl=False`` forces the Monte Carlo KL estimate."""

    validation_is_elbo = True

    def __init__(self, num_particles: int = 1, analytic_kl: bool = True):
        super().__init__()
        if int(num_particles) < 1:
            raise ValueError(f"elbo: num_particles must be >= 1, got {num_particles!r}")
        self.num_particles = int(num_particles)
        self.analytic_kl = bool(analytic_kl)

    def differentiable_loss(
        self, model: Callable, guide: Callable, *args, **kwargs
    ) -> torch.Tensor:
        total = 0.0
        recon = kl = 0.0
        for _ in range(self.num_particles):
            terms = elbo_terms(model, guide, *args, analytic_kl=self.analytic_kl, **kwargs)
            total = total - terms.elbo()
            recon += float(terms.recon.detach().mean())
            kl += float(terms.kl.detach().mean())
        self.metrics = {"recon": -recon / self.num_particles, "kl": kl / self.num_particles}
        return total / self.num_particles


def elbo(num_particles: int = 1) -> ELBO:
    return ELBO(num_particles=num_particles)
