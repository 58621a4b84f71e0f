r"""The hidden slots of chained sites, completed with their importance weight.

In a chained site (:mod:`ppvae.chained_categories`, :mod:`ppvae.chained_continuous`) a slot
depends on the slots before it, so the density of a partial row's fixed slots given z,
:math:`p(x_S \mid z)`, sums over the hidden slots before them and has no closed form; and a
hidden slot must be drawn given the fixed slots *after* it as well as before. Both are
handled by sequential importance sampling over the slots. For each particle
:math:`z_k \sim q(z \mid x_S)` the hidden slots :math:`x_M` are drawn in slot order, each from
:math:`p(x_j \mid z_k, x_{<j})` (a ranged slot truncated to its range), and the particle's
weight gains, per fixed slot, its density given everything before it (and per range its
probability):

.. math::  \log w_k = \log p(z_k) - \log q(z_k \mid x_S) + \log p(x_S^{\mathrm{rest}} \mid z_k)
           + \sum_{j \in S} \log p(x_j \mid z_k, x_{<j})
           + \sum_{j \in R} \log P(x_j \in R_j \mid z_k, x_{<j}).

The pairs :math:`(z_k, x_M)` are then a properly weighted sample of
:math:`p(z, x_M \mid x_S)` (:math:`\mathbb{E}_q[w] = p(x_S)`), and resampling them in proportion
to :math:`w_k` (:mod:`ppvae.posterior_resampling`) gives completions that agree with the fixed
slots on either side. Resampling copies a good particle into several draws; independent
Metropolis-Hastings moves of each draw's completion given its z (:meth:`SlotCompletion.refresh`)
then make the copies distinct. A site is *chained* when its distribution has
``complete(value, fixed, ranges) -> (completed, log_weight)`` and ``log_weight(completed,
fixed, ranges)``; a chained ``x_cont`` reads the row's levels, so it is re-read at the
completed ``x_cat`` (``given_levels``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from pyro.poutine.trace_struct import Trace

from ppvae.data.layout import TensorTable, mask_name
from ppvae.objectives.terms import to_rows


def chained_sites(trace: Trace) -> list[str]:
    """Names of the sites of ``trace`` whose distribution completes hidden slots."""
    return [
        name
        for name, node in trace.nodes.items()
        if node["type"] == "sample" and hasattr(node["fn"], "complete")
    ]


class SlotCompletion:
    """Completions of the hidden slots of every chained site of a model trace on partial
    rows, with their sequential importance weights. ``ranges`` ``{x_cont slot: (y_lo,
    y_hi)}`` apply to ``x_cont``."""

    def __init__(self, ranges: Mapping[int, tuple[float, float]] | None = None):
        self.ranges = dict(ranges or {})

    def _site(self, trace: Trace, name: str, x_cat: torch.Tensor | None):
        """``(fn, value, fixed, ranges)`` of a chained site, a chained ``x_cont`` read at the
        levels ``x_cat`` (when there are any)."""
        node = trace.nodes[name]
        fn, value = node["fn"], node["value"]
        if x_cat is not None and hasattr(fn, "given_levels"):
            fn = fn.given_levels(x_cat)
        fixed = torch.ones_like(value, dtype=torch.bool) if fn.mask is None else fn.mask.bool()
        return fn, value, fixed.expand(value.shape), self.ranges if name == "x_cont" else None

    def draw(self, trace: Trace) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """New completions ``{site: [N, slots]}`` and their summed log-weights ``[N]``."""
        completions: dict[str, torch.Tensor] = {}
        total = 0.0
        for name in chained_sites(trace):  # x_cat first: a chained x_cont reads its levels
            fn, value, fixed, ranges = self._site(trace, name, completions.get("x_cat"))
            completions[name], log_w = fn.complete(value, fixed, ranges)
            total = total + log_w
        return completions, total

    def log_weight(self, trace: Trace, completions: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The summed log-weights ``[N]`` of given completions, as :meth:`draw` returns them."""
        total = 0.0
        for name in chained_sites(trace):
            fn, _, fixed, ranges = self._site(trace, name, completions.get("x_cat"))
            total = total + fn.log_weight(completions[name], fixed, ranges)
        return total

    def __call__(self, trace: Trace) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Completions, and the change of each line's log-weight ``[N]``: the sequential
        weight of the fixed slots minus the density the trace (log-densities computed) gave
        them."""
        completions, log_w = self.draw(trace)
        given = sum(to_rows(trace.nodes[n]["log_prob"], trace.nodes[n]) for n in completions)
        return completions, log_w - given

    def refresh(
        self, trace: Trace, current: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        r"""One Metropolis-Hastings move of each line's completion given its z (the trace's):
        from a random slot on (in chain order: the levels, then the numbers), the hidden slots
        are drawn again as :meth:`draw` draws them, the ones before it kept; the move is
        accepted with probability :math:`\min(1, w'/w)`, the ratio of the sequential weights
        (the kept slots' terms cancel). Each such kernel leaves :math:`p(x_M \mid z, x_S)`
        invariant, because the proposal is the chain's own draw of the redrawn slots, so
        target / proposal is the weight. Resampling copies a particle into several draws;
        these moves make the copies distinct. Returns the completions and which lines moved
        ``[N]``."""
        sites = chained_sites(trace)
        widths = [current[name].shape[-1] for name in sites]
        lines = next(iter(current.values())).shape[0]
        device = next(iter(current.values())).device
        start = torch.randint(sum(widths), (lines, 1), device=device)  # first slot redrawn
        proposal: dict[str, torch.Tensor] = {}
        log_new, log_old, offset = 0.0, 0.0, 0
        for name, width in zip(sites, widths):
            fn, value, fixed, ranges = self._site(trace, name, proposal.get("x_cat"))
            kept = fixed | (torch.arange(width, device=device) + offset < start)
            old = current[name].to(value.dtype)
            proposal[name], log_w = fn.complete(torch.where(kept, old, value), kept, ranges)
            log_new = log_new + log_w
            before = self._site(trace, name, current.get("x_cat"))[0]
            log_old = log_old + before.log_weight(old, kept, ranges)
            offset += width
        accept = torch.rand_like(log_new).log() < log_new - log_old
        moved = {
            name: torch.where(
                accept[:, None], proposal[name], current[name].to(proposal[name].dtype)
            )
            for name in sites
        }
        return moved, accept


def completed_table(table: TensorTable, completions: Mapping[str, torch.Tensor]) -> TensorTable:
    """``table`` with each completed site's slots set to its completion and all observed."""
    tensors = {name: table[name] for name in table.keys()}
    for name, value in completions.items():
        tensors[name] = value.to(tensors[name].dtype)
        tensors[mask_name(name)] = torch.ones_like(tensors[mask_name(name)])
    return TensorTable(features=table.features, **tensors)
