r"""Continuous slots with correlated residuals: the distribution of the ``lowrank_normal``
likelihood (registered in :mod:`ppvae.likelihoods`).

With the per-slot families of :mod:`ppvae.likelihoods` the continuous slots are independent
given z, so every relation between numeric columns must pass through z. This family gives
each row a Gaussian over all ``D`` continuous slots whose covariance has a low-rank part,

.. math::  x = \mu(z) + W(z)\, f + \varepsilon, \qquad f \sim N(0, I_r),\quad
           \varepsilon \sim N(0, \operatorname{diag} d(z)),
           \qquad \Sigma(z) = W W^\top + \operatorname{diag} d,

a factor-analysis residual: ``r = min(rank, D)`` shared factors per row, read from the decoder
with the means and scales (``D * (2 + r)`` outputs). Every quantity needed is exact and costs
``O(D r^2)`` per row, never a ``D x D`` matrix, so wide tables need no special case. With
:math:`\hat W = d^{-1/2} W` and :math:`\hat e = d^{-1/2}(x - \mu)`, both zeroed on the slots
that are not observed (missing, point-mass or hidden cells: the mask),

.. math::  C = I_r + \hat W^\top \hat W,\qquad a = C^{-1}\hat W^\top \hat e,\qquad
           \log p(x_S) = -\tfrac12\big(|S|\log 2\pi + \log|C| + \textstyle\sum_{i\in S}\log d_i
           + |\hat e - \hat W a|^2 + |a|^2\big),

which is the observed-subset marginal :math:`N(x_S; \mu_S, \Sigma_{SS})` (matrix determinant
lemma and Woodbury; the quadratic is written as a sum of squares to avoid cancellation), and
:math:`f \mid x_S \sim N(a, C^{-1})`. Hence the conditional of all slots given the observed
ones is again of this form (:meth:`LowRankSlotNormal.condition`), with
:math:`\mu' = \mu + W a` and :math:`W' = W L^{-\top}` for :math:`C = L L^\top`.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistribution
from torch.distributions import constraints

LOG_2PI = math.log(2 * math.pi)


class LowRankSlotNormal(TorchDistribution):
    r"""``N(loc, W W^T + diag(d))`` over ``D`` slots, per row, with a slot mask.

    ``loc`` ``[*batch, D]``, ``cov_factor`` W ``[*batch, D, r]``, ``cov_diag`` d
    ``[*batch, D]`` (variances), ``mask`` ``[*batch, D]`` (optional, True = observed). Batch
    ``[*batch]``, event ``[D]``. :meth:`log_prob` is the marginal density of the observed
    slots; :meth:`slot_log_prob` splits it by the chain rule along slot order.
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "cov_diag": constraints.independent(constraints.positive, 1),
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        loc: torch.Tensor,
        cov_factor: torch.Tensor,
        cov_diag: torch.Tensor,
        mask: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ):
        self.loc, self.cov_factor, self.cov_diag, self.mask = loc, cov_factor, cov_diag, mask
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=validate_args)

    @property
    def rank(self) -> int:
        return self.cov_factor.shape[-1]

    def _scaled(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(e_hat [*, D], W_hat [*, D, r], m [*, D])``: whitened residual and factor,
        zero on unobserved slots, and the float mask."""
        inv_sd = self.cov_diag.rsqrt()
        e = (value - self.loc) * inv_sd
        w = self.cov_factor * inv_sd.unsqueeze(-1)
        m = torch.ones_like(e) if self.mask is None else self.mask.to(e.dtype).expand_as(e)
        return e * m, w * m.unsqueeze(-1), m

    def _factor_posterior(
        self, e: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cholesky factor ``L`` of ``C`` ``[*, r, r]`` and the posterior mean ``a`` ``[*, r]``."""
        eye = torch.eye(self.rank, dtype=w.dtype, device=w.device)
        chol = torch.linalg.cholesky(eye + w.transpose(-1, -2) @ w)
        a = torch.cholesky_solve((w.transpose(-1, -2) @ e.unsqueeze(-1)), chol).squeeze(-1)
        return chol, a

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log N(x_S; mu_S, Sigma_SS)`` per row ``[*batch]`` (S: the observed slots)."""
        e, w, m = self._scaled(value)
        chol, a = self._factor_posterior(e, w)
        resid = e - (w @ a.unsqueeze(-1)).squeeze(-1)
        quad = resid.pow(2).sum(-1) + a.pow(2).sum(-1)
        log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        log_det = log_det + (self.cov_diag.log() * m).sum(-1)
        return -0.5 * (m.sum(-1) * LOG_2PI + log_det + quad)

    def slot_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log p(x_i | x_j, j < i observed)`` per slot ``[*batch, D]``, zero where masked;
        the terms sum to :meth:`log_prob`. A filter over the slots in order: before slot i
        the factor's posterior has precision ``Lam = I + sum_j w_j w_j^T`` and shift
        ``eta = sum_j w_j e_j`` over the earlier observed slots."""
        e, w, m = self._scaled(value)
        shape = torch.broadcast_shapes(e.shape[:-1], w.shape[:-2])
        e, w = e.expand(*shape, e.shape[-1]), w.expand(*shape, *w.shape[-2:])
        eye = torch.eye(self.rank, dtype=w.dtype, device=w.device)
        lam = eye.expand(*shape, self.rank, self.rank)
        eta = e.new_zeros(*shape, self.rank)
        terms = []
        for i in range(e.shape[-1]):
            chol = torch.linalg.cholesky(lam)
            wi = w[..., i, :]
            mean = (wi * torch.cholesky_solve(eta.unsqueeze(-1), chol).squeeze(-1)).sum(-1)
            var = 1 + (wi * torch.cholesky_solve(wi.unsqueeze(-1), chol).squeeze(-1)).sum(-1)
            # whitened slot i: e_i ~ N(mean, var); back to x_i's scale through log sd_i
            term = -0.5 * (LOG_2PI + var.log() + (e[..., i] - mean).pow(2) / var)
            terms.append((term - 0.5 * self.cov_diag[..., i].log()) * m[..., i])
            lam = lam + wi.unsqueeze(-1) * wi.unsqueeze(-2)
            eta = eta + wi * e[..., i : i + 1]
        return torch.stack(terms, -1)

    def rsample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        """``mu + W f + sqrt(d) eps`` ``[*sample_shape, *batch, D]`` (every slot drawn)."""
        shape = self._extended_shape(sample_shape)
        f = torch.randn(*shape[:-1], self.rank, dtype=self.loc.dtype, device=self.loc.device)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return (
            self.loc + (self.cov_factor @ f.unsqueeze(-1)).squeeze(-1) + eps * self.cov_diag.sqrt()
        )

    def condition(self, value: torch.Tensor, mask: torch.Tensor) -> LowRankSlotNormal:
        """``p(x | x_S = value_S)`` for S = ``mask`` ``[*batch, D]``, unmasked: the same family
        with ``mu + W a`` and ``W L^{-T}``. Its draws on the free slots are exact conditional
        draws; on the slots in S they are not pinned (copy ``value`` back there)."""
        given = LowRankSlotNormal(self.loc, self.cov_factor, self.cov_diag, mask)
        e, w, _ = given._scaled(value)
        chol, a = given._factor_posterior(e, w)
        loc = self.loc + (self.cov_factor @ a.unsqueeze(-1)).squeeze(-1)
        factor = torch.linalg.solve_triangular(
            chol, self.cov_factor.transpose(-1, -2), upper=False
        ).transpose(-1, -2)
        return LowRankSlotNormal(loc, factor, self.cov_diag)

    def marginal(self, slot: int) -> dist.Normal:
        """The univariate Normal of one slot ``[*batch]`` (mask ignored)."""
        var = self.cov_factor[..., slot, :].pow(2).sum(-1) + self.cov_diag[..., slot]
        return dist.Normal(self.loc[..., slot], var.sqrt())

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        return self.cov_factor.pow(2).sum(-1) + self.cov_diag

    def expand(self, batch_shape: torch.Size, _instance=None) -> LowRankSlotNormal:
        batch_shape = torch.Size(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        d, r = self.loc.shape[-1], self.rank
        mask = None if self.mask is None else self.mask.expand(*batch_shape, d)
        return LowRankSlotNormal(
            self.loc.expand(*batch_shape, d),
            self.cov_factor.expand(*batch_shape, d, r),
            self.cov_diag.expand(*batch_shape, d),
            mask,
        )
