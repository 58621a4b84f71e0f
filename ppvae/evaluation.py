r"""The importance-weighted estimate of the marginal log-likelihood (Burda et al. 2016).

.. math::  \log \hat p_K(x) = \log \frac1K \sum_{k=1}^K \frac{p(x, z_k)}{q(z_k \mid x)},
           \qquad z_k \sim q(z \mid x)

a lower bound on :math:`\log p(x)` in expectation that is never below the ELBO (K = 1) and
tightens as K grows. The K particles are drawn in one vectorised pass by repeating each row
K times, so it works for any model/guide pair with a ``"rows"`` plate (no assumption about
how a model broadcasts extra dims), in chunks of at most ``max_rows`` repeated rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from pyro.distributions.util import scale_and_mask

from ppvae.data.layout import TensorTable
from ppvae.model import replay
from ppvae.objectives.terms import is_random_site, row_dim, to_rows


def log_weights(model: Callable, guide: Callable, data: TensorTable) -> torch.Tensor:
    """``log p(x, z) - log q(z | x)`` per row ``[n]`` for one draw ``z ~ q(z | x)`` per row."""
    guide_trace, model_trace = replay(model, guide, data)
    total = 0.0
    for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
        for site in trace.nodes.values():
            if not is_random_site(site):
                continue
            if row_dim(site) is None:
                raise ValueError(
                    f"site {site['name']!r} is outside the 'rows' plate: the per-row importance "
                    "weights of a model with global latent variables are not defined"
                )
            lp = scale_and_mask(site["fn"].log_prob(site["value"]), site["scale"], site["mask"])
            total = total + sign * to_rows(lp, site)
    return total


def particle_log_weights(
    model: Callable,
    guide: Callable,
    data: TensorTable,
    num_particles: int,
    max_rows: int = 50_000,
) -> torch.Tensor:
    """Log importance weights ``[n, K]``: K independent guide draws per row of ``data``."""
    if isinstance(num_particles, bool) or not isinstance(num_particles, int) or num_particles < 1:
        raise ValueError(f"num_particles must be a positive integer, got {num_particles!r}")
    k = num_particles
    rows_per_chunk = max(1, max_rows // k)
    out = []
    for start in range(0, len(data), rows_per_chunk):
        chunk = data[start : start + rows_per_chunk]
        index = torch.arange(len(chunk), device=chunk.x_cont.device).repeat_interleave(k)
        out.append(log_weights(model, guide, chunk[index]).reshape(len(chunk), k))
    return torch.cat(out)


def importance_log_likelihood(
    model: Callable,
    guide: Callable,
    data: TensorTable,
    num_particles: int = 100,
    max_rows: int = 50_000,
) -> torch.Tensor:
    """:math:`\\log \\hat p_K(x)` per row ``[n]`` with ``K = num_particles`` (no gradient).

    Memory is bounded by ``max_rows`` repeated rows per model call (``max_rows // K`` rows).
    """
    with torch.no_grad():
        lw = particle_log_weights(model, guide, data, num_particles, max_rows)
    return torch.logsumexp(lw, dim=-1) - math.log(num_particles)
