r"""Generated rows resampled by a detector: a density-ratio correction of the generator.

After the fit (and the marginal calibration), a classifier :math:`D` learns to tell the
model's delivered rows from real rows it was not trained on, the validation rows: gradient-
boosted oblivious trees (:mod:`ppvae.boosted_trees`), with the number of trees chosen on a
held-out fifth of that data and then refitted on all of it. Its logit :math:`F(x)` estimates
the log density ratio (Sugiyama et al. 2012):

.. math::  \frac{p_{data}(x)}{p_{model}(x)} \propto \frac{1 - D(x)}{D(x)} = e^{-F(x)}.

``sample(n)`` draws ``POOL * n`` rows and keeps ``n`` of them, each row with inclusion
probability :math:`\pi_i = \min(1, c\, w_i)` (:math:`\sum_i \pi_i = n`, systematic sampling
in random order), so the kept rows follow :math:`p_{model}\, w` as far as the pool allows: a
row can gain at most ``POOL`` times its weight, and no row is drawn twice (sampling-
importance-resampling without duplicates; the discriminator rejection sampling of Azadi et
al. 2019, for a table). Before that the weights are *raked* (iterative proportional fitting)
so that every slot's weighted distribution in the pool, levels and the ``RAKE_PROBS``
quantile bins of each continuous slot, equals its unweighted one: the calibration already matched
the marginals to the training rows', and the detector corrects only how the columns go
together.

The detector sees slots, not one-hot vectors: continuous scores (``MASKED_SCORE`` where a
slot is not in use: missing, a point mass), level indices (-1 where masked) and missing
flags. It is fitted only on a table with at least ``MIN_REAL_ROWS`` validation rows (a few
hundred real rows make a detector that fits noise: on diamonds' validation split, 500 rows
without the held-out choice of trees raised the detection AUC of the kept rows from 0.670 to
0.691), and only when it finds something: when no tree lowers the log-loss on the held-out
fifth, or its AUC there is within ``MIN_Z`` standard errors of chance, no detector is kept
and sampling is unchanged.
"""

from __future__ import annotations

import math

import torch

from ppvae.boosted_trees import ObliviousTrees, fit_trees
from ppvae.data.layout import CONTINUOUS, Layout, TensorTable

POOL = 4  # generated rows per row kept
SYNTHETIC_PER_REAL = 4  # generated rows per real row in the detector's data
MIN_REAL_ROWS = 500
HELD_OUT = 0.2  # share of the detector's data that chooses the number of trees
MASKED_SCORE = -10.0  # below every quantile-normal score (they stay within +-5)
#: quantiles that bin a continuous slot for the raking: deciles, and finer in the tails, so
#: that the kept rows reach a column's extremes as often as the calibrated draws do
RAKE_PROBS = (0.001, 0.01, 0.05, *(k / 10 for k in range(1, 10)), 0.95, 0.99, 0.999)
RAKE_ITERATIONS = 5
MAX_LOGIT = 30.0
MIN_Z = 2.0  # held-out AUC above chance by this many standard errors, or no detector
#: and at least this AUC: on Adult's validation split a detector with a held-out AUC just
#: above chance made the kept rows easier to tell apart (0.514 -> 0.538, 0.527 -> 0.534)
MIN_AUC = 0.55
PREFIX = "detector."  # its buffers' keys in the module's state_dict


def detector_features(table: TensorTable, layout: Layout) -> torch.Tensor:
    """``[n, slots]`` floats in layout order: continuous scores (``MASKED_SCORE`` where
    masked), level indices (-1 where masked) and every other group's values."""
    parts = []
    for group in layout.slots:
        values, mask = table[group].float(), table.mask(group)
        if mask is not None:
            fill = MASKED_SCORE if group == CONTINUOUS else -1.0
            values = torch.where(mask.bool(), values, torch.full_like(values, fill))
        parts.append(values)
    return torch.cat(parts, 1).cpu()


@torch.no_grad()
def fit_detector(
    module: torch.nn.Module, transformer, real: TensorTable, seed: int = 0
) -> ObliviousTrees | None:
    """A detector of ``module``'s delivered rows against ``real`` (encoded rows the model was
    not trained on), or None when there are fewer than ``MIN_REAL_ROWS`` of them, or when on
    the held-out fifth no tree lowers the log-loss or the AUC is within chance
    (:func:`tells_apart`)."""
    if len(real) < MIN_REAL_ROWS:
        return None
    layout = transformer.layout_
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generated = transformer.as_delivered(module.generate(SYNTHETIC_PER_REAL * len(real)))
        x_real = detector_features(real, layout)
        x = torch.cat([x_real, detector_features(generated, layout)])
        y = torch.cat([torch.zeros(len(x_real)), torch.ones(len(x) - len(x_real))])
        order = torch.randperm(len(x))
    held = order[: int(HELD_OUT * len(x))]
    kept = order[len(held) :]
    first = fit_trees(x[kept], y[kept], validation=(x[held], y[held]))
    if first.grown == 0 or not tells_apart(first(x[held]), y[held]):
        return None
    detector = fit_trees(x, y, grow=first.grown)
    detector.auc.fill_(roc_auc(first(x[held]), y[held]))
    return detector


