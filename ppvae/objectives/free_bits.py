r"""Free bits (Kingma et al. 2016, "Improved variational inference with inverse
autoregressive flow"): a per-dimension floor under the KL term.

.. math::  \mathcal{L}(x) = \mathbb{E}_q[\log p(x\mid z)]
           - \sum_{d=1}^{D} \max\big(\lambda,\ \overline{\mathrm{KL}}_d\big)

with :math:`\overline{\mathrm{KL}}_d` the batch mean of the KL of latent dimension ``d`` and
:math:`\lambda` = ``nats_per_dim``. A dimension whose KL is below the floor gets no gradient
from the KL term, so the optimiser cannot push it further toward collapse.

The per-dimension KL is the closed form when guide and prior both factorise over dimensions
(diagonal Normal against the standard-normal prior). For a prior that does not factorise
(mixture, VampPrior, flow) per-dimension KL is not defined, and the floor applies to the
site's total: :math:`\max(\lambda D, \overline{\mathrm{KL}})` with ``D`` the site's latent
size. Latent sites outside the ``"rows"`` plate (global latents) are not floored. A discrete
latent's score-function gradient uses the ELBO's log-ratio as its reward (as ``Trace_ELBO``),
not the floored one.
"""

from __future__ import annotations

import torch

from ppvae.objectives.base import Objective, register
from ppvae.objectives.terms import ELBOTerms


@register("free_bits")
class FreeBits(Objective):
    """The ELBO with a KL floor of ``nats_per_dim`` per latent dimension."""

    keep_per_dim = True

    def __init__(self, nats_per_dim: float = 0.25):
        super().__init__()
        if isinstance(nats_per_dim, bool) or not isinstance(nats_per_dim, (int, float)):
            raise ValueError(f"free_bits: nats_per_dim must be a number >= 0, got {nats_per_dim!r}")
        if nats_per_dim < 0:
            raise ValueError(f"free_bits: nats_per_dim must be >= 0, got {nats_per_dim!r}")
        self.nats_per_dim = float(nats_per_dim)

    def particle_loss(self, terms: ELBOTerms) -> tuple[torch.Tensor, dict[str, float]]:
        floor, floored, below = self.nats_per_dim, 0.0, 0
        for name, kl in terms.kl_sites.items():
            if name in terms.kl_per_dim:  # closed form per dimension: floor each batch mean
                per_dim = terms.kl_per_dim[name].mean(0)
                floored = floored + torch.clamp(per_dim, min=floor).sum()
                below += int((per_dim.detach() < floor).sum())
            else:  # no per-dimension KL: floor the site's total
                floored = floored + torch.clamp(kl.mean(), min=floor * terms.latent_dims[name])
        metrics = {
            "recon": -float(terms.recon.detach().mean()),
            "kl": float(terms.kl.detach().mean()),
            "dims_below_floor": float(below),
        }
        return -terms.recon.sum() + terms.batch_size * floored + terms.global_kl, metrics
