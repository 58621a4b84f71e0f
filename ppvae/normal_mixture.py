r"""A mixture of Normals for one slot, drawn whole or truncated to a range.

A chained slot (:mod:`ppvae.chained_continuous`) given the slots before it is often not one
bump. A bill next month is this month's bill give or take a little in most rows and far off
in the rest; a credit-card bill piles up just under its credit limit; a diamond's width is
its length plus or minus a few hundredths and almost never exactly its length. One Normal
fits the variance and fills the hole or flattens the pile-up, which a detector sees. Each
slot's conditional is

.. math::  p(y) = \sum_{k=1}^{K} \pi_k\, \mathcal{N}(y;\, \mu_k, s_k),\qquad
           \pi = \operatorname{softmax}(\ell),

(``torch``'s ``MixtureSameFamily``) with :meth:`NormalMixture.truncated_sample` for a slot
conditioned on a range: a component in proportion to :math:`\pi_k` times its mass on the
range, then that Normal truncated by the inverse CDF.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch


class NormalMixture(dist.MixtureSameFamily):
    """``sum_k softmax(logits)_k N(loc_k, scale_k)``; ``logits``, ``loc``, ``scale``
    ``[*batch, K]``. Batch ``[*batch]``, event ``()``."""

    def __init__(
        self,
        logits: torch.Tensor,
        loc: torch.Tensor,
        scale: torch.Tensor,
        validate_args: bool | None = None,
    ):
        super().__init__(
            dist.Categorical(logits=logits),
            dist.Normal(loc, scale),
            validate_args=validate_args,
        )

    @torch.no_grad()
    def truncated_sample(self, lo: float, hi: float) -> torch.Tensor:
        """Draws ``[*batch]`` truncated to ``[lo, hi]`` (clamped to +-10, the quantile
        transform's range)."""
        parts = self.component_distribution
        lo_t = torch.full_like(parts.loc, lo)
        hi_t = torch.full_like(parts.loc, hi)
        u_lo, u_hi = parts.cdf(lo_t), parts.cdf(hi_t)
        mass = (u_hi - u_lo) * self.mixture_distribution.probs
        # no mass on the range under any component (far in a tail): the nearest component
        distance = (parts.loc - parts.loc.clamp(lo, hi)).abs() / parts.scale
        weights = torch.where(mass.sum(-1, keepdim=True) > 0, mass, (-distance).softmax(-1))
        k = torch.multinomial(weights.reshape(-1, weights.shape[-1]), 1)
        k = k.reshape(weights.shape[:-1] + (1,))
        u_lo, u_hi = _pick(u_lo, k), _pick(u_hi, k)
        u = u_lo + (u_hi - u_lo) * torch.rand_like(u_lo)
        drawn = dist.Normal(_pick(parts.loc, k), _pick(parts.scale, k)).icdf(
            u.clamp(1e-7, 1 - 1e-7)
        )
        return drawn.clamp(max(lo, -10.0), min(hi, 10.0))


def _pick(values: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``values[..., k]`` per batch element: ``[*batch, K]``, ``k`` ``[*batch, 1]`` ->
    ``[*batch]``."""
    return values.gather(-1, k).squeeze(-1)
