r"""Holes: prior mass where no row's posterior lives.

With q(z) the aggregate posterior of a subsample of rows (split in two halves, A to build
q(z), B for reference draws, so no draw is scored by its own component):

- :math:`\mathrm{KL}(q(z)\,\|\,p(z))` (Hoffman & Johnson 2016: the term of the ELBO that a
  better prior can remove), bracketed by two estimates with :math:`z_i \sim q(z\mid x_i)`.
  Low: :math:`\frac1{|B|}\sum_{i\in B} \log q_A(z_i) - \log p(z_i)`; by Jensen,
  :math:`E \log q_A(z) \le \log q(z)`, so it is biased low and can fall below 0. High:
  :math:`\frac1N\sum_i \log q(z_i) - \log p(z_i)` with q(z) the mixture over all N rows, each
  draw's own component included; it equals the mean per-row KL minus the InfoNCE lower bound
  on I(x;z) (Poole et al. 2019), so it is biased high;
- **MMD** between prior draws and aggregate-posterior draws with a Gaussian kernel whose
  bandwidth is the median pairwise distance (Gretton et al. 2012);
- **hole fraction**: the share of prior draws :math:`z \sim p(z)` with
  :math:`\log q_A(z)` below the 1st percentile of :math:`\log q_A(z_i)` over the reference
  draws :math:`z_i, i \in B`. It is about 0.01 when p(z) = q(z); the excess is prior mass in
  holes, which decodes to rows unlike the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ppvae.diagnostics.latent import Encoded, aggregate_log_density, prior_draws, prior_log_density

NUM_PRIOR_DRAWS = 2000
PERCENTILE = 1.0


@dataclass
class Holes:
    kl_aggregate_prior: float  # nats, held-out mixture: biased low
    kl_aggregate_prior_upper: float  # nats, in-sample mixture: biased high
    mmd: float
    hole_fraction: float
    prior_z: np.ndarray  # [m, d] prior draws, for the picture
    posterior_z: np.ndarray  # [n, d] aggregate-posterior draws


def mmd(x: torch.Tensor, y: torch.Tensor) -> float:
    """Biased MMD^2 with a Gaussian kernel, bandwidth = median pairwise distance."""
    xy = torch.cat([x, y]).double()
    d2 = torch.cdist(xy, xy).pow(2)
    bandwidth = d2[d2 > 0].median()
    k = torch.exp(-d2 / bandwidth)
    n = x.shape[0]
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


@torch.no_grad()
def holes(vae, enc: Encoded, seed: int = 0) -> Holes:
    half = enc.n // 2
    a_loc, a_scale = enc.loc[:half], enc.scale[:half]
    z_ref = enc.z[half:]
    log_q_ref = aggregate_log_density(z_ref, a_loc, a_scale)
    kl = float((log_q_ref - prior_log_density(vae, z_ref)).mean())
    z_prior = prior_draws(vae, NUM_PRIOR_DRAWS, seed)
    threshold = torch.quantile(log_q_ref, PERCENTILE / 100)
    fraction = float((aggregate_log_density(z_prior, a_loc, a_scale) < threshold).float().mean())
    m = min(1000, z_prior.shape[0], z_ref.shape[0])
    return Holes(
        kl_aggregate_prior=kl,
        kl_aggregate_prior_upper=float(
            (
                aggregate_log_density(enc.z, enc.loc, enc.scale) - prior_log_density(vae, enc.z)
            ).mean()
        ),
        mmd=mmd(z_prior[:m], z_ref[:m]),
        hole_fraction=fraction,
        prior_z=z_prior.numpy(),
        posterior_z=enc.z.numpy(),
    )
