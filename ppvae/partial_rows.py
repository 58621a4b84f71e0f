r"""Rows drawn given some of their cells: ``TabularVAE.sample(given=...)`` and ``impute``.

A request names, per row, the cells it fixes (``{"sex": "Female", "age": 30}``, or a frame
whose non-missing cells are fixed) and optionally ranges of numeric columns
(``{"age": (30, 40)}``). The steps:

1. the fixed cells become a partial row: the other columns hidden
   (:func:`ppvae.input_masking.observe_columns`), missingness indicators included;
2. latent codes are drawn from :math:`p(z \mid x_S)` by importance resampling
   (:mod:`ppvae.posterior_resampling`); a range adds :math:`\log P(lo \le x \le hi \mid z)`
   to the weights, from the decoder's CDF of the column's slot;
3. the free cells are drawn from :math:`p(x \mid z)` (a ranged column from its distribution
   truncated to the range, by the inverse CDF), and the fixed cells are copied back exactly.
   With a likelihood whose continuous slots are correlated given z (``lowrank_normal``), the
   free continuous cells come from :math:`p(x_M \mid x_S, z)` instead, each ranged slot first
   from its conditional truncated to the range (in slot order, each given the fixed slots and
   the ranged ones before it); the weights of step 2 still use the range's probability under
   the slot's marginal given z. With chained slots (``chain_rank``, ``chain_continuous``)
   steps 2 and 3 are one: each particle completes the hidden slots in slot order and is
   weighted by the fixed ones (:mod:`ppvae.slot_completion`), so a hidden slot agrees with the
   fixed slots after it as well as before.

Nothing is rejection-sampled: the cost of a rare condition is bounded by the particle budget.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from pyro import poutine

from ppvae.chained_continuous import truncated_draw
from ppvae.data.errors import DataError
from ppvae.data.identifiers import Identifier
from ppvae.data.layout import TensorTable, mask_name
from ppvae.data.schema import NUMERIC_KINDS
from ppvae.data.support import EmpiricalSupport
from ppvae.data.transforms import CategoricalCodes, QuantileNormal
from ppvae.input_masking import observe_columns
from ppvae.likelihoods import slot_groups
from ppvae.posterior_resampling import PosteriorDraws, resample_posterior
from ppvae.slot_completion import SlotCompletion, chained_sites

RANGE_GRID = np.linspace(-5.0, 5.0, 10001)  # transformed values searched for a range's bounds


@dataclass
class PartialRows:
    """Partial rows ready for inference.

    ``table``: the slot tensors with free columns hidden (``n`` rows, on the model's
    device); ``given``: the fixed cells (fitted columns, NaN where free); ``observed``
    ``[n, n_columns]``: which cells are fixed (``layout.columns`` order); ``ranges``:
    ``{column: (lo, hi)}`` for every row; ``range_slots``: ``{x_cont slot: (y_lo, y_hi)}``,
    the same ranges on the model's scale."""

    table: TensorTable
    given: pd.DataFrame
    observed: np.ndarray
    ranges: dict[Any, tuple[float, float]] = field(default_factory=dict)
    range_slots: dict[int, tuple[float, float]] = field(default_factory=dict)


def _transforms(vae: Any) -> dict[Any, tuple[Any, Any]]:
    tr = vae.transformer_
    return {col.name: (col, t) for col, t in zip(tr.schema_.columns, tr.transforms_)}


def _column_values(vae: Any, column: Any, y: np.ndarray) -> np.ndarray:
    """The values of numeric ``column`` at transformed values ``y`` ``[k]`` of its one
    continuous slot (through the full inverse: offsets, rounding, dtype)."""
    layout = vae.layout_
    tensors = {
        group: torch.zeros(len(y), len(names), dtype=slot_groups.get(group).dtype)
        for group, names in layout.slots.items()
    }
    tensors["x_cont"][:, layout.cont_names.index(column)] = torch.as_tensor(y)
    out = vae.transformer_.inverse_transform(TensorTable(**tensors))[column]
    return out.to_numpy(dtype=float)


def _numeric_bounds(vae: Any, column: Any, t: Any) -> tuple[float, float] | None:
    """Smallest and largest value the column's transform can produce (None: unbounded)."""
    if not isinstance(t, QuantileNormal):
        return None
    lo, hi = _column_values(vae, column, np.array([-10.0, 10.0]))
    return float(lo), float(hi)


