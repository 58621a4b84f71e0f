r"""Split the ELBO of one Pyro trace pair into per-row reconstruction and KL terms.

For a guide draw :math:`z \sim q(z \mid x)` the ELBO of row :math:`x` is

.. math::  \mathcal{L}(x) = \underbrace{\log p(x \mid z)}_{\text{recon}}
           - \underbrace{\big(\log q(z \mid x) - \log p(z)\big)}_{\text{KL}} .

The terms are read from the traces Pyro's ELBOs build (:func:`importance_traces`: the guide
traced, the model replayed against it, log-densities computed once). Observed sites of the
model trace form the reconstruction term; every latent site is a KL term, in closed form
(:func:`torch.distributions.kl_divergence`) when the guide site is reparameterised, the pair
has one registered and ``analytic_kl`` allows it, else the single-sample Monte Carlo estimate
:math:`\log q(z) - \log p(z)`. Which one was used is recorded per site in
:attr:`ELBOTerms.analytic`. With ``analytic_kl=False`` the terms sum to Pyro's ``Trace_ELBO``;
with ``True``, to ``TraceMeanField_ELBO``.

A guide site without ``rsample`` (a discrete latent) has no pathwise gradient: its
:math:`\log q` enters the terms detached, and :func:`score_function_surrogate` supplies the
score-function (REINFORCE) gradient exactly as ``Trace_ELBO`` does, Rao-Blackwellised over
plates.

Sites inside the row plate (``"rows"``) contribute per-row ``[B]`` values; sites outside it
(global latents of a user's model) go to the scalar :attr:`ELBOTerms.global_kl`. Site scales
(``poutine.scale``: the beta of a beta-VAE, say) and masks (``poutine.mask``) are applied as
Pyro applies them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer.enum import get_importance_trace
from pyro.infer.util import MultiFrameTensor, get_plate_stacks
from pyro.poutine import Trace
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


def importance_traces(model: Callable, guide: Callable, *args, **kwargs) -> tuple[Trace, Trace]:
    """``(model_trace, guide_trace)`` as Pyro's ELBOs build them: the guide traced, the
    model replayed against it, subsample sites pruned, log-densities and score parts
    computed (Pyro's shape and support checks run when validation is on)."""
    return get_importance_trace("flat", math.inf, model, guide, args, kwargs)


def is_reparameterised(guide_site: dict) -> bool:
    """The site's gradient is pathwise (no score-function term)."""
    return is_identically_zero(guide_site["score_parts"].score_function)


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


def trace_terms(
    model_trace: Trace,
    guide_trace: Trace,
    analytic_kl: bool = True,
    keep_per_dim: bool = False,
) -> ELBOTerms:
    """Per-row ELBO terms of a trace pair from :func:`importance_traces`.

    ``keep_per_dim``: also return the closed-form KL per latent dimension ``[B, d]`` of every
    row-plate site whose guide and prior are both ``Independent`` with a registered base KL
    (e.g. diagonal Normal against a standard-normal prior); ``d`` counts all event elements.
    """
    recon = kl = kl_raw = global_kl = 0.0
    terms = ELBOTerms(
        recon=torch.zeros(0), kl=torch.zeros(0), kl_raw=torch.zeros(0), global_kl=torch.zeros(())
    )
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        if site["is_observed"]:
            recon = recon + to_rows(site["log_prob"], site)
            continue
        guide_site = guide_trace.nodes.get(name)
        if guide_site is None:
            raise RuntimeError(f"latent site {name!r} of the model has no counterpart in the guide")
        q, p, scale, mask = guide_site["fn"], site["fn"], site["scale"], site["mask"]
        reparameterised = is_reparameterised(guide_site)
        value, analytic = None, False
        if analytic_kl and reparameterised:
            try:
                value = kl_divergence(q, p)
                analytic = True
                dim = row_dim(site)
                if keep_per_dim and dim is not None and _factorised(q, p):
                    per_dim = kl_divergence(q.base_dist, p.base_dist)
                    per_dim = scale_and_mask(per_dim, 1.0, _event_mask(mask, q))
                    moved = per_dim.movedim(dim - q.reinterpreted_batch_ndims, 0)
                    terms.kl_per_dim[name] = moved.reshape(moved.shape[0], -1)
            except NotImplementedError:
                pass
        if value is None:
            log_q = guide_site["unscaled_log_prob"]
            value = (log_q if reparameterised else log_q.detach()) - site["unscaled_log_prob"]
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


def elbo_terms(
    model: Callable,
    guide: Callable,
    *args,
    analytic_kl: bool = True,
    keep_per_dim: bool = False,
    **kwargs,
) -> ELBOTerms:
    """Trace ``guide``, replay ``model`` against it, and return per-row ELBO terms."""
    model_trace, guide_trace = importance_traces(model, guide, *args, **kwargs)
    return trace_terms(model_trace, guide_trace, analytic_kl, keep_per_dim)


def score_function_surrogate(model_trace: Trace, guide_trace: Trace) -> torch.Tensor | float:
    r"""The score-function part of ``Trace_ELBO``'s surrogate ELBO:
    :math:`\sum_s \big(\log r\big)_{\downarrow s}\,\nabla\!\log q(z_s)` over the guide sites
    ``s`` without ``rsample``, with :math:`\log r = \log p - \log q` (detached) summed down
    to each site's plates. Its value is meaningless; only its gradient counts. 0.0 when
    every guide site is reparameterised."""
    total, log_r = 0.0, None
    for site in guide_trace.nodes.values():
        if site["type"] != "sample" or is_reparameterised(site):
            continue
        if log_r is None:
            log_r = MultiFrameTensor()
            stacks = get_plate_stacks(model_trace)
            for name, model_site in model_trace.nodes.items():
                if model_site["type"] != "sample":
                    continue
                term = model_site["log_prob"]
                if not model_site["is_observed"]:
                    term = term - guide_trace.nodes[name]["log_prob"]
                log_r.add((stacks[name], term.detach()))
        reward = log_r.sum_to(site["cond_indep_stack"])
        total = total + (reward * site["score_parts"].score_function).sum()
    return total