def roc_auc(score: torch.Tensor, label: torch.Tensor) -> float:
    """The ROC AUC of ``score`` for ``label`` 1 against 0 (Mann-Whitney, ties counted half)."""
    order = torch.argsort(score)
    _, group, counts = torch.unique_consecutive(
        score[order], return_inverse=True, return_counts=True
    )
    mean_rank = counts.cumsum(0).double() - (counts.double() - 1) / 2  # 1-based, per tie group
    ranks = torch.empty(len(score), dtype=torch.double)
    ranks[order] = mean_rank[group]
    positive = label > 0.5
    n1, n0 = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tells_apart(score: torch.Tensor, label: torch.Tensor) -> bool:
    r"""Whether the held-out AUC is at least ``MIN_AUC`` and exceeds 1/2 by more than
    ``MIN_Z`` standard errors of the AUC of a detector that sees nothing,
    :math:`\sqrt{(n_0 + n_1 + 1) / (12\, n_0 n_1)}`."""
    n1 = int((label > 0.5).sum())
    n0 = len(label) - n1
    if n0 == 0 or n1 == 0:
        return False
    auc = roc_auc(score, label)
    return auc >= MIN_AUC and auc - 0.5 > MIN_Z * math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))


def weights(detector: ObliviousTrees, table: TensorTable, layout: Layout) -> torch.Tensor:
    """``[n]`` density ratios :math:`e^{-F(x)}` of delivered rows, up to a constant."""
    logit = detector(detector_features(table, layout).to(detector.leaves.device)).cpu()
    return torch.exp(-(logit - logit.mean()).clamp(-MAX_LOGIT, MAX_LOGIT)).double()


def rake(w: torch.Tensor, table: TensorTable, layout: Layout) -> torch.Tensor:
    """``w`` adjusted so that each slot's weighted share of every level (continuous slots: the
    ``RAKE_PROBS`` quantile bins of the rows, masked cells apart) equals its unweighted share."""
    cells = []
    for group in layout.slots:
        values, mask = table[group], table.mask(group)
        for j in range(values.shape[1]):
            v = values[:, j]
            if group == CONTINUOUS:
                edges = torch.quantile(v.double(), torch.tensor(RAKE_PROBS, dtype=torch.double))
                code = torch.bucketize(v.double(), edges) + 1
            else:
                code = torch.unique(v, return_inverse=True)[1] + 1
            if mask is not None:
                code = torch.where(mask[:, j].bool(), code, torch.zeros_like(code))
            cells.append(code.long())
    w = w / w.sum()
    for _ in range(RAKE_ITERATIONS):
        for code in cells:
            target = torch.bincount(code).double() / len(code)
            current = torch.bincount(code, w, len(target))
            w = w * (target / current.clamp_min(1e-300))[code]
    return w


def inclusion(w: torch.Tensor, n: int) -> torch.Tensor:
    r"""Inclusion probabilities :math:`\pi = \min(1, c\,w)` with :math:`\sum \pi = n`."""
    pi, free = torch.zeros_like(w), torch.ones_like(w, dtype=torch.bool)
    for _ in range(len(w)):
        left = n - int((~free).sum())
        pi[free] = left * w[free] / w[free].sum()
        over = free & (pi >= 1)
        if not over.any():
            break
        pi[over], free = 1.0, free & ~over
    return pi.clamp(max=1.0)


def choose(w: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` distinct row indices drawn by systematic sampling with inclusion probabilities
    :func:`inclusion` (torch's global random stream), in increasing order."""
    order = torch.randperm(len(w))
    total = inclusion(w, n)[order].cumsum(0)
    points = float(torch.rand(())) + torch.arange(n, dtype=torch.double)
    picked = torch.searchsorted(total, points.clamp(max=math.nextafter(float(total[-1]), 0)))
    return order[picked].sort().values


def resample(detector: ObliviousTrees, pool: TensorTable, layout: Layout, n: int) -> torch.Tensor:
    """Indices of ``n`` rows of ``pool`` (delivered rows, encoded) kept by the detector."""
    return choose(rake(weights(detector, pool, layout), pool, layout), n)


def attach_detector(
    module: torch.nn.Module, transformer, real: TensorTable, seed: int = 0
) -> ObliviousTrees | None:
    """Fit a detector (:func:`fit_detector`, the module in eval mode) and keep it as
    ``module.detector`` (saved with the weights); without one, drop any old one."""
    drop_detector(module)
    training = module.training
    module.eval()
    try:
        detector = fit_detector(module, transformer, real, seed)
    finally:
        module.train(training)
    if detector is not None:
        module.detector = detector.to(next(module.parameters()).device)
    return detector


def restore_detector(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give ``module`` a detector shaped as the one in a saved ``state_dict``, if it has one,
    so that ``module.load_state_dict(state)`` can load it."""
    if any(k.startswith(PREFIX) for k in state):
        module.detector = ObliviousTrees.from_state_dict(state, PREFIX)


def drop_detector(module: torch.nn.Module) -> None:
    """Remove ``module``'s detector: sampling draws from the model alone."""
    if "detector" in module._modules:
        del module._modules["detector"]