def _check_value(vae: Any, column: Any, value: Any, col: Any, t: Any) -> Any:
    """One fixed cell of a ``given`` mapping, checked against the fitted column."""
    if isinstance(t, Identifier):
        raise DataError(
            f"given[{column!r}]: {column!r} is an identifier column, generated and not "
            "modelled, so rows cannot be conditioned on it; drop it from `given`"
        )
    if isinstance(t, CategoricalCodes):
        if isinstance(value, (tuple, list)):
            raise DataError(
                f"given[{column!r}] = {value!r}: {column!r} is modelled as categorical (few "
                "distinct values), so it takes one level, not a range; pass one of its levels"
            )
        if not t.known(np.array([value], dtype=object))[0]:
            levels = [str(v) for v in t.levels[:10]]
            more = " ..." if len(t.levels) > 10 else ""
            raise DataError(
                f"given[{column!r}] = {value!r} is not a level seen when fitting; pick one "
                f"of {levels}{more}"
            )
        return value
    if col.kind == "datetime":
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(
            f"given[{column!r}] must be a number (column {column!r} is numeric), got {value!r}; "
            f"a range is a pair: given={{{column!r}: (low, high)}}"
        ) from None
    if not np.isfinite(number):
        raise DataError(f"given[{column!r}] must be a finite number, got {value!r}")
    if col.kind == "integer" and number != round(number):
        raise DataError(
            f"given[{column!r}] = {value!r}, but {column!r} holds whole numbers; pass one, or a "
            f"range: given={{{column!r}: ({int(np.floor(number))}, {int(np.ceil(number))})}}"
        )
    bounds = _numeric_bounds(vae, column, t)
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        raise DataError(
            f"given[{column!r}] = {value!r} is outside the range seen when fitting "
            f"[{bounds[0]:g}, {bounds[1]:g}]; the model does not extrapolate: pass a value "
            "inside it (or a range that overlaps it)"
        )
    return number


def _range_slot(vae: Any, column: Any, bounds: Any, col: Any, t: Any) -> tuple[float, float]:
    """A numeric range's bounds on the model's (transformed) scale."""
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise DataError(
            f"given[{column!r}] = {bounds!r}: a range is a pair of numbers (low, high)"
        ) from None
    # one monotone continuous slot: the quantile transform, or its finite-support variant
    monotone = isinstance(t, (QuantileNormal, EmpiricalSupport))
    if not (monotone and col.kind in ("continuous", "integer")):
        raise DataError(
            f"given[{column!r}] is a range, which needs a numeric column with "
            "continuous='quantile' (the default); pass an exact value instead"
        )
    if not lo <= hi:
        raise DataError(
            f"given[{column!r}] = {bounds!r}: the range's low end is above its high end"
        )
    groups = [g for g in vae.model_.slot_groups if g.name == "x_cont"]
    try:
        device = vae.model_device
        fn = groups[0].distribution(torch.zeros(1, groups[0].num_params, device=device), None)
        _slot_distribution(fn, 0).cdf(torch.zeros(1, device=device))
    except (NotImplementedError, TypeError, ValueError, AttributeError, IndexError):
        raise DataError(
            f"given[{column!r}] is a range, which needs a likelihood with a CDF ('normal' or "
            "'laplace'); refit with one, or pass an exact value"
        ) from None
    x = _column_values(vae, column, RANGE_GRID)
    inside = np.flatnonzero((x >= lo) & (x <= hi))
    if len(inside) == 0:
        seen = _numeric_bounds(vae, column, t)
        raise DataError(
            f"given[{column!r}] = ({lo:g}, {hi:g}) holds no value the model produces (seen when "
            f"fitting: [{seen[0]:g}, {seen[1]:g}]); pass a range that overlaps it"
        )
    half = (RANGE_GRID[1] - RANGE_GRID[0]) / 2
    y_lo = -np.inf if inside[0] == 0 else RANGE_GRID[inside[0]] - half
    y_hi = np.inf if inside[-1] == len(RANGE_GRID) - 1 else RANGE_GRID[inside[-1]] + half
    return float(y_lo), float(y_hi)


def _placeholders(vae: Any, n: int) -> pd.DataFrame:
    """``n`` rows of valid values (each column's first level / median): fillers for free cells
    before the transform, which then hides them."""
    layout = vae.layout_
    tensors = {}
    for group, names in layout.slots.items():
        dtype = slot_groups.get(group).dtype
        tensors[group] = torch.zeros(n, len(names), dtype=dtype)
    return vae.transformer_.inverse_transform(TensorTable(**tensors))


