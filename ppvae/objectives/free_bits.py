r"""Free bits (Kingma et al. 2016, "Improved variational inference with inverse
autoregressive flow"): a per-dimension floor under the KL term.

.. math::  \mathcal{L}(x) = \mathbb{E}_q[\log p(x\mid z)]
           - \sum_{d=1}^{D} \max\big(\lambda,\ \overline{\mathrm{KL}}_d\big)

with :math:`\overline{\mathrm{KL}}_d` the batch mean of the KL of latent dimension ``d`` and
:math:`\lambda` = ``nats_per_dim``. A dimension whose KL is below the floor gets no gradient
from the KL term, so the optimiser cannot push it further toward collapse. The per-dimension
KL is closed form when guide and prior factorise (a standard-normal prior). For priors that
do not factorise (mixture, VampPrior, flow) per-dimension KL is undefined and the floor
applies to the total: :math:`\max(\lambda D, \overline{\mathrm{KL}})`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ppvae.objectives.base import Objective, register
from ppvae.objectives.terms import elbo_terms


@register("free_bits")
class FreeBits(Objective):
    """The ELBO with a KL floor of ``nats_per_dim`` per latent dimension."""

    def __init__(self, nats_per_dim: float = 0.25):
        super().__init__()
        if not isinstance(nats_per_dim, (int, float)) or nats_per_dim < 0:
            raise ValueError(f"free_bits: nats_per_dim must be a number >= 0, got {nats_per_dim!r}")
        self.nats_per_dim = float(nats_per_dim)

    def differentiable_loss(
        self, model: Callable, guide: Callable, *args, **kwargs
    ) -> torch.Tensor:
        terms = elbo_terms(model, guide, *args, keep_per_dim=True, **kwargs)
        batch = terms.batch_size
        floor = self.nats_per_dim
        if terms.kl_per_dim:  # closed form per dimension: floor each dimension's batch mean
            per_dim = torch.cat([kl.reshape(batch, -1) for kl in terms.kl_per_dim.values()], dim=-1)
            floored = torch.clamp(per_dim.mean(0), min=floor).sum()
            self.metrics = {"active_floor_dims": float((per_dim.mean(0) < floor).sum())}
        else:
            dims = sum(v.reshape(batch, -1).shape[-1] for v in terms.latent_values.values())
            floored = torch.clamp(terms.kl.mean(), min=floor * dims)
            self.metrics = {}
        self.metrics.update(
            {"recon": -float(terms.recon.detach().mean()), "kl": float(terms.kl.detach().mean())}
        )
        return -terms.recon.sum() + batch * floored + terms.global_kl


def free_bits(nats_per_dim: float = 0.25) -> FreeBits:
    return FreeBits(nats_per_dim)
