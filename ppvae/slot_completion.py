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
slots on either side. A site is *chained* when its distribution has ``complete(value, fixed,
ranges) -> (completed, log_weight)``; a chained ``x_cont`` reads the row's levels, so it is
re-read at the completed ``x_cat`` (``given_levels``).
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


def complete_trace(
    trace: Trace, ranges: Mapping[int, tuple[float, float]] | None = None
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Completions of the hidden slots of every chained site of a model ``trace`` on partial
    rows (log-densities computed), and the change of each line's log-weight ``[N]``: the
    sequential weight of the fixed slots minus the density the trace gave them.
    ``ranges`` ``{x_cont slot: (y_lo, y_hi)}`` apply to ``x_cont``."""
    completions: dict[str, torch.Tensor] = {}
    change = 0.0
    for name in chained_sites(trace):
        node = trace.nodes[name]
        fn, value = node["fn"], node["value"]
        if "x_cat" in completions and hasattr(fn, "given_levels"):
            fn = fn.given_levels(completions["x_cat"])
        fixed = torch.ones_like(value, dtype=torch.bool) if fn.mask is None else fn.mask.bool()
        fixed = fixed.expand(value.shape)
        done, log_w = fn.complete(value, fixed, ranges if name == "x_cont" else None)
        completions[name] = done
        change = change + log_w - to_rows(node["log_prob"], node)
    return completions, change


def completed_table(table: TensorTable, completions: Mapping[str, torch.Tensor]) -> TensorTable:
    """``table`` with each completed site's slots set to its completion and all observed."""
    tensors = {name: table[name] for name in table.keys()}
    for name, value in completions.items():
        tensors[name] = value.to(tensors[name].dtype)
        tensors[mask_name(name)] = torch.ones_like(tensors[mask_name(name)])
    return TensorTable(features=table.features, **tensors)