def _fill(placeholder: pd.Series, given: pd.Series, fixed: np.ndarray) -> pd.Series:
    values = placeholder.astype(object).to_numpy(copy=True)
    values[fixed] = given.to_numpy(dtype=object)[fixed]
    out = pd.Series(values, index=placeholder.index)
    try:
        return out.astype(placeholder.dtype)
    except (TypeError, ValueError):
        return out


def _build(vae: Any, given: pd.DataFrame, observed: np.ndarray) -> TensorTable:
    """Slot tensors of the fixed cells, free columns hidden."""
    layout = vae.layout_
    filled = _placeholders(vae, len(given))
    for j, column in enumerate(layout.columns):
        if observed[:, j].any():
            filled[column] = _fill(filled[column], given[column], observed[:, j])
    table = vae.transformer_.transform(filled)
    mask = torch.as_tensor(observed)
    return observe_columns(layout, table, mask).to(vae.model_device)


def _check_columns(vae: Any, columns: Any, what: str) -> None:
    unknown = [c for c in columns if c not in vae.layout_.columns]
    if unknown:
        raise DataError(
            f"{what} names column(s) {unknown} the model was not fitted on; its columns are "
            f"{list(vae.layout_.columns)}"
        )


def from_mapping(vae: Any, given: Mapping[Any, Any]) -> PartialRows:
    """One partial row from ``{column: value or (low, high)}``; every check names the
    column."""
    if not isinstance(given, Mapping):
        raise DataError(
            f"given must be a mapping {{column: value}} or a DataFrame, got {type(given).__name__}"
        )
    _check_columns(vae, list(given), "given")
    info = _transforms(vae)
    layout = vae.layout_
    row: dict[Any, Any] = {c: np.nan for c in layout.columns}
    ranges, range_slots = {}, {}
    observed = np.zeros((1, len(layout.columns)), dtype=bool)
    for column, value in given.items():
        col, t = info[column]
        j = layout.columns.index(column)
        if isinstance(value, (tuple, list)) and col.kind in NUMERIC_KINDS:
            y = _range_slot(vae, column, value, col, t)
            ranges[column] = (float(value[0]), float(value[1]))
            range_slots[layout.cont_names.index(column)] = y
            continue
        if value is None or (isinstance(value, Real) and np.isnan(value)):
            raise DataError(
                f"given[{column!r}] is missing (None/NaN): leave the column out instead"
            )
        row[column] = _check_value(vae, column, value, col, t)
        observed[0, j] = True
    frame = pd.DataFrame([row], columns=list(layout.columns))
    table = _build(vae, frame, observed)
    if ranges:  # a value in a range is not missing: its missingness indicator is observed
        for column in ranges:
            if column in layout.miss_names:
                i = layout.miss_names.index(column)
                table[mask_name("x_miss")][:, i] = True
                table["x_miss"][:, i] = 0.0
    return PartialRows(table, frame, observed, ranges, range_slots)


