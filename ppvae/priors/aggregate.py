r"""A prior fitted after training to the aggregate posterior ("two-stage" / ex-post density).

.. math::  q(z) = \frac{1}{N} \sum_{n=1}^N q(z \mid x_n)
           \;\approx\; \sum_{k=1}^K \pi_k \, \mathcal{N}(z;\, \mu_k, \Sigma_k)

A full-covariance Gaussian mixture is fitted by EM to draws :math:`z_n \sim q(z \mid x_n)` of
the training rows (Ghosh et al. 2020, "From variational to deterministic autoencoders";
Dai & Wipf 2019). Sampling from it instead of N(0, I) avoids the *holes* — regions where the
prior has mass but no row's posterior lives. Use it without retraining::

    vae.refit_prior("aggregate", data=train_df, components=20)

Before :meth:`AggregatePrior.fit` it is a standard normal (so a model trained with it is a
standard-normal VAE). Its fitted parameters are buffers, saved with the model.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch

from ppvae.priors.base import Prior, register

MAX_FIT_ROWS = 20_000


@register("aggregate")
class AggregatePrior(Prior):
    """Gaussian mixture (``components``, full covariances) fitted to encoded training rows."""

    def __init__(
        self,
        latent_dim: int | None = None,
        components: int = 20,
        iterations: int = 200,
        reg: float = 1e-4,
        seed: int = 0,
    ):
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise ValueError(
                f"aggregate: components must be a positive integer, got {components!r}"
            )
        self.components, self.iterations, self.reg, self.seed = (
            components,
            int(iterations),
            float(reg),
            int(seed),
        )
        super().__init__(latent_dim)

    def _build(self, latent_dim: int) -> None:
        k = self.components
        self.register_buffer("weights", torch.full((k,), 1.0 / k))
        self.register_buffer("means", torch.zeros(k, latent_dim))
        self.register_buffer(
            "scale_tril", torch.eye(latent_dim).expand(k, latent_dim, latent_dim).clone()
        )
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self) -> dist.Distribution:
        components = dist.MultivariateNormal(self.means, scale_tril=self.scale_tril)
        return dist.MixtureSameFamily(dist.Categorical(probs=self.weights), components)

    @torch.no_grad()
    def fit(self, z: torch.Tensor) -> AggregatePrior:
        """Fit the mixture by EM to latent draws ``z`` ``[n, latent_dim]``; returns self."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"aggregate.fit expects z of shape [n, {self.latent_dim}], got {tuple(z.shape)}"
            )
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        x = z.detach().to("cpu", torch.float64)
        if len(x) > MAX_FIT_ROWS:
            x = x[torch.randperm(len(x), generator=g)[:MAX_FIT_ROWS]]
        n, d = x.shape
        k = min(self.components, n)
        means = _kmeans_pp(x, k, g)
        eye = torch.eye(d, dtype=x.dtype)
        cov = torch.cov(x.T).reshape(d, d) / k + self.reg * eye  # start narrow: modes separate
        covs = cov.expand(k, d, d).clone()
        weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
        previous = -math.inf
        for iteration in range(self.iterations):
            log_resp = _gaussian_log_prob(x, means, covs) + weights.log()
            total = torch.logsumexp(log_resp, dim=1, keepdim=True)
            resp = (log_resp - total).exp()
            nk = resp.sum(0) + 1e-10
            weights = nk / n
            means = (resp.T @ x) / nk[:, None]
            centred = x - means[:, None, :]  # [k, n, d]
            covs = (resp.T[:, :, None] * centred).transpose(1, 2) @ centred
            covs = covs / nk[:, None, None] + self.reg * eye
            loglik = float(total.mean())
            if iteration >= 20 and loglik - previous < 1e-7 * abs(loglik):
                break
            previous = loglik
        if k < self.components:  # fewer rows than components: pad with zero-weight copies
            pad = self.components - k
            weights = torch.cat([weights, weights.new_zeros(pad)])
            means = torch.cat([means, means[:1].expand(pad, d)])
            covs = torch.cat([covs, covs[:1].expand(pad, d, d)])
        dtype, device = self.means.dtype, self.means.device
        self.weights.copy_((weights / weights.sum()).to(device, dtype))
        self.means.copy_(means.to(device, dtype))
        self.scale_tril.copy_(torch.linalg.cholesky(covs).to(device, dtype))
        self.fitted.fill_(True)
        return self


def _gaussian_log_prob(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> torch.Tensor:
    """log N(x_n; mu_k, Sigma_k) for ``x`` [n, d], ``means`` [k, d], ``covs`` [k, d, d] -> [n, k]."""
    tril = torch.linalg.cholesky(covs)
    white = torch.linalg.solve_triangular(
        tril, (x - means[:, None, :]).transpose(1, 2), upper=False
    )
    half_log_det = tril.diagonal(dim1=1, dim2=2).log().sum(1)
    d = x.shape[1]
    return (-0.5 * white.square().sum(1) - half_log_det[:, None]).T - 0.5 * d * math.log(
        2 * math.pi
    )


def _kmeans_pp(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): ``k`` well-spread rows of ``x``."""
    centres = [x[torch.randint(len(x), (1,), generator=g)].squeeze(0)]
    dist2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        idx = torch.multinomial(
            dist2 / dist2.sum() if dist2.sum() > 0 else torch.ones_like(dist2), 1, generator=g
        )
        centres.append(x[idx].squeeze(0))
        dist2 = torch.minimum(dist2, ((x - centres[-1]) ** 2).sum(1))
    return torch.stack(centres)


def aggregate(latent_dim: int | None = None, components: int = 20) -> AggregatePrior:
    return AggregatePrior(latent_dim, components)
