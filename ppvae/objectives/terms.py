r"""Split a model/guide pair's ELBO into per-row reconstruction and KL terms.

For a guide draw :math:`z \sim q(z \mid x)` the ELBO of row :math:`x` is

.. math::  \mathcal{L}(x) = \underbrace{\log p(x \mid z)}_{\text{recon}}
           - \underbrace{\big(\log q(z \mid x) - \log p(z)\big)}_{\text{KL}} .

Observed sites of the model trace form the reconstruction term; every latent site is a KL
term, computed in closed form (:func:`torch.distributions.kl_divergence`) when the pair of
guide and model distributions has one registered and ``analytic_kl`` allows it, else as the
single-sample Monte Carlo estimate :math:`\log q(z) - \log p(z)`. Which one was used is
recorded per site in :attr:`ELBOTerms.analytic`, so the choice is always visible. With
``analytic_kl=False`` the result equals Pyro's ``Trace_ELBO``; with ``True``, Pyro's
``TraceMeanField_ELBO`` (for the same guide draws).

Sites inside the row plate (``"rows"``) contribute per-row ``[B]`` values; sites outside it
(global latents of a user's model) go to the scalar :attr:`ELBOTerms.global_kl`. Site scales
(``poutine.scale``: the beta of a beta-VAE, say) and masks (``poutine.mask``) are applied
as Pyro applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.subsample_messenger import _Subsample
from torch.distributions import Independent, kl_divergence

ROW_PLATE = "rows"


@dataclass
class ELBOTerms:
    """Per-row terms of one guide draw; ``B`` rows."""

    recon: torch.Tensor  # [B] log p(x|z) per row (site scales applied)
    kl: torch.Tensor  # [B] KL per row, site scales applied (e.g. times a beta)
    kl_raw: torch.Tensor  # [B] KL per row before site scales
    global_kl: torch.Tensor  # scalar: latent sites outside the row plate (scaled)
    kl_sites: dict[str, torch.Tensor] = field(default_factory=dict)  # [B] per row-plate site, raw
    kl_per_dim: dict[str, torch.Tensor] = field(default_factory=dict)  # [B, d] raw, closed form
    analytic: dict[str, bool] = field(default_factory=dict)
    latent_dims: dict[str, int] = field(default_factory=dict)  # elements per row, row-plate sites

    @property
    def batch_size(self) -> int:
        return int(self.recon.shape[0])

    def elbo(self) -> torch.Tensor:
        """Scalar ELBO of the batch (sum over rows)."""
        return self.recon.sum() - self.kl.sum() - self.global_kl


def is_random_site(site: dict) -> bool:
    """A sample site that carries a density (not a plate's index-subsampling site)."""
    return site["type"] == "sample" and not isinstance(site["fn"], _Subsample)


def row_dim(site: dict) -> int | None:
    """The tensor dim of the ``"rows"`` plate at ``site``, or None outside it."""
    for frame in site["cond_indep_stack"]:
        if frame.name == ROW_PLATE:
            return frame.dim
    return None


def to_rows(log_density: torch.Tensor, site: dict) -> torch.Tensor:
    """Sum a log-density over everything but the row dim, giving ``[B]`` (or a scalar)."""
    dim = row_dim(site)
    if dim is None:
        return log_density.sum()
    moved = log_density.movedim(dim, 0)
    return moved.reshape(moved.shape[0], -1).sum(-1)


def _factorised(q, p) -> bool:
    return (
        isinstance(q, Independent)
        and isinstance(p, Independent)
        and q.reinterpreted_batch_ndims == p.reinterpreted_batch_ndims
    )


def _event_mask(mask, q: Independent):
    """A site's batch-shaped mask, broadcastable against the base distribution's shape."""
    if not torch.is_tensor(mask):
        return mask
    return mask.reshape(mask.shape + (1,) * q.reinterpreted_batch_ndims)


def elbo_terms(
    model: Callable,
    guide: Callable,
    *args,
    analytic_kl: bool = True,
    keep_per_dim: bool = False,
    **kwargs,
) -> ELBOTerms:
    """Trace ``guide``, replay ``model`` against it, and return per-row ELBO terms.

    ``keep_per_dim``: also return the closed-form KL per latent dimension ``[B, d]`` of every
    row-plate site whose guide and prior are both ``Independent`` with a registered base KL
    (e.g. diagonal Normal against a standard-normal prior); ``d`` counts all event elements.
    """
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    recon = kl = kl_raw = global_kl = 0.0
    terms = ELBOTerms(
        recon=torch.zeros(0), kl=torch.zeros(0), kl_raw=torch.zeros(0), global_kl=torch.zeros(())
    )
    for name, site in model_trace.nodes.items():
        if not is_random_site(site):
            continue
        fn, scale, mask = site["fn"], site["scale"], site["mask"]
        if site["is_observed"]:
            recon = recon + to_rows(scale_and_mask(fn.log_prob(site["value"]), scale, mask), site)
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
                dim = row_dim(site)
                if keep_per_dim and dim is not None and _factorised(q, fn):
                    per_dim = kl_divergence(q.base_dist, fn.base_dist)
                    per_dim = scale_and_mask(per_dim, 1.0, _event_mask(mask, q))
                    moved = per_dim.movedim(dim - q.reinterpreted_batch_ndims, 0)
                    terms.kl_per_dim[name] = moved.reshape(moved.shape[0], -1)
            except NotImplementedError:
                pass
        if value is None:
            z = guide_site["value"]
            value = q.log_prob(z) - fn.log_prob(z)
        terms.analytic[name] = analytic
        if row_dim(site) is None:
            global_kl = global_kl + scale_and_mask(value, scale, mask).sum()
        else:
            terms.kl_sites[name] = to_rows(scale_and_mask(value, 1.0, mask), site)
            terms.latent_dims[name] = guide_site["value"].numel() // terms.kl_sites[name].numel()
            kl = kl + to_rows(scale_and_mask(value, scale, mask), site)
            kl_raw = kl_raw + terms.kl_sites[name]
    terms.recon = torch.as_tensor(recon)
    zeros = torch.zeros_like(terms.recon)
    terms.kl = kl if torch.is_tensor(kl) else zeros
    terms.kl_raw = kl_raw if torch.is_tensor(kl_raw) else zeros
    terms.global_kl = torch.as_tensor(global_kl)
    return terms
