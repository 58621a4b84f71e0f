r"""A gradient-boosted classifier of oblivious trees, in torch: the detector behind
:mod:`ppvae.detector_resampling`.

A tree of depth ``D`` is *oblivious* (symmetric, as CatBoost's): every node of level ``d``
asks the same question :math:`x_{f_d} > t_d`, so a row's leaf is the binary number of its
``D`` answers, and the whole model is three tensors (``features [T, D]``, ``thresholds
[T, D]``, ``leaves [T, 2^D]``) that a ``state_dict`` saves and any device evaluates. The
logit of "synthetic" is

.. math::  F(x) = b + \sum_{t=1}^{T} v_t\big[\textstyle\sum_d 2^{D-1-d}\,
           \mathbb 1(x_{f_{td}} > t_{td})\big],

fitted by Newton boosting on the logistic loss: with :math:`p = \sigma(F)`, gradients
:math:`g = p - y` and Hessians :math:`h = p(1 - p)`, each level takes the split with the
largest gain :math:`\sum_{\text{nodes}} G_L^2/(H_L + \lambda) + G_R^2/(H_R + \lambda)` over
histograms of ``BINS`` quantile thresholds per feature, and each leaf gets
:math:`v = -\eta\, G/(H + \lambda)`. Sums :math:`G, H` run over a node's rows.
"""

from __future__ import annotations

import math

import torch
from torch import nn

TREES = 300
DEPTH = 6
BINS = 32  # quantile thresholds per feature, at most BINS - 1
LEARNING_RATE = 0.2
L2 = 1.0  # lambda: shrinks the leaves of nodes with little Hessian
CHUNK = 4096  # rows evaluated at a time


