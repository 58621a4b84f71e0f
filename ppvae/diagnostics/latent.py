r"""Quantities of the latent space shared by the collapse and hole diagnostics.

Everything works on a subsample of rows, encoded once: ``loc, scale`` ``[n, d]`` of
q(z | x_n), one draw z_n ~ q(z | x_n) per row, and the aggregate posterior

.. math::  q(z) = \frac1N \sum_{n=1}^N q(z \mid x_n),

whose log-density at any z is a log-sum-exp over the N per-row Gaussians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch.distributions import Normal


@dataclass
class Encoded:
    """A table's rows in latent space."""

    loc: torch.Tensor  # [n, d]
    scale: torch.Tensor  # [n, d]
    z: torch.Tensor  # [n, d], one draw per row

    @property
    def n(self) -> int:
        return self.loc.shape[0]


@torch.no_grad()
def encode(vae, df: pd.DataFrame, max_rows: int = 2000, seed: int = 0) -> Encoded:
    """Encode at most ``max_rows`` rows of ``df`` (a seeded subsample), z drawn by the guide."""
    rows = df.sample(max_rows, random_state=seed) if len(df) > max_rows else df
    table = vae._table(rows)
    with vae._rng(seed):
        q, z = vae.model_.posterior(table)
    return Encoded(q.mean.cpu(), q.stddev.cpu(), z.cpu())


@torch.no_grad()
def aggregate_log_density(
    points: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, chunk: int = 512
) -> torch.Tensor:
    """log q(z) ``[m]`` at ``points`` ``[m, d]`` for the mixture of N(loc_n, scale_n) ``[N, d]``."""
    out = []
    for start in range(0, points.shape[0], chunk):
        p = points[start : start + chunk, None, :]
        lp = Normal(loc[None], scale[None]).log_prob(p).sum(-1)  # [m, N]
        out.append(torch.logsumexp(lp, dim=1) - math.log(loc.shape[0]))
    return torch.cat(out)


@torch.no_grad()
def prior_draws(vae, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` draws from the fitted model's prior p(z), ``[n, d]`` on the CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return vae.model_.prior().sample((n,)).cpu()


@torch.no_grad()
def prior_log_density(vae, z: torch.Tensor) -> torch.Tensor:
    """log p(z) ``[m]`` under the fitted prior."""
    device = next(vae.model_.parameters()).device
    return vae.model_.prior().log_prob(z.to(device)).cpu()
