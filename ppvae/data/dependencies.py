r"""Deterministic relations between columns, found at fit time and kept in every sampled row.

A *value rule* ``(A = a) -> (B = b)`` says that every training row with ``a`` in column ``A``
has ``b`` in column ``B``: Adult's ``education = Bachelors -> education-num = 13`` (and back:
a one-to-one functional dependency is one rule per level in each direction), joint
missingness (``workclass`` missing -> ``occupation`` missing), a zero count that forces a
zero duration (``Informational = 0 -> Informational_Duration = 0``). A functional dependency
``B = f(A)`` is the set of rules of every level of ``A``.

A rule is kept only when chance cannot explain it: the level ``a`` occurs in :math:`m \ge`
``min_rows`` rows, and :math:`p_b^m \le` ``alpha`` where :math:`p_b` is the share of ``b`` in
``B`` (the chance that :math:`m` rows drawn at random all hold ``b``). Missing values count
as a value. Sampled rows are then made to obey every rule (``apply``), so relations a
decoder can only approximate hold exactly, as they did in every training row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MIN_ROWS = 10
ALPHA = 1e-4
MAX_PASSES = 4


def _plain(value: Any) -> Any:
    """A JSON-able scalar (``None`` for a missing value)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _group_position(index: pd.Index, level: Any) -> int:
    """Position of ``level`` (possibly missing) in a groupby result's index."""
    if pd.isna(level) if not isinstance(level, str) else False:
        return int(np.flatnonzero(index.isna())[0])
    return int(index.get_loc(level))


def _matches(column: pd.Series, value: Any) -> np.ndarray:
    if value is None:
        return column.isna().to_numpy()
    return (column == value).to_numpy(dtype=bool, na_value=False)


class ValueRules:
    """The value rules of a table: ``[(A, a, B, b), ...]`` (see the module docstring).

    Parameters
    ----------
    min_rows: fewest rows with ``A = a`` for a rule (m above).
    alpha: largest chance :math:`p_b^m` of the rule arising by chance.
    """

    def __init__(self, min_rows: int = MIN_ROWS, alpha: float = ALPHA):
        self.min_rows, self.alpha = min_rows, alpha
        self.rules: list[tuple[Any, Any, Any, Any]] = []

    def fit(self, df: pd.DataFrame, columns: Sequence[Any]) -> ValueRules:
        """Find the rules among ``columns`` of ``df`` (missing values as a value)."""
        columns = list(columns)
        shares = {c: df[c].value_counts(dropna=False, normalize=True) for c in columns}
        rules = []
        for a_col in columns:
            counts = shares[a_col] * len(df)
            frequent = counts.index[counts >= self.min_rows]
            others = [c for c in columns if c != a_col and len(shares[c]) > 1]
            if len(frequent) == 0 or not others:
                continue
            sub = df[df[a_col].isin(frequent)]
            groups = sub.groupby(a_col, dropna=False, sort=True, observed=True)
            distinct = groups[others].nunique(dropna=False)
            first = groups[others].head(1).reindex(columns=others)
            levels = sub.loc[first.index, a_col]
            sizes = groups.size()
            for index, level in levels.items():
                size = int(sizes.iloc[_group_position(sizes.index, level)])
                constant = distinct.columns[
                    distinct.iloc[_group_position(distinct.index, level)].to_numpy() == 1
                ]
                for b_col in constant:
                    b = first.loc[index, b_col]
                    share = float(
                        shares[b_col].loc[shares[b_col].index.isna()].sum()
                        if pd.isna(b)
                        else shares[b_col].get(b, 0.0)
                    )
                    if share**size > self.alpha:
                        continue
                    rule = (a_col, _plain(level), b_col, _plain(b))
                    try:
                        json.dumps(rule)
                    except (TypeError, ValueError):
                        continue
                    rules.append(rule)
        self.rules = rules
        return self

    def apply(self, df: pd.DataFrame, fixed: pd.DataFrame | None = None) -> pd.DataFrame:
        """``df`` with every rule enforced (repeated until no value changes, so chains such
        as ``A -> B -> C`` hold too). ``fixed``: a boolean frame like ``df`` of cells no rule
        may change (values a caller conditioned on); a rule whose consequence is fixed is
        skipped for that row, so the rule in the other direction decides."""
        if not self.rules:
            return df
        out = df.copy()
        for _ in range(MAX_PASSES):
            changed = False
            for a_col, a, b_col, b in self.rules:
                mask = _matches(out[a_col], a) & ~_matches(out[b_col], b)
                if fixed is not None:
                    mask &= ~fixed[b_col].to_numpy()
                if mask.any():
                    out.loc[mask, b_col] = np.nan if b is None else b
                    changed = True
            if not changed:
                break
        return out

    def violations(self, df: pd.DataFrame) -> int:
        """Number of rows of ``df`` that break at least one rule."""
        bad = np.zeros(len(df), dtype=bool)
        for a_col, a, b_col, b in self.rules:
            bad |= _matches(df[a_col], a) & ~_matches(df[b_col], b)
        return int(bad.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_rows": self.min_rows,
            "alpha": self.alpha,
            "rules": [list(r) for r in self.rules],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ValueRules:
        obj = cls(state["min_rows"], state["alpha"])
        obj.rules = [tuple(r) for r in state["rules"]]
        return obj
