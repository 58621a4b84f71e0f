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
from torch.distributions import kl_divergence

ROW_PLATE = "rows"


@dataclass
class ELBOTerms:
    recon: torch.Tensor  # [B] log p(x|z) per row, scaled
    kl: torch.Tensor  # [B] KL per row, scaled
    global_kl: torch.Tensor  # scalar, latent sites outside the row plate
    kl_per_site: dict[str, torch.Tensor] = field(default_factory=dict)  # [B, *event] unsummed
    analytic: dict[str, bool] = field(default_factory=dict)
    latent_values: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.recon.shape[0])

    def elbo(self) -> torch.Tensor:
        """Scalar ELBO of the batch (sum over rows)."""
        return self.recon.sum() - self.kl.sum() - self.global_kl


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
    recon: torch.Tensor | float = 0.0
    kl: torch.Tensor | float = 0.0
    global_kl: torch.Tensor | float = 0.0
    terms = ELBOTerms(recon=torch.zeros(0), kl=torch.zeros(0), global_kl=torch.zeros(()))
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        fn, scale = site["fn"], site["scale"]
        if site["is_observed"]:
            recon = recon + _to_rows(fn.log_prob(site["value"]) * scale, site)
            continue
        guide_site = guide_trace.nodes.get(name)
        if guide_site is None:
            raise RuntimeError(f"latent site {name!r} of the model has no counterpart in the guide")
        q = guide_site["fn"]
        per_dim = None
        analytic = False
        if analytic_kl:
            try:
                if keep_per_dim and hasattr(q, "base_dist") and hasattr(fn, "base_dist"):
                    per_dim = kl_divergence(q.base_dist, fn.base_dist)
                    value = per_dim.reshape(*per_dim.shape[: per_dim.dim() - q.event_dim], -1).sum(
                        -1
                    )
                else:
                    value = kl_divergence(q, fn)
                analytic = True
            except NotImplementedError:
                analytic = False
        if not analytic:
            z = guide_site["value"]
            value = q.log_prob(z) - fn.log_prob(z)
        value = value * scale
        terms.analytic[name] = analytic
        terms.latent_values[name] = guide_site["value"]
        if per_dim is not None:
            terms.kl_per_site[name] = per_dim * scale
        if _row_dim(site) is None:
            global_kl = global_kl + value.sum()
        else:
            kl = kl + _to_rows(value, site)
    terms.recon = torch.as_tensor(recon)
    terms.kl = torch.as_tensor(kl) if torch.is_tensor(kl) else torch.zeros_like(terms.recon)
    terms.global_kl = torch.as_tensor(global_kl)
    return terms