class ObliviousTrees(nn.Module):
    """``T`` oblivious trees of depth ``D`` plus a bias; ``forward(x [n, F]) -> logit [n]``.
    Untrained (all leaves zero) it returns the bias for every row."""

    def __init__(self, trees: int = TREES, depth: int = DEPTH):
        super().__init__()
        self.register_buffer("bias", torch.zeros(()))
        self.register_buffer("features", torch.zeros(trees, depth, dtype=torch.long))
        self.register_buffer("thresholds", torch.zeros(trees, depth))
        self.register_buffer("leaves", torch.zeros(trees, 2**depth))
        #: the ROC AUC on rows held out from fitting, where the caller measured one (else NaN)
        self.register_buffer("auc", torch.tensor(math.nan))

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], prefix: str = "") -> ObliviousTrees:
        """An instance shaped as the saved ``state`` (``prefix`` + buffer names), loaded."""
        trees, depth = state[prefix + "features"].shape
        out = cls(trees, depth)
        out.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        return out

    @property
    def grown(self) -> int:
        """How many trees have a nonzero leaf (trailing zero trees are unused)."""
        used = torch.nonzero(self.leaves.abs().sum(1) > 0).flatten()
        return int(used[-1]) + 1 if len(used) else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[n]`` logits, ``CHUNK`` rows at a time (a chunk's answers are ``[rows, T, D]``);
        trailing unused trees are skipped."""
        x = x.to(self.thresholds.dtype)
        used = max(self.grown, 1)
        features, thresholds, leaves = (
            self.features[:used],
            self.thresholds[:used],
            self.leaves[:used],
        )
        depth = features.shape[1]
        powers = 2.0 ** torch.arange(depth - 1, -1, -1, device=x.device, dtype=x.dtype)
        out = []
        for rows in x.split(CHUNK):
            leaf = ((rows[:, features] > thresholds).to(x.dtype) @ powers).long()  # [rows, T]
            out.append(self.bias + leaves.gather(1, leaf.T).sum(0))
        return torch.cat(out) if out else x.new_zeros(0)


def quantile_thresholds(x: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """``[F, bins - 1]`` split candidates per feature: the distinct inner quantiles (midway
    between two neighbouring distinct values, so that no row sits on one), padded with +inf
    (a split no row passes)."""
    probs = torch.linspace(0, 1, bins + 1, dtype=x.dtype, device=x.device)[1:-1]
    out = torch.full((x.shape[1], bins - 1), math.inf, dtype=x.dtype, device=x.device)
    for f in range(x.shape[1]):
        values = torch.unique(x[:, f])
        if len(values) < 2:
            continue
        mids = (values[1:] + values[:-1]) / 2
        if len(mids) > bins - 1:  # the quantiles' nearest midpoints
            q = torch.quantile(x[:, f], probs)
            mids = torch.unique(mids[torch.searchsorted(mids, q).clamp(max=len(mids) - 1)])
        out[f, : len(mids)] = mids
    return out


def fit_trees(
    x: torch.Tensor,
    y: torch.Tensor,
    trees: int = TREES,
    depth: int = DEPTH,
    learning_rate: float = LEARNING_RATE,
    l2: float = L2,
    bins: int = BINS,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    grow: int | None = None,
) -> ObliviousTrees:
    """Boost oblivious trees on ``x [n, F]`` (floats) for labels ``y [n]`` (0/1), into a
    model of ``trees`` trees of which the first ``grow`` (default: all) are grown and the rest
    left at zero. With ``validation = (x_val, y_val)`` the model keeps the first trees, as
    many as give the lowest log-loss on it (:attr:`ObliviousTrees.grown`; none when no tree
    beats the bias)."""
    x, y = x.double(), y.double()
    n, width = x.shape
    cuts = quantile_thresholds(x, bins)  # [F, B - 1]
    codes = torch.stack(
        [torch.searchsorted(cuts[f].contiguous(), x[:, f].contiguous()) for f in range(width)], 1
    )
    base = torch.arange(width, device=x.device) * bins + codes  # [n, F]: (feature, bin) cell
    usable = torch.isfinite(cuts)  # [F, B - 1]
    model = ObliviousTrees(trees, depth).to(x.device)
    rate = y.mean().clamp(1e-6, 1 - 1e-6)
    model.bias.fill_(float(torch.log(rate / (1 - rate))))
    logit = torch.full((n,), float(model.bias), dtype=x.dtype, device=x.device)
    if validation is not None:
        x_val, y_val = validation[0].to(model.thresholds.dtype), validation[1].double()
        val_logit = torch.full((len(y_val),), float(model.bias), dtype=x.dtype, device=x.device)
        best_loss, best_trees = _log_loss(val_logit, y_val), 0
    for t in range(trees if grow is None else min(grow, trees)):
        p = torch.sigmoid(logit)
        g, h = p - y, p * (1 - p)
        cell_g = g[:, None].expand(n, width).reshape(-1)  # one per (row, feature) cell
        cell_h = h[:, None].expand(n, width).reshape(-1)
        node = torch.zeros(n, dtype=torch.long, device=x.device)
        for d in range(depth):
            cells = (node[:, None] * (width * bins) + base).reshape(-1)
            size = (2**d) * width * bins
            shape = (2**d, width, bins)
            hist_g = torch.bincount(cells, cell_g, size).reshape(shape)
            hist_h = torch.bincount(cells, cell_h, size).reshape(shape)
            left_g, left_h = hist_g.cumsum(-1)[..., :-1], hist_h.cumsum(-1)[..., :-1]
            total_g, total_h = hist_g.sum(-1, keepdim=True), hist_h.sum(-1, keepdim=True)
            gain = (
                left_g**2 / (left_h + l2) + (total_g - left_g) ** 2 / (total_h - left_h + l2)
            ).sum(0)  # [F, B - 1]
            gain = gain.masked_fill(~usable, -math.inf)
            best = int(gain.argmax())
            f, j = divmod(best, bins - 1)
            model.features[t, d], model.thresholds[t, d] = f, cuts[f, j]
            node = node * 2 + (codes[:, f] > j).long()
        leaf_g = torch.bincount(node, g, 2**depth)
        leaf_h = torch.bincount(node, h, 2**depth)
        model.leaves[t] = (-learning_rate * leaf_g / (leaf_h + l2)).to(model.leaves.dtype)
        logit = logit + model.leaves[t].double()[node]
        if validation is not None:
            answers = (x_val[:, model.features[t]] > model.thresholds[t]).long()
            leaf = (answers * 2 ** torch.arange(depth - 1, -1, -1, device=x.device)).sum(-1)
            val_logit = val_logit + model.leaves[t].double()[leaf]
            loss = _log_loss(val_logit, y_val)
            if loss < best_loss:
                best_loss, best_trees = loss, t + 1
    if validation is not None:
        model.leaves[best_trees:] = 0
    return model


def _log_loss(logit: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.nn.functional.binary_cross_entropy_with_logits(logit, y))
