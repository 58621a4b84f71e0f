r"""The evidence lower bound, :math:`\mathbb{E}_q[\log p(x\mid z)] - \mathrm{KL}(q(z\mid x)\,\|\,p(z))`.

Pyro's ``Trace_ELBO`` with the per-row terms kept: with ``analytic_kl=True`` (the default)
it is ``TraceMeanField_ELBO`` (the closed-form KL where the prior has one, a Monte Carlo
estimate otherwise, :mod:`ppvae.objectives.terms`); with ``analytic_kl=False`` it equals
``Trace_ELBO`` in value and gradient, score-function terms of discrete latents included. It
averages ``num_particles`` independent draws.
"""

from __future__ import annotations

import torch

from ppvae.objectives.base import Objective, register
from ppvae.objectives.terms import ELBOTerms


@register("elbo")
class ELBO(Objective):
    """The plain ELBO. ``analytic_kl=False`` forces the Monte Carlo KL estimate."""

    validation_is_elbo = True

    def __init__(self, num_particles: int = 1, analytic_kl: bool = True):
        if isinstance(num_particles, bool) or not isinstance(num_particles, int):
            raise ValueError(f"elbo: num_particles must be an integer >= 1, got {num_particles!r}")
        if num_particles < 1:
            raise ValueError(f"elbo: num_particles must be >= 1, got {num_particles!r}")
        super().__init__(num_particles=num_particles)
        self.analytic_kl = bool(analytic_kl)

    def particle_loss(self, terms: ELBOTerms) -> tuple[torch.Tensor, dict[str, float]]:
        metrics = {
            "recon": -float(terms.recon.detach().mean()),
            "kl": float(terms.kl.detach().mean()),
        }
        return -terms.elbo(), metrics
