r"""Exact ties between numeric columns: a value that copies another column's, kept in samples.

In Default of credit card clients a month's payment equals the previous month's bill in
13.6-15.4 % of the rows (the bill paid in full). A decoder draws each number from a density,
so it puts no mass on another column's exact value: sampled rows held such a tie in 0.02-0.3 %
of rows, and a detector told them from real ones by it (docs/chained_continuous.md).

A *tie* ``B <- A`` is found at fit time when, among the rows where ``B`` is observed and off
its point masses (``ppvae.data.point_masses``), ``B = A`` in at least ``TIE_SHARE`` of them
(``MIN_TIES`` rows at least) and ``CHANCE_RATIO`` times more often than two independent
draws from the two columns' values would agree,

.. math::  \hat p_{\text{tie}} \ge \max\Big(\texttt{TIE\_SHARE},\;
           \texttt{CHANCE\_RATIO} \sum_v \hat P(B = v)\, \hat P(A = v)\Big),

which leaves out two integer columns on a small range that agree by chance. Each column is
the target of ``MAX_SOURCES`` ties at most, its most frequent sources (a payment equal to
the previous bill, or to the previous payment: on Default's validation split one, two and
three sources per column gave detection AUCs 0.778, 0.755 and 0.772, none 0.801;
docs/chained_continuous.md). The ties never form a cycle, so the copies are made in one
pass in dependency order (:func:`tie_order`), and of two columns that tie both ways the
later one copies. ``B`` then carries one more level per source in its
point-mass slot, "equal to A", drawn through the categorical chain with every other level
(given z and the levels before it), and a sampled row on that level gets ``A``'s value
(``TableTransformer.inverse_transform``, before the value rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

TIE_SHARE = 0.02  # of the rows where the target is observed and off its point masses
MIN_TIES = 20
CHANCE_RATIO = 10.0
MAX_SOURCES = 2  # ties per target column
SCREEN_ROWS = 5_000  # rows on which every pair is screened before it is counted on all
SCREEN_CELLS = 2**24  # comparisons per broadcast block of the screen
MAX_COLUMNS = 300  # a table with more numeric columns is not searched (p^2 pairs)


def find_ties(
    columns: Mapping[Any, np.ndarray],
    spikes: Mapping[Any, np.ndarray],
    rng: np.random.Generator,
) -> list[tuple[Any, Any]]:
    """The ties ``[(target, source), ...]`` among ``columns`` (name -> values ``[n]``, NaN
    missing, all on one scale; none among more than ``MAX_COLUMNS``); a target's values in
    ``spikes[name]`` never count."""
    names = list(columns)
    if not 2 <= len(names) <= MAX_COLUMNS:
        return []
    raw = np.stack([np.asarray(columns[c], dtype=float) for c in names], axis=1)
    off = np.stack([_off_spikes(raw[:, j], spikes.get(c)) for j, c in enumerate(names)], axis=1)
    n, p = raw.shape
    rows = np.arange(n) if n <= SCREEN_ROWS else rng.choice(n, SCREEN_ROWS, replace=False)
    equal = np.zeros((p, p))
    chunk = max(1, SCREEN_CELLS // (p * p))
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        equal += (off[block][:, :, None] == raw[block][:, None, :]).sum(0)  # NaN never equals
    np.fill_diagonal(equal, 0)
    observed = np.maximum((~np.isnan(off[rows])).sum(0), 1)
    # a loose screen (half the share) so that sampling noise does not drop a real tie
    candidates = np.argwhere(equal / observed[:, None] >= TIE_SHARE / 2)
    found = []
    for b, a in candidates:
        share, count = _tie_share(off[:, b], raw[:, a])
        chance = _chance(off[:, b], raw[:, a])
        if count >= MIN_TIES and share >= max(TIE_SHARE, CHANCE_RATIO * chance):
            found.append((share, b, names[b], names[a]))
    ties: list[tuple[Any, Any]] = []
    for _, _, b, a in sorted(found, key=lambda t: (-t[0], -t[1])):  # a tie: the later column copies
        if sum(target == b for target, _ in ties) < MAX_SOURCES and not _reaches(ties, a, b):
            ties.append((b, a))
    return ties


def tie_order(ties: list[tuple[Any, Any]]) -> list[Any]:
    """The targets of ``ties`` in an order where a target comes after every target it copies
    (the ties are acyclic): the order in which copied values are final."""
    pending = list(dict.fromkeys(target for target, _ in ties))
    order: list[Any] = []
    while pending:
        ready = [b for b in pending if all(a not in pending for t, a in ties if t == b and a != b)]
        order += ready
        pending = [b for b in pending if b not in ready]
    return order


def tie_levels(
    target: np.ndarray, sources: list[np.ndarray], spikes: np.ndarray | None
) -> np.ndarray:
    """Int ``[n]``: per row, the first of ``sources`` that ``target`` equals off its spikes,
    or -1."""
    off = _off_spikes(target, spikes)
    level = np.full(len(off), -1)
    for j in reversed(range(len(sources))):
        level = np.where(off == sources[j], j, level)
    return level


def _reaches(ties: list[tuple[Any, Any]], start: Any, goal: Any) -> bool:
    """Whether ``goal`` is ``start`` or is copied, through ``ties``, by ``start``'s sources."""
    seen, frontier = set(), [start]
    while frontier:
        node = frontier.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            frontier += [a for b, a in ties if b == node]
    return False


def _off_spikes(values: np.ndarray, spikes: np.ndarray | None) -> np.ndarray:
    x = np.asarray(values, dtype=float).copy()
    if spikes is not None and len(spikes):
        x[np.isin(x, spikes)] = np.nan
    return x


def _tie_share(target: np.ndarray, source: np.ndarray) -> tuple[float, int]:
    observed = ~np.isnan(target)
    count = int((target == source).sum())
    return count / max(int(observed.sum()), 1), count


def _chance(target: np.ndarray, source: np.ndarray) -> float:
    """P(B = A) for independent draws from the observed values of the two columns."""
    b = target[~np.isnan(target)]
    a = source[~np.isnan(source)]
    if not len(a) or not len(b):
        return 0.0
    values_b, counts_b = np.unique(b, return_counts=True)
    values_a, counts_a = np.unique(a, return_counts=True)
    common, ib, ia = np.intersect1d(values_b, values_a, return_indices=True)
    return float((counts_b[ib] / len(b) * counts_a[ia] / len(a)).sum())
