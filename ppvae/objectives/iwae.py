r"""Importance-weighted and Rényi bounds as training objectives.

.. math::  \mathcal{L}_\alpha(x) = \frac{1}{1-\alpha}\,\log \frac1K \sum_{k=1}^K
           \Big(\frac{p(x, z_k)}{q(z_k \mid x)}\Big)^{1-\alpha}, \qquad z_k \sim q(z\mid x)

the Rényi bound of Li & Turner (2016), Pyro's ``RenyiELBO``. :math:`\alpha = 0` (the default)
is the IWAE bound of Burda et al. (2016), :math:`\mathcal{L}_0 \ge \mathrm{ELBO}`, tighter as
K grows; :math:`\alpha \to 1` is the ELBO. Computed per row, as ``RenyiELBO`` does for a
model whose sites all sit in the ``"rows"`` plate, but faster: the K particles are one Pyro
trace of the K-fold repeated batch (:func:`ppvae.evaluation.repeat_rows`, so any model works,
broadcasting or not) instead of K traces, and it is a differentiable loss.

Gradients: pathwise for reparameterised latents, :math:`\sum_k \tilde w_k \nabla \log w_k`
with the self-normalised weights :math:`\tilde w_k \propto w_k^{1-\alpha}`; a latent without
``rsample`` adds the score-function term :math:`\mathcal{L}_\alpha(x)\,\sum_k \nabla \log
q(z_k \mid x)` per row (unbiased, no control variate), where ``RenyiELBO`` refuses such a
guide.
"""

from __future__ import annotations

import math

import torch
from pyro.poutine import Trace

from ppvae.evaluation import repeat_rows, row_log_weights
from ppvae.objectives.base import Objective, register
from ppvae.objectives.terms import is_reparameterised, to_rows


@register("iwae")
class IWAE(Objective):
    """Train on the K-particle Rényi bound; ``alpha=0`` is the IWAE bound."""

    def __init__(self, num_particles: int = 8, alpha: float = 0.0):
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
        super().__init__(num_particles=num_particles)
        self.alpha = float(alpha)

    def _get_traces(self, model, guide, args, kwargs):
        """One trace pair of the batch with each row repeated ``num_particles`` times."""
        data, *rest = args
        yield self._get_trace(model, guide, (repeat_rows(data, self.num_particles), *rest), kwargs)

    def _differentiable_loss_particle(
        self, model_trace: Trace, guide_trace: Trace
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.num_particles
        lw = row_log_weights(model_trace, guide_trace).reshape(-1, k)  # [B, K]
        bound = (torch.logsumexp((1.0 - self.alpha) * lw, dim=-1) - math.log(k)) / (
            1.0 - self.alpha
        )
        self._particle_metrics.append({"bound": float(bound.detach().mean())})
        loss = -bound.sum()
        score = 0.0
        for site in guide_trace.nodes.values():
            if site["type"] == "sample" and not is_reparameterised(site):
                score = score + to_rows(site["score_parts"].score_function, site)
        if not torch.is_tensor(score):
            return loss, loss
        return loss, loss - (bound.detach() * score.reshape(-1, k).sum(-1)).sum()
