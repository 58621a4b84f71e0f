r"""Posterior collapse: which latent dimensions carry information about the rows.

- **KL per dimension** — :math:`\mathrm{KL}_d = \mathbb{E}_x\,\mathrm{KL}(q(z_d\mid x)\,\|\,p(z_d))`.
  Closed form for the standard-normal prior; for other priors :math:`p(z_d)` is replaced by
  the Gaussian with the prior's marginal mean and variance of dimension d (from 20,000
  prior draws), an approximation stated in the report.
- **Active units** (Burda et al. 2016): :math:`A_d = \operatorname{Cov}_x(\mathbb{E}_q[z_d\mid x])`;
  dimension d is active when :math:`A_d > 0.01`. The *active subspace* is the number of
  eigenvalues of :math:`\operatorname{Cov}_x(\mathbb{E}_q[z\mid x])` above 0.01: unlike
  :math:`A_d`, it does not change under a rotation of the latent space, so it is the one to
  compare across seeds.
- **Mutual information** (Hoffman & Johnson 2016, "ELBO surgery"):
  :math:`I(x; z) = \mathbb{E}_x \mathbb{E}_{q(z\mid x)}[\log q(z\mid x) - \log q(z)]`, estimated
  with one draw per row and the aggregate posterior q(z) over the same rows.

Verdict: "k of d dimensions collapsed" with k the inactive dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from ppvae.diagnostics.latent import Encoded, aggregate_log_density, prior_draws
from ppvae.priors import StandardNormal

ACTIVE_THRESHOLD = 0.01


@dataclass
class Collapse:
    kl_per_dim: np.ndarray  # [d] nats
    activity: np.ndarray  # [d] Cov_x(E[z_d|x])
    active_units: int
    active_subspace: int
    mutual_information: float  # nats
    kl_closed_form: bool

    @property
    def latent_dim(self) -> int:
        return len(self.activity)

    @property
    def collapsed(self) -> int:
        return self.latent_dim - self.active_units

    @property
    def verdict(self) -> str:
        return f"{self.collapsed} of {self.latent_dim} dimensions collapsed"


def activity(loc: torch.Tensor) -> torch.Tensor:
    """Cov_x(E_q[z_d | x]) per dimension ``[d]`` from posterior means ``[n, d]``."""
    return loc.var(dim=0, unbiased=True)


def active_subspace(loc: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Eigenvalues of Cov_x(E_q[z | x]) above ``threshold``: rotation invariant."""
    cov = torch.cov(loc.T.double()).reshape(loc.shape[1], loc.shape[1])
    return int((torch.linalg.eigvalsh(cov) > threshold).sum())


@torch.no_grad()
def kl_per_dim(vae, enc: Encoded) -> tuple[np.ndarray, bool]:
    """Mean KL of each latent dimension to the prior's marginal, and whether it is exact."""
    prior = vae.model_.prior
    if isinstance(prior, StandardNormal):
        ref, exact = Normal(torch.zeros(()), torch.ones(())), True
    else:
        draws = prior_draws(vae, 20_000)
        ref, exact = Normal(draws.mean(0), draws.std(0)), False
    return kl_divergence(Normal(enc.loc, enc.scale), ref).mean(0).numpy(), exact


@torch.no_grad()
def mutual_information(enc: Encoded) -> float:
    """I(x; z) by the ELBO-surgery identity, one draw per row (module docstring)."""
    log_q_cond = Normal(enc.loc, enc.scale).log_prob(enc.z).sum(-1)
    log_q_agg = aggregate_log_density(enc.z, enc.loc, enc.scale)
    return float((log_q_cond - log_q_agg).mean())


def collapse(vae, enc: Encoded) -> Collapse:
    kl, exact = kl_per_dim(vae, enc)
    act = activity(enc.loc)
    return Collapse(
        kl_per_dim=kl,
        activity=act.numpy(),
        active_units=int((act > ACTIVE_THRESHOLD).sum()),
        active_subspace=active_subspace(enc.loc),
        mutual_information=mutual_information(enc),
        kl_closed_form=exact,
    )
