r"""Posterior predictive checks: do rows drawn from the model look like the real ones?

- **Marginals**: per column, the Kolmogorov–Smirnov statistic
  :math:`\sup_t |F_{real}(t) - F_{synth}(t)|` for numeric columns and the total variation
  distance :math:`\tfrac12 \sum_k |p_k - \hat p_k|` for categorical ones (missing values are a
  level of their own); 0 means identical.
- **Pairs**: the absolute difference, real vs synthetic, of the association of every pair of
  columns, all on [0, 1]: :math:`|\rho|` (Pearson) for two numeric columns, Cramér's V for
  two categorical ones, and the correlation ratio :math:`\eta` for a numeric-categorical
  pair (Cramér 1946; Fisher's :math:`\eta`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

MAX_ROWS = 5000


def is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def ks_statistic(a: pd.Series, b: pd.Series) -> float:
    x, y = np.sort(a.dropna().to_numpy(float)), np.sort(b.dropna().to_numpy(float))
    if len(x) == 0 or len(y) == 0:
        return 1.0 if len(x) != len(y) else 0.0
    grid = np.concatenate([x, y])
    fx = np.searchsorted(x, grid, side="right") / len(x)
    fy = np.searchsorted(y, grid, side="right") / len(y)
    return float(np.abs(fx - fy).max())


def total_variation(a: pd.Series, b: pd.Series) -> float:
    p = a.astype(object).where(a.notna(), "<missing>").value_counts(normalize=True)
    q = b.astype(object).where(b.notna(), "<missing>").value_counts(normalize=True)
    return float(0.5 * p.subtract(q, fill_value=0).abs().sum())


def marginal_distance(a: pd.Series, b: pd.Series) -> float:
    return ks_statistic(a, b) if is_numeric(a) else total_variation(a, b)


def cramers_v(a: pd.Series, b: pd.Series) -> float:
    table = pd.crosstab(a.astype(str), b.astype(str)).to_numpy(float)
    n = table.sum()
    if n == 0 or min(table.shape) < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))


def correlation_ratio(categories: pd.Series, values: pd.Series) -> float:
    ok = values.notna()
    y, groups = values[ok].to_numpy(float), categories[ok].astype(str)
    if len(y) < 2 or y.var() == 0:
        return 0.0
    means = pd.Series(y).groupby(groups.to_numpy()).agg(["mean", "count"])
    between = float((means["count"] * (means["mean"] - y.mean()) ** 2).sum())
    return float(np.sqrt(between / (y.var() * len(y))))


def association(df: pd.DataFrame, a: str, b: str) -> float:
    x, y = df[a], df[b]
    if is_numeric(x) and is_numeric(y):
        ok = x.notna() & y.notna()
        if ok.sum() < 2 or x[ok].std() == 0 or y[ok].std() == 0:
            return 0.0
        return float(abs(np.corrcoef(x[ok].to_numpy(float), y[ok].to_numpy(float))[0, 1]))
    if not is_numeric(x) and not is_numeric(y):
        return cramers_v(x, y)
    return correlation_ratio(y, x) if is_numeric(x) else correlation_ratio(x, y)


@dataclass
class PPC:
    marginals: pd.Series  # distance per column
    pairs: pd.DataFrame  # |association difference| per pair, a symmetric matrix

    @property
    def mean_marginal_distance(self) -> float:
        return float(self.marginals.mean())

    @property
    def mean_pair_difference(self) -> float:
        values = self.pairs.to_numpy()
        upper = values[np.triu_indices_from(values, k=1)]
        return float(np.nanmean(upper)) if upper.size else 0.0


def _datetimes_as_numbers(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c].dtype):
            out[c] = out[c].astype("int64").astype(float)
    return out


def posterior_predictive_check(real: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0) -> PPC:
    """Compare ``synthetic`` rows with ``real`` ones (same columns), on at most 5,000 rows each."""
    real = _datetimes_as_numbers(real.sample(min(MAX_ROWS, len(real)), random_state=seed))
    synthetic = _datetimes_as_numbers(
        synthetic.sample(min(MAX_ROWS, len(synthetic)), random_state=seed)
    )
    columns = list(real.columns)
    marginals = pd.Series({c: marginal_distance(real[c], synthetic[c]) for c in columns})
    pairs = pd.DataFrame(0.0, index=columns, columns=columns)
    for a, b in combinations(columns, 2):
        diff = abs(association(real, a, b) - association(synthetic, a, b))
        pairs.loc[a, b] = pairs.loc[b, a] = diff
    return PPC(marginals=marginals, pairs=pairs)
