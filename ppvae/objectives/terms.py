r"""Split a model/guide pair's ELBO into per-row reconstruction and KL terms.

For a guide draw :math:`z \sim q(z \mid x)` the ELBO of row :math:`x` is

.. math::  \mathcal{L}(x) = \underbrace{\log p(x \mid z)}_{\text{recon}}
           - \underbrace{\big(\log q(z \mid x) - \log p(z)\big)}_{\text{KL}} .

Observed sites of the model trace form the reconstruction term; every latent site is a KL
term, computed in closed form (:func:`torch.distributions.kl_divergence`) when the pair of
guide and model distributions has one registered and ``analytic_kl`` allows it, else as the
single-sample Monte Carlo estimate :math:`\log q(z) - \log p(z)`. Which one was used is
recorded per site in :attr:`ELBOTerms.analytic`, so the choice is always visible.

Sites inside the row plate contribute per-row ``[B]`` values; sites outside it (global
latents of a user's model) go to the scalar :attr:`ELBOTerms.global_kl`. Site scales set by
``poutine.scale`` (the beta of a beta-VAE, say) are applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from pyro import poutine
from pyro.poutine.subsample_messenger import _Subsample
from torch.distributions import Independent, kl_divergence

ROW_PLATE = "rows"


@dataclass
class ELBOTerms:
    recon: torch.Tensor  # [B] log p(x|z) per row, scaled
    kl: torch.Tensor  # [B] KL per row, scaled (e.g. by a beta)
    kl_raw: torch.Tensor  # [B] KL per row before site scales
    global_kl: torch.Tensor  # scalar, latent sites outside the row plate (scaled)
    kl_per_dim: dict[str, torch.Tensor] = field(
        default_factory=dict
    )  # [B, d] unscaled, closed form
    analytic: dict[str, bool] = field(default_factory=dict)
    latent_values: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.recon.shape[0])

    def elbo(self) -> torch.Tensor:
        """Scalar ELBO of the batch (sum over rows)."""
        return self.recon.sum() - self.kl.sum() - self.global_kl


def is_random_site(site: dict) -> bool:
    """A sample site that carries a density (not a plate's index-subsampling site)."""
    return site["type"] == "sample" and not isinstance(site["fn"], _Subsample)


def _row_dim(site: dict) -> int | None:
    for frame in site["cond_indep_stack"]:
        if frame.name == ROW_PLATE:
            return frame.dim
    return None


def _to_rows(log_density: torch.Tensor, site: dict) -> torch.Tensor:
    """Sum a log-density over everything but the row dim, giving ``[B]`` (or a scalar)."""
    dim = _row_dim(site)
    if dim is None:
        return log_density.sum()
    moved = log_density.movedim(dim, 0)
    return moved.reshape(moved.shape[0], -1).sum(-1)


def elbo_terms(
    model: Callable,
    guide: Callable,
    *args,
    analytic_kl: bool = True,
    keep_per_dim: bool = False,
    **kwargs,
) -> ELBOTerms:
    """Trace ``guide``, replay ``model`` against it, and return per-row ELBO terms."""
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    recon = kl = kl_raw = global_kl = 0.0
    terms = ELBOTerms(
        recon=torch.zeros(0), kl=torch.zeros(0), kl_raw=torch.zeros(0), global_kl=torch.zeros(())
    )
    for name, site in model_trace.nodes.items():
        if not is_random_site(site):
            continue
        fn, scale = site["fn"], site["scale"]
        if site["is_observed"]:
            recon = recon + _to_rows(fn.log_prob(site["value"]) * scale, site)
            continue
        guide_site = guide_trace.nodes.get(name)
        if guide_site is None:
            raise RuntimeError(f"latent site {name!r} of the model has no counterpart in the guide")
        q = guide_site["fn"]
        value, analytic = None, False
        if analytic_kl:
            try:
                value = kl_divergence(q, fn)
                analytic = True
                if keep_per_dim and isinstance(q, Independent) and isinstance(fn, Independent):
                    terms.kl_per_dim[name] = kl_divergence(q.base_dist, fn.base_dist)
            except NotImplementedError:
                pass
        if value is None:
            z = guide_site["value"]
            value = q.log_prob(z) - fn.log_prob(z)
        terms.analytic[name] = analytic
        terms.latent_values[name] = guide_site["value"]
        if _row_dim(site) is None:
            global_kl = global_kl + (value * scale).sum()
        else:
            kl = kl + _to_rows(value * scale, site)
            kl_raw = kl_raw + _to_rows(value, site)
    terms.recon = torch.as_tensor(recon)
    zeros = torch.zeros_like(terms.recon)
    terms.kl = kl if torch.is_tensor(kl) else zeros
    terms.kl_raw = kl_raw if torch.is_tensor(kl_raw) else zeros
    terms.global_kl = torch.as_tensor(global_kl)
    return terms
