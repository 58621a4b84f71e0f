r"""One pass over a streamed table: a bounded, mergeable row sample plus the rows that carry
what a sample can miss, so that the column transforms fit on a few hundred thousand rows
describe a table of any length.

- :class:`RowReservoir`: a uniform sample without replacement of at most ``size`` rows, by
  *bottom-k keys*: every row gets an independent key :math:`u \sim U(0, 1)` and the
  reservoir keeps the ``size`` rows with the smallest keys. Reservoirs of disjoint streams
  merge exactly (keep the ``size`` smallest keys of both), so shards can be summarised
  apart. Its size is the in-memory fit's own subsample (``MAX_FIT_ROWS`` = 100,000 rows of
  each numeric column), so a streamed quantile transform is as exact as an in-memory one:
  by the Dvoretzky–Kiefer–Wolfowitz inequality the sample CDF is within
  :math:`\sqrt{\ln(2/\delta)/2k}` of the table's (0.0052 for :math:`k = 10^5`,
  :math:`\delta = 1\%`) at every point at once; bench/results/scale.md measures it.
- :class:`Witnesses`: rows that witness exact facts the sample may miss: each column's
  smallest and largest value (so integer offsets and the quantile knots' ends are the
  table's), its first missing value, and the first row of every level of a column that
  may be categorical (so no category of the table is unknown to the model). Only the
  witnesses of facts the sample lacks join it: two rows per numeric column plus one per
  level too rare to be sampled, a negligible bias.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ppvae.data.schema import MAX_INT_LEVELS
from ppvae.data.transforms import MAX_FIT_ROWS

#: Distinct values tracked per column; a categorical column with more is refused when
#: streaming (its levels cannot all be known from one bounded pass).
MAX_LEVELS = 10_000


def concat_rows(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Row-wise concatenation that keeps each frame's index (global row numbers); pandas'
    notice about all-missing blocks is not the caller's concern (dtypes are re-inferred by
    the transformer)."""
    given = list(frames)
    frames = [f for f in given if len(f)]
    if len(frames) <= 1:
        return frames[0] if frames else (given[0] if given else pd.DataFrame())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat(frames)


class RowReservoir:
    """A uniform sample of at most ``size`` rows of a stream (bottom-k keys, see the
    module docstring). ``add(block)`` takes a DataFrame whose index holds global row
    numbers; ``sample`` is the sample as one frame, in key order."""

    def __init__(self, size: int = MAX_FIT_ROWS, seed: int = 0):
        self.size = int(size)
        self.rng = np.random.default_rng(seed)
        self.keys = np.empty(0)
        self.rows: pd.DataFrame | None = None
        self.threshold = 1.0
        self._pending: list[tuple[np.ndarray, pd.DataFrame]] = []
        self._pending_rows = 0

    def add(self, block: pd.DataFrame) -> None:
        keys = self.rng.random(len(block))
        take = keys < self.threshold
        if take.any():
            self._pending.append((keys[take], block[take]))
            self._pending_rows += int(take.sum())
            if self._pending_rows >= self.size:
                self._compact()

    def merge(self, other: RowReservoir) -> RowReservoir:
        """This reservoir and ``other`` (of a disjoint stream) as one."""
        other._compact()
        if other.rows is not None:
            self._pending.append((other.keys, other.rows))
            self._pending_rows += len(other.keys)
        self._compact()
        return self

    def _compact(self) -> None:
        if not self._pending:
            return
        parts = ([(self.keys, self.rows)] if self.rows is not None else []) + self._pending
        keys = np.concatenate([k for k, _ in parts])
        rows = concat_rows(r for _, r in parts)
        if len(keys) > self.size:
            keep = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
            keys, rows = keys[keep], rows.iloc[keep]
            self.threshold = float(keys.max())
        self.keys, self.rows = keys, rows
        self._pending, self._pending_rows = [], 0

    def __len__(self) -> int:
        return len(self.keys) + self._pending_rows

    @property
    def sample(self) -> pd.DataFrame:
        self._compact()
        if self.rows is None:
            raise ValueError("the reservoir saw no rows")
        return self.rows.iloc[np.argsort(self.keys, kind="stable")]


class Witnesses:
    """Rows witnessing each column's extremes, first missing value and levels (see the
    module docstring), over every row added. A numeric column's levels are tracked only
    while it has at most ``MAX_INT_LEVELS + 1`` (beyond that it cannot be categorical),
    other columns' up to ``max_levels``; ``overflowing`` names the columns past that."""

    def __init__(self, max_levels: int = MAX_LEVELS):
        self.max_levels = int(max_levels)
        self.first: dict[Any, dict[Any, Any] | None] = {}  # column -> {level: row}
        self.low: dict[Any, tuple[float, Any]] = {}
        self.high: dict[Any, tuple[float, Any]] = {}
        self.missing: dict[Any, Any] = {}
        self._frames: list[pd.DataFrame] = []

    def add(self, block: pd.DataFrame, prepared: pd.DataFrame) -> None:
        """``block``: rows as read, indexed by global row number; ``prepared``: the same
        rows as the transforms see them (:meth:`TableTransformer.prepare`)."""
        keep: set = set()
        for name in prepared.columns:
            s = prepared[name]
            na = s.isna().to_numpy()
            if name not in self.missing and na.any():
                self.missing[name] = prepared.index[np.argmax(na)]
                keep.add(self.missing[name])
            observed = s[~na]
            first = self.first.setdefault(name, {})
            if not len(observed):
                continue
            numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(
                s.dtype
            )
            if numeric:
                values = observed.to_numpy(dtype=float)
                for store, pick in ((self.low, np.argmin), (self.high, np.argmax)):
                    i = int(pick(values))
                    best = store.get(name)
                    lower = pick is np.argmin
                    if best is None or (values[i] < best[0] if lower else values[i] > best[0]):
                        store[name] = (float(values[i]), observed.index[i])
                        keep.add(observed.index[i])
            if first is None:
                continue
            try:
                new = observed[~observed.isin(list(first))].drop_duplicates()
            except TypeError:  # unhashable cells: the transformer refuses them with a message
                self.first[name] = None
                continue
            first.update(zip(new.tolist(), new.index))
            if len(first) > (MAX_INT_LEVELS + 1 if numeric else self.max_levels):
                self.first[name] = None
                continue
            keep.update(new.index)
        if keep:
            self._frames.append(block.loc[block.index.isin(list(keep))])

    @property
    def overflowing(self) -> list[Any]:
        return [name for name, levels in self.first.items() if levels is None]

    def frame(self, sample: pd.DataFrame, prepared: pd.DataFrame) -> pd.DataFrame:
        """The witness rows ``sample`` (``prepared``: as the transforms see it) lacks: the
        extremes, a missing value where the sample has none, and the levels it misses."""
        needed = {row for store in (self.low, self.high) for _, row in store.values()}
        for name, row in self.missing.items():
            if not prepared[name].isna().any():
                needed.add(row)
        for name, levels in self.first.items():
            if levels:
                present = set(prepared[name].dropna().tolist())
                needed.update(row for level, row in levels.items() if level not in present)
        needed -= set(sample.index)
        rows = concat_rows(self._frames) if self._frames else sample.iloc[:0]
        rows = rows[~rows.index.duplicated()]
        return rows.loc[rows.index.isin(list(needed))].sort_index()