def from_frame(
    vae: Any, frame: pd.DataFrame, what: str = "given", unseen: str = "error"
) -> PartialRows:
    """Partial rows from a frame: its non-missing cells are fixed; columns it lacks are free.
    A categorical cell at a level not seen when fitting is refused (``unseen="error"``) or,
    with ``unseen="free"``, left free with a warning (the model cannot condition on it)."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what} must be a DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise DataError(f"{what} has no rows")
    if frame.columns.duplicated().any():
        dup = list(frame.columns[frame.columns.duplicated()])
        raise DataError(f"{what} has duplicated column(s) {dup}; keep one of each")
    _check_columns(vae, list(frame.columns), what)
    layout = vae.layout_
    given = pd.DataFrame(index=range(len(frame)), columns=list(layout.columns), dtype=object)
    observed = np.zeros((len(frame), len(layout.columns)), dtype=bool)
    info = _transforms(vae)
    for j, column in enumerate(layout.columns):
        if column not in frame.columns or isinstance(info[column][1], Identifier):
            continue
        s = frame[column].reset_index(drop=True)
        observed[:, j] = s.notna().to_numpy()
        given[column] = s.astype(object)
    if unseen == "free":
        _free_unseen_levels(vae, given, observed, what)
    return PartialRows(_build(vae, given, observed), given, observed)


def _free_unseen_levels(vae: Any, given: pd.DataFrame, observed: np.ndarray, what: str) -> None:
    """Un-fix (in ``observed``, in place) the given cells at levels the model never saw, and
    say which."""
    unseen = vae.transformer_.unseen_cells(given).to_numpy() & observed
    if not unseen.any():
        return
    observed &= ~unseen
    parts = []
    for j in np.flatnonzero(unseen.any(0)):
        column = vae.layout_.columns[j]
        values = pd.unique(given[column].to_numpy(dtype=object)[unseen[:, j]])
        parts.append(f"{column!r} {[v for v in values[:5]]} in {int(unseen[:, j].sum())} row(s)")
    warnings.warn(
        f"{what}: level(s) not seen when fitting: {'; '.join(parts)}. Those cells are kept as "
        "they are but not used to infer the other cells (the model gives them no probability); "
        "refit on data that has them to use them",
        UserWarning,
        stacklevel=3,
    )


def _slot_distribution(fn: Any, slot: int) -> Any:
    """The distribution ``[N]`` of one continuous slot from the ``x_cont`` site's ``fn``
    (a location-scale family with a CDF: Normal or Laplace, or a joint one's ``marginal``)."""
    if hasattr(fn, "marginal"):
        return fn.marginal(slot)
    base = fn
    while hasattr(base, "base_dist"):
        base = base.base_dist
    return type(base)(base.loc[..., slot], base.scale[..., slot])


def _truncated(fn: Any, slot: int, y_lo: float, y_hi: float) -> torch.Tensor:
    """Draws of one continuous slot from its distribution truncated to [y_lo, y_hi]."""
    return truncated_draw(_slot_distribution(fn, slot), y_lo, y_hi)


def _range_log_prob(vae: Any, rows: PartialRows):
    """``log P(range conditions | z)`` per line, for the importance weights."""
    module = vae.model_

    def extra(z: torch.Tensor, _rows: torch.Tensor) -> torch.Tensor:
        model = poutine.condition(module.model, data={module.latent_site: z})
        fn = poutine.trace(model).get_trace(None, num_rows=len(z)).nodes["x_cont"]["fn"]
        total = torch.zeros(len(z), device=z.device)
        for slot, (y_lo, y_hi) in rows.range_slots.items():
            one = _slot_distribution(fn, slot)
            loc = one.loc
            p = one.cdf(torch.full_like(loc, y_hi)) - one.cdf(torch.full_like(loc, y_lo))
            total = total + torch.log(p.clamp_min(1e-30))
        return total

    return extra


def decode(
    vae: Any, latents: Mapping[str, torch.Tensor], rows: PartialRows, fill_missing: bool
) -> pd.DataFrame:
    """Rows drawn from p(x | latents) (``[N, ...]`` each; a completed chained site among them
    is taken as it is), ranged slots truncated; with ``fill_missing`` no cell is drawn
    missing (imputation fills values)."""
    module = vae.model_
    n = len(next(iter(latents.values())))
    nodes = (
        poutine.trace(poutine.condition(module.model, data=dict(latents)))
        .get_trace(None, num_rows=n)
        .nodes
    )
    tensors = {}
    for name, slots in vae.layout_.slots.items():
        dtype = slot_groups.get(name).dtype
        if name in nodes:
            value = nodes[name]["value"].reshape(n, len(slots)).to(dtype).clone()
        else:
            value = torch.zeros(n, len(slots), dtype=dtype, device=vae.model_device)
        tensors[name] = value
    fn = nodes["x_cont"]["fn"] if "x_cont" in nodes and "x_cont" not in latents else None
    if hasattr(fn, "condition"):  # correlated slots: free ones drawn given the fixed ones
        tensors["x_cont"] = _conditional_draw(fn, rows, n)
    elif fn is not None:
        for slot, (y_lo, y_hi) in rows.range_slots.items():
            tensors["x_cont"][:, slot] = _truncated(fn, slot, y_lo, y_hi)
    if fill_missing:
        tensors["x_miss"] = torch.zeros_like(tensors["x_miss"])
    for column in rows.ranges:
        if column in vae.layout_.miss_names:
            tensors["x_miss"][:, vae.layout_.miss_names.index(column)] = 0.0
    return vae.transformer_.inverse_transform(TensorTable(**tensors).to("cpu"))


def _conditional_draw(fn: Any, rows: PartialRows, n: int) -> torch.Tensor:
    """Continuous slots ``[n, D]`` for ``n`` draws (row ``i``'s consecutive) from a joint
    family with ``condition`` (:mod:`ppvae.correlated_residuals`): each ranged slot in turn
    from its conditional given the fixed slots and the ranged slots drawn before it,
    truncated to its range; then the free slots from ``p(x_M | x_S, z)``; fixed slots kept."""
    table = rows.table
    index = torch.arange(len(table), device=fn.loc.device).repeat_interleave(n // len(table))
    value = table["x_cont"][index].to(fn.loc.dtype).clone()
    fixed = table[mask_name("x_cont")][index].clone()
    for slot, (y_lo, y_hi) in rows.range_slots.items():
        value[:, slot] = _truncated(fn.condition(value, fixed), slot, y_lo, y_hi)
        fixed[:, slot] = True
    return torch.where(fixed, value, fn.condition(value, fixed).sample())


def draw(
    vae: Any,
    rows: PartialRows,
    num_draws: int,
    fill_missing: bool = False,
    **options: Any,
) -> tuple[pd.DataFrame, PosteriorDraws]:
    """``num_draws`` completed rows per partial row (row ``i``'s draws consecutive) and the
    inference report; fixed cells equal the given ones, ranged cells lie in their range.
    ``options`` go to :func:`ppvae.posterior_resampling.resample_posterior`."""
    module = vae.model_
    chained = chained_sites(poutine.trace(module.model).get_trace(None, num_rows=1))
    complete_slots = SlotCompletion(rows.range_slots) if chained else None
    ranged = rows.range_slots and "x_cont" not in chained  # else the completion's weight
    extra = _range_log_prob(vae, rows) if ranged else None
    post = resample_posterior(
        module, rows.table, num_draws, extra=extra, complete=complete_slots, **options
    )
    return complete(vae, rows, post.latents, fill_missing), post


def complete(
    vae: Any, rows: PartialRows, latents: Mapping[str, torch.Tensor], fill_missing: bool
) -> pd.DataFrame:
    """One completed row per latent draw ``{site: [n, k, ...]}`` (k per partial row, row
    ``i``'s consecutive): free cells from p(x | z), fixed cells exactly as given, the value
    rules applied, ranged cells in their range."""
    n, k = next(iter(latents.values())).shape[:2]
    flat = {name: v.reshape(-1, *v.shape[2:]) for name, v in latents.items()}
    out = decode(vae, flat, rows, fill_missing)
    index = np.repeat(np.arange(n), k)
    fixed_cells = pd.DataFrame(False, index=out.index, columns=out.columns)
    for j, column in enumerate(vae.layout_.columns):
        fixed = rows.observed[index, j]
        if fixed.any():
            given = rows.given[column].to_numpy(dtype=object)[index]
            out[column] = _overwrite(out[column], given, fixed)
            fixed_cells[column] = fixed
    # the value rules learned at fit (ppvae.data.dependencies) again, now that the given
    # cells are in: the drawn cells follow the given ones (education-num from education)
    out = vae.transformer_.rules_.apply(out, fixed=fixed_cells)
    for column, (lo, hi) in rows.ranges.items():
        out[column] = out[column].clip(lo, hi)
    return out


def _overwrite(values: pd.Series, given: np.ndarray, fixed: np.ndarray) -> pd.Series:
    """``values`` with the ``fixed`` cells replaced by ``given`` (the caller's values, exactly;
    the dtype widened only when needed)."""
    merged = values.astype(object).to_numpy(copy=True)
    merged[fixed] = given[fixed]
    out = pd.Series(merged, index=values.index, name=values.name)
    try:
        converted = out.astype(values.dtype)
        same = (converted.astype(object).to_numpy()[fixed] == given[fixed]).all()
        return converted if same else out.infer_objects()
    except (TypeError, ValueError):
        return out.infer_objects()


def given_from_text(vae: Any, items: list[str]) -> dict[Any, Any]:
    """``["sex=Female", "age=30", "age=30:40"]`` (the CLI's ``--given``) as a ``given``
    mapping: numeric columns read as numbers, ``low:high`` as a range; other columns match a
    level by its text."""
    info = _transforms(vae)
    out: dict[Any, Any] = {}
    for item in items:
        column, sep, text = item.partition("=")
        if not sep or not column:
            raise DataError(f"--given {item!r}: write COLUMN=VALUE (or COLUMN=LOW:HIGH)")
        _check_columns(vae, [column], f"--given {item!r}")
        if column in out:
            raise DataError(f"--given names {column!r} twice; give each column once")
        col, t = info[column]
        if isinstance(t, CategoricalCodes):
            levels = {str(level): level for level in t.levels}
            out[column] = levels.get(text, text)
        elif col.kind in ("continuous", "integer") and ":" in text:
            out[column] = tuple(text.split(":", 1))
        else:
            out[column] = text
    return out
