r"""Multiple imputation of a table's missing cells, and summaries of the imputations.

``impute(vae, df, m)`` returns one long frame: ``m`` completed copies of ``df`` stacked, with
a two-level index ``(imputation, <df's index>)``; observed cells are ``df``'s own values in
every copy, and each missing cell holds a draw from :math:`p(x_{miss} \mid x_{obs})`
(:mod:`ppvae.partial_rows`). ``draws.xs(0, level="imputation")`` is one completed table.

- :func:`imputation_intervals`: per-cell prediction intervals of numeric columns;
- :func:`point_estimate`: the single best guess per cell, from the posterior predictive
  distribution :math:`p(x_{miss} \mid x_{obs}) = \mathbb E_{p(z \mid x_{obs})}[p(x \mid z)]`:
  its mean for a numeric column, and for a categorical one the level of highest predictive
  probability, the decoder's probabilities averaged over the posterior draws of z. The
  imputations themselves stay draws (never the argmax); the best guess is a summary, computed
  by ``impute`` from the posterior's particles and kept in ``out.attrs["point_estimate"]``.

The best guess is a Monte Carlo average, and its noise adds to its error: with the m = 20
draws behind the imputations alone it would add about 1/20 of the predictive variance to
the squared error. ``impute`` therefore resamples ``SUMMARY_DRAWS`` more latent draws from
the same importance weights (no extra model evaluations; see
:mod:`ppvae.posterior_resampling`) and averages ``SUMMARY_COMPLETIONS`` completed rows per
cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from pyro import poutine

from ppvae.data.errors import DataError
from ppvae.data.transforms import CategoricalCodes
from ppvae.likelihoods import CategoricalColumns
from ppvae.partial_rows import PartialRows, complete, draw, from_frame
from ppvae.posterior_resampling import PosteriorDraws

IMPUTATION = "imputation"
#: latent draws resampled for the best guess on top of the imputations' own
SUMMARY_DRAWS = 200
#: completed rows (draws of z, then of x from p(x | z)) averaged into the best guess of a cell
SUMMARY_COMPLETIONS = 200
#: partial rows summarised at a time (bounds the memory of the predictive mean)
CHUNK_ROWS = 500


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
    rows = from_frame(vae, df, what="the table to impute", unseen="free")
    missing = [c for c in df.columns if c not in vae.layout_.columns]
    if missing:  # from_frame has refused unknown columns; keep the fitted ones' order
        raise DataError(f"the table to impute has unknown column(s) {missing}")
    absent = [c for c in vae.layout_.columns if c not in df.columns]
    if absent:
        raise DataError(
            f"the table to impute lacks column(s) {absent}; add them (all NaN to impute them)"
        )
    options.setdefault("summary_draws", SUMMARY_DRAWS)
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
    best = posterior_predictive_estimate(vae, rows, report)
    for column in df.columns:  # observed cells as observed (an unseen level is not fixed)
        seen = df[column].notna().to_numpy()
        values = best[column].astype(object).to_numpy(copy=True)
        values[seen] = df[column].to_numpy(dtype=object)[seen]
        best[column] = values
    frame.attrs["point_estimate"] = {c: best[c].tolist() for c in df.columns}
    return frame, report


def posterior_predictive_estimate(
    vae: Any, rows: PartialRows, posterior: PosteriorDraws, decoder_draws: int | None = None
) -> pd.DataFrame:
    """The best guess per cell of the partial ``rows`` (``n`` rows, the fitted columns) from
    the posterior draws of z ``[n, k, ...]`` (``posterior.summary`` when present, else its
    ``latents``): the predictive mean of a numeric column (the mean of ``decoder_draws``
    completed rows per draw of z, value rules and rounding included; by default enough for
    ``SUMMARY_COMPLETIONS`` per row), the argmax of the averaged decoder probabilities of a
    categorical one (where the model's ``x_cat`` site is
    :class:`~ppvae.likelihoods.CategoricalColumns`; otherwise the most frequent level of
    those completed rows). Fixed cells are the given values."""
    n = len(rows.given)
    draws = posterior.summary if posterior.summary is not None else posterior.latents
    k = next(iter(draws.values())).shape[1]
    if decoder_draws is None:
        decoder_draws = -(-SUMMARY_COMPLETIONS // k)
    parts = []
    for start in range(0, n, CHUNK_ROWS):
        sub = _subset(rows, slice(start, start + CHUNK_ROWS))
        latents = {name: v[start : start + CHUNK_ROWS] for name, v in draws.items()}
        parts.append(_estimate(vae, sub, latents, int(decoder_draws)))
    out = pd.concat(parts, ignore_index=True)
    for j, column in enumerate(vae.layout_.columns):
        fixed = rows.observed[:, j]
        if fixed.any():
            values = out[column].astype(object).to_numpy(copy=True)
            values[fixed] = rows.given[column].to_numpy(dtype=object)[fixed]
            out[column] = pd.Series(values).infer_objects()
    return out


def _subset(rows: PartialRows, index: slice) -> PartialRows:
    given = rows.given.iloc[index].reset_index(drop=True)
    return PartialRows(
        rows.table[index], given, rows.observed[index], rows.ranges, rows.range_slots
    )


def _estimate(
    vae: Any, rows: PartialRows, latents: dict[str, torch.Tensor], decoder_draws: int
) -> pd.DataFrame:
    n, m = next(iter(latents.values())).shape[:2]
    repeated = {  # each posterior draw of z, decoder_draws times: [n, m * L, ...]
        k: v.repeat_interleave(decoder_draws, dim=1) for k, v in latents.items()
    }
    drawn = complete(vae, rows, repeated, fill_missing=True)
    row = np.repeat(np.arange(n), m * decoder_draws)
    levels = _argmax_levels(vae, latents, n, m)
    out = {}
    for column in vae.layout_.columns:
        s = drawn[column]
        if column in levels:
            out[column] = levels[column]
        elif _is_numeric(s):
            out[column] = s.groupby(row).mean().to_numpy()
        else:
            out[column] = s.groupby(row).agg(lambda v: v.value_counts().index[0]).to_numpy()
    return pd.DataFrame(out)


def _argmax_levels(
    vae: Any, latents: dict[str, torch.Tensor], n: int, m: int
) -> dict[Any, np.ndarray]:
    """``{column: [n] levels}``: per row, the level of the highest decoder probability
    averaged over the ``m`` draws of z, for every non-numeric column with a categorical slot
    (empty when the model's ``x_cat`` site is not :class:`CategoricalColumns`)."""
    module = vae.model_
    flat = {k: v.reshape(n * m, *v.shape[2:]) for k, v in latents.items()}
    model = poutine.condition(module.model, data=flat)
    nodes = poutine.trace(model).get_trace(None, num_rows=n * m).nodes
    fn = nodes["x_cat"]["fn"] if "x_cat" in nodes else None
    while fn is not None and not isinstance(fn, CategoricalColumns) and hasattr(fn, "base_dist"):
        fn = fn.base_dist
    if not isinstance(fn, CategoricalColumns):
        return {}
    offsets = np.concatenate([[0], np.cumsum(fn.groups.cardinalities)])
    out, slot = {}, 0
    transformer = vae.transformer_
    for col, t in zip(transformer.schema_.columns, transformer.transforms_):
        width = len(t.cat_cardinalities)
        if isinstance(t, CategoricalCodes) and col.kind not in ("continuous", "integer"):
            logits = fn.logits[:, offsets[slot] : offsets[slot + 1]].reshape(n, m, -1)
            codes = torch.softmax(logits, -1).mean(1).argmax(-1).cpu().numpy()
            values = t.inverse(np.zeros((n, 0)), codes[:, None])
            out[col.name] = np.asarray(values, dtype=object)
        slot += width
    return out


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


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
    """Prediction intervals ``(low, high)`` of probability ``level`` per cell of the numeric
    columns of ``impute``'s long frame, each indexed like the imputed table (observed cells:
    low = high = the value).

    From m draws the bounds are the quantiles at the plotting positions k / (m + 1) (numpy's
    ``method="weibull"``): a new value exchangeable with the m draws falls below the k-th
    smallest with probability k / (m + 1), so the interval covers the true value with
    probability ``level`` when the draws are calibrated. (Quantiles at (k - 1) / (m - 1),
    numpy's and pandas' default, cover only about 81 % at level 0.9 with m = 20.) With too few
    draws for the level (m < 2 / (1 - level) - 1) the bounds are the smallest and largest draw,
    which cover (m - 1) / (m + 1)."""
    if not 0 < level < 1:
        raise DataError(f"level must be between 0 and 1, got {level!r}")
    numeric = draws.select_dtypes("number")
    m = draws.index.get_level_values(0).nunique()
    index = draws.xs(draws.index[0][0], level=0).index
    tail = (1 - level) / 2
    low, high = {}, {}
    for column in numeric.columns:
        values = numeric[column].to_numpy(dtype=float).reshape(m, -1)  # [m, rows]
        lo, hi = np.quantile(values, [tail, 1 - tail], axis=0, method="weibull")
        low[column], high[column] = lo, hi
    return pd.DataFrame(low, index=index), pd.DataFrame(high, index=index)


def point_estimate(draws: pd.DataFrame) -> pd.DataFrame:
    """The single best guess per cell of ``impute``'s long frame, indexed like the imputed
    table: the posterior predictive mean of a numeric cell, the level of highest posterior
    predictive probability of a categorical one, the value itself for an observed cell
    (module docstring); computed by ``impute`` from its posterior draws of z."""
    best = draws.attrs.get("point_estimate")
    if best is None:
        raise DataError(
            "point_estimate needs the frame returned by vae.impute (its attrs hold the "
            "posterior predictive summary); pass that frame unchanged"
        )
    index = draws.xs(draws.index[0][0], level=0).index
    out = pd.DataFrame(best, index=index)
    for column in out.columns:
        if not _is_numeric(draws[column]):
            try:
                out[column] = out[column].astype(draws[column].dtype)
            except (TypeError, ValueError):
                pass
    return out
