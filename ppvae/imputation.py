"""Multiple imputation of a table's missing cells, and summaries of the imputations.

``impute(vae, df, m)`` returns one long frame: ``m`` completed copies of ``df`` stacked, with
a two-level index ``(imputation, <df's index>)``; observed cells are ``df``'s own values in
every copy, and each missing cell holds a draw from :math:`p(x_{miss} \\mid x_{obs})`
(:mod:`ppvae.partial_rows`). ``draws.xs(0, level="imputation")`` is one completed table.

- :func:`imputation_intervals`: per-cell central intervals of numeric columns;
- :func:`point_estimate`: the draws' mean (numeric) and most frequent level (categorical),
  the single best guess per cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ppvae.data.errors import DataError
from ppvae.partial_rows import draw, from_frame
from ppvae.posterior_resampling import PosteriorDraws

IMPUTATION = "imputation"


def impute(
    vae: Any, df: pd.DataFrame, num_imputations: int = 5, **options: Any
) -> tuple[pd.DataFrame, PosteriorDraws]:
    """``num_imputations`` completed copies of ``df`` as a long frame (module docstring), and
    the inference report (ESS per row)."""
    if isinstance(num_imputations, bool) or not isinstance(num_imputations, (int, np.integer)):
        raise DataError(f"num_imputations must be a positive integer, got {num_imputations!r}")
    if num_imputations < 1:
        raise DataError(f"num_imputations must be a positive integer, got {num_imputations!r}")
    m = int(num_imputations)
    rows = from_frame(vae, df, what="the table to impute")
    missing = [c for c in df.columns if c not in vae.layout_.columns]
    if missing:  # from_frame has refused unknown columns; keep the fitted ones' order
        raise DataError(f"the table to impute has unknown column(s) {missing}")
    absent = [c for c in vae.layout_.columns if c not in df.columns]
    if absent:
        raise DataError(
            f"the table to impute lacks column(s) {absent}; add them (all NaN to impute them)"
        )
    drawn, report = draw(vae, rows, m, fill_missing=True, **options)
    # row-major draws -> imputation-major copies of df
    order = np.arange(len(df) * m).reshape(len(df), m).T.reshape(-1)
    drawn = drawn.iloc[order].reset_index(drop=True)
    base = pd.concat([df] * m, ignore_index=True)
    out = {}
    for column in df.columns:
        observed = base[column].notna().to_numpy()
        merged = drawn[column].astype(object).to_numpy(copy=True)
        merged[observed] = base[column].to_numpy(dtype=object)[observed]
        out[column] = _typed(pd.Series(merged), base[column], drawn[column])
    names = [IMPUTATION, df.index.name if df.index.name is not None else "row"]
    index = pd.MultiIndex.from_arrays(
        [np.repeat(np.arange(m), len(df)), np.tile(df.index.to_numpy(), m)], names=names
    )
    frame = pd.DataFrame(out)
    frame.index = index
    return frame, report


def _typed(merged: pd.Series, observed: pd.Series, drawn: pd.Series) -> pd.Series:
    """The merged cells in the narrowest of the two sources' dtypes that holds them all."""
    for dtype in (observed.dtype, drawn.dtype):
        try:
            out = merged.astype(dtype)
        except (TypeError, ValueError):
            continue
        if (out.isna() == merged.isna()).all():
            return out
    return merged.infer_objects()


def imputation_intervals(
    draws: pd.DataFrame, level: float = 0.9
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Central ``level`` intervals ``(low, high)`` per cell of the numeric columns of
    ``impute``'s long frame, each indexed like the imputed table (observed cells: low = high
    = the value)."""
    if not 0 < level < 1:
        raise DataError(f"level must be between 0 and 1, got {level!r}")
    numeric = draws.select_dtypes("number")
    grouped = numeric.groupby(level=1, sort=False)
    tail = (1 - level) / 2
    return grouped.quantile(tail), grouped.quantile(1 - tail)


def point_estimate(draws: pd.DataFrame) -> pd.DataFrame:
    """The single best guess per cell from ``impute``'s long frame: the mean of the draws for
    numeric columns, the most frequent level for the others (indexed like the imputed table)."""
    grouped = draws.groupby(level=1, sort=False)
    out = {}
    for column in draws.columns:
        if pd.api.types.is_numeric_dtype(draws[column]) and not pd.api.types.is_bool_dtype(
            draws[column]
        ):
            out[column] = grouped[column].mean()
        else:
            out[column] = grouped[column].agg(lambda s: s.value_counts(dropna=False).index[0])
    return pd.DataFrame(out)
