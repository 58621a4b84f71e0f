"""``TableTransformer``: a DataFrame <-> :class:`~ppvae.data.layout.TensorTable`, reversibly.

``fit`` checks the table (clear :class:`~ppvae.data.errors.DataError` for what cannot be
modelled), infers the schema and fits one transform per column; ``transform`` produces the
slot tensors; ``inverse_transform`` turns slot values (e.g. samples) back into a DataFrame
with the fitted table's columns, order and dtypes: integers are rounded and kept in the
observed range, categories come only from the observed levels, and a numeric column is NaN
where its missingness slot is 1.

What is accepted, converted and refused is listed in ``docs/input.md``.
"""

from __future__ import annotations

import datetime
import decimal
import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ppvae.data.dependencies import ValueRules
from ppvae.data.errors import DataError
from ppvae.data.identifiers import Identifier, identifier_message, identifier_reason
from ppvae.data.layout import Layout, TensorTable
from ppvae.data.point_masses import (
    FEW_VALUES_SPIKE_SHARE,
    SPIKE_SHARE,
    PointMasses,
    spikes_of,
)
from ppvae.data.schema import NUMERIC_KINDS, Column, Schema, infer_schema
from ppvae.data.support import EmpiricalSupport, has_small_support
from ppvae.data.ties import find_ties, tie_levels, tie_order
from ppvae.data.transforms import CategoricalCodes, ColumnTransform, ModeSpecific, QuantileNormal
from ppvae.numeric_grid import grid_decimals

CONTINUOUS_ENCODINGS = ("quantile", "mode_specific")
ID_LIKE_LEVELS = 1000
FEW_ROWS = 10
#: Kinds whose values the value rules (``ppvae.data.dependencies``) relate.
RULE_KINDS = ("categorical", "boolean", "integer", "continuous")
NAME_TYPES = (str, int, float, np.integer, np.floating)
CONTAINERS = (list, tuple, dict, set, frozenset, np.ndarray)
DATETIMES = (datetime.datetime, datetime.date, pd.Timestamp)


def warn_few_rows(df: pd.DataFrame) -> None:
    """Warn that a model of fewer than ``FEW_ROWS`` rows can only copy them."""
    if isinstance(df, pd.DataFrame) and 0 < len(df) < FEW_ROWS:
        warnings.warn(
            f"the table has only {len(df)} row(s): a model of so few rows reproduces them, so "
            f"synthetic rows will be (near) copies of the real ones; fit on at least {FEW_ROWS} "
            "rows, and never share samples of a tiny table as anonymous",
            UserWarning,
            stacklevel=3,
        )


def _check_frame(df: Any) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"expected a pandas DataFrame, got {type(df).__name__}; wrap your data in pd.DataFrame(...)"
        )
    if isinstance(df.columns, pd.MultiIndex):
        raise DataError(
            "the table has multi-level (MultiIndex) column names; flatten them first: "
            "df.columns = ['_'.join(map(str, c)) for c in df.columns]"
        )
    odd = [c for c in df.columns if not isinstance(c, NAME_TYPES)]
    if odd:
        raise DataError(
            f"column name(s) {odd[:5]} are not strings or numbers; rename them: "
            "df.columns = [str(c) for c in df.columns]"
        )
    if df.shape[1] == 0:
        raise DataError("the table has no columns")
    if len(df) == 0:
        raise DataError("the table has no rows")
    dup = df.columns[df.columns.duplicated()].unique().tolist()
    if dup:
        raise DataError(
            f"duplicate column name(s) {dup}: rename them so each column has a unique name"
        )


class TableTransformer:
    """Fit per-column transforms on a table and map it to slot tensors and back.

    Parameters
    ----------
    continuous: ``"quantile"`` (default) or ``"mode_specific"``, for numeric columns.
    kinds: override inferred kinds, ``{"column": "categorical"}``.
    missing_values: extra values read as missing (e.g. ``["?"]``).
    max_modes: components of the mode-specific mixture.
    seed: seeds subsampling and tie-spreading.
    """

    def __init__(
        self,
        continuous: str = "quantile",
        kinds: Mapping[Any, str] | None = None,
        missing_values: Sequence[Any] = (),
        max_modes: int = 10,
        seed: int = 0,
    ):
        if continuous not in CONTINUOUS_ENCODINGS:
            raise ValueError(
                f"continuous must be one of {CONTINUOUS_ENCODINGS}, got {continuous!r}"
            )
        self.continuous = continuous
        self.kinds = dict(kinds or {})
        self.missing_values = list(missing_values or [])
        self.max_modes = max_modes
        self.seed = seed

    # -- preparation -------------------------------------------------------------------
    def prepare(self, df: pd.DataFrame, warn: bool = False) -> pd.DataFrame:
        """Cells as the transforms take them: declared missing markers -> NaN (text columns
        only, never numbers); durations -> nanoseconds, periods -> timestamps, ``Decimal``
        -> float, ``datetime`` objects -> datetime64; containers, bytes and complex numbers
        are refused (see :func:`_normalise`)."""
        out = {}
        for name in df.columns:
            s = _normalise(name, df[name], warn)
            if self.missing_values and (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
                s = s.mask(s.isin(self.missing_values))
                head = s.dropna().iloc[:100]  # text fails here, without parsing every cell
                if len(head) and s.dtype == object and _all_numbers(head):
                    numeric = pd.to_numeric(s, errors="coerce")
                    if numeric.notna().sum() == s.notna().sum():  # '?' made a numeric column object
                        s = numeric
            out[name] = s
        return pd.DataFrame(out, index=df.index)

    def _values(self, col: Column, s: pd.Series) -> np.ndarray:
        """A column's values as the transform takes them."""
        if col.kind == "datetime":
            return _nanoseconds(col, s)
        if col.offset is not None:
            return _relative(s, col.offset)
        if col.kind in NUMERIC_KINDS:
            try:
                return pd.to_numeric(s).to_numpy(dtype=float, na_value=np.nan)
            except (ValueError, TypeError):
                raise DataError(
                    f"column {col.name!r} is declared {col.kind} but holds non-numeric values; "
                    "declare it categorical (kinds={...: 'categorical'}) or clean it"
                ) from None
        if col.mixed_types:
            return s.map(lambda v: v if pd.isna(v) else str(v)).to_numpy(dtype=object)
        return s.to_numpy(dtype=object)

    # -- fitting -----------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> TableTransformer:
        _check_frame(df)
        data = self.prepare(df, warn=True)
        for name in data.columns:
            s = data[name]
            if s.isna().all():
                raise DataError(
                    f"column {name!r} is entirely missing: drop it (df.drop(columns=[{name!r}]))"
                )
            if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
                if np.isinf(s.to_numpy(dtype=float, na_value=np.nan)).any():
                    raise DataError(
                        f"column {name!r} contains inf/-inf; replace them with NaN (missing) or finite values: "
                        f"df[{name!r}] = df[{name!r}].replace([np.inf, -np.inf], np.nan)"
                    )
        schema = infer_schema(data, self.kinds)
        for col in schema.columns:
            original = df[col.name].dtype
            if isinstance(original, pd.PeriodDtype) or pd.api.types.is_timedelta64_dtype(original):
                col.dtype = str(original)  # modelled as timestamps / nanoseconds, restored
            if col.kind == "integer" and _exact_integers(data[col.name].dtype):
                col.offset = int(data[col.name].min())
        rng = np.random.default_rng(self.seed)
        transforms: list[ColumnTransform] = []
        for col in schema.columns:
            values = self._values(col, data[col.name])
            if col.kind == "identifier":
                transforms.append(self._identifier(col, data[col.name], values, rng))
                continue
            if col.kind in NUMERIC_KINDS:
                observed = values[~np.isnan(values)]
                if col.kind == "continuous":
                    col.decimals = grid_decimals(pd.Series(observed))
                if self.continuous == "quantile" and col.kind != "datetime":
                    few = has_small_support(observed)
                    share = FEW_VALUES_SPIKE_SHARE if few else SPIKE_SHARE
                    if len(spikes_of(observed, share)):
                        t = PointMasses(integer=col.kind == "integer", share=share)
                    elif few:
                        t = EmpiricalSupport()
                    else:
                        t = QuantileNormal(dequantize=col.kind == "integer")
                elif self.continuous == "quantile" or col.kind == "datetime":
                    t = QuantileNormal(dequantize=col.kind == "integer")
                else:
                    t = ModeSpecific(self.max_modes)
                transforms.append(t.fit(observed, rng))
            else:
                t = CategoricalCodes().fit(values)
                n_levels = len(t.levels)
                if n_levels > ID_LIKE_LEVELS and n_levels > 0.5 * len(values):
                    warnings.warn(
                        f"column {col.name!r} has {n_levels} distinct values in {len(values)} rows and looks "
                        f"like an identifier; it cannot be learned and makes the model large. Drop it "
                        f"(df.drop(columns=[{col.name!r}])) or declare its kind (kinds={{{col.name!r}: ...}})",
                        UserWarning,
                        stacklevel=2,
                    )
                transforms.append(t)
        self.ties_ = self._find_ties(schema, transforms, data, rng)
        for col, t in zip(schema.columns, transforms):
            try:
                json.dumps([col.to_dict(), t.to_dict()])
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"column {col.name!r} holds values ppvae cannot store in a model ({exc}); "
                    f"convert them to text or numbers, e.g. df[{col.name!r}] = "
                    f"df[{col.name!r}].astype(str)"
                ) from None
        self.schema_ = schema
        self.transforms_ = transforms
        self.layout_ = self._layout()
        ruled = [c.name for c in schema.columns if c.kind in RULE_KINDS and not c.mixed_types]
        self.rules_ = ValueRules().fit(data, ruled)
        return self

    def _find_ties(
        self,
        schema: Schema,
        transforms: list[ColumnTransform],
        data: pd.DataFrame,
        rng: np.random.Generator,
    ) -> list[tuple[Any, Any]]:
        """Find the ties between numeric columns (``ppvae.data.ties``) and give each target a
        point-mass transform with the tie level (in ``transforms``, in place)."""
        if self.continuous != "quantile":
            return []
        numeric = {
            col.name: (col, t)
            for col, t in zip(schema.columns, transforms)
            if col.kind in ("integer", "continuous") and not isinstance(t, Identifier)
        }
        columns = {name: self._absolute(col, data[name]) for name, (col, _) in numeric.items()}
        spikes = {
            name: t.spikes + float(col.offset or 0)
            for name, (col, t) in numeric.items()
            if isinstance(t, PointMasses)
        }
        ties = []
        for target, source in find_ties(columns, spikes, rng):
            col, t = numeric[target]
            if isinstance(t, EmpiricalSupport):  # a few values: a category in all but name
                continue
            if not isinstance(t, PointMasses):  # no spike: a point-mass slot of the ties alone
                observed = columns[target][~np.isnan(columns[target])] - (col.offset or 0)
                t = PointMasses(integer=col.kind == "integer", share=np.inf).fit(observed, rng)
                transforms[schema.names.index(target)] = t
                numeric[target] = (col, t)
            t.tie()
            ties.append((target, source))
        return ties

    def _absolute(self, col: Column, s: pd.Series) -> np.ndarray:
        """A numeric column's values on its own scale (a relative column's offset added back)."""
        return self._values(col, s) + float(col.offset or 0)

    def _identifier(
        self, col: Column, series: pd.Series, values: np.ndarray, rng: np.random.Generator
    ) -> Identifier:
        t = Identifier().fit(values, rng)
        if col.name not in self.kinds:  # detected, not declared: say so and how to override
            reason = identifier_reason(series) or "one value per row"
            warnings.warn(
                identifier_message(col.name, reason, t.integer), UserWarning, stacklevel=3
            )
        return t

    def _layout(self) -> Layout:
        cont, cat, cards, miss, gates = [], [], [], [], []
        for col, t in zip(self.schema_.columns, self.transforms_):
            level = t.read_level() if t.cat_cardinalities else None
            gates += [(-1, -1) if level is None else (len(cat), level)] * t.n_cont
            cont += [col.name] * t.n_cont
            cat += [col.name] * len(t.cat_cardinalities)
            cards += list(t.cat_cardinalities)
            if col.kind in NUMERIC_KINDS and col.has_missing:
                miss.append(col.name)
        return Layout(
            columns=tuple(self.schema_.names),
            cont_names=tuple(cont),
            cat_names=tuple(cat),
            cat_cardinalities=tuple(cards),
            miss_names=tuple(miss),
            cont_gates=tuple(gates) if any(c >= 0 for c, _ in gates) else (),
        )

    # -- forward -----------------------------------------------------------------------
    def _check_columns(self, df: pd.DataFrame) -> None:
        _check_frame(df)
        expected = self.schema_.names
        missing = [c for c in expected if c not in df.columns]
        extra = [c for c in df.columns if c not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) {missing}")
            if extra:
                parts.append(f"unseen column(s) {extra} (drop them: df.drop(columns={extra}))")
            raise DataError(f"the table does not match the fitted one: {'; '.join(parts)}")

    def known_rows(self, df: pd.DataFrame) -> pd.Series:
        """True for the rows of ``df`` whose categorical values were all seen when fitting.

        ``transform`` refuses an unseen level (the model gives it zero probability); use
        ``df[transformer.known_rows(df)]`` to score held-out rows, e.g. with
        ``TabularVAE.log_likelihood``.
        """
        return pd.Series(
            ~self.unseen_cells(df).any(axis=1).to_numpy(), index=df.index, name="known"
        )

    def unseen_cells(self, df: pd.DataFrame) -> pd.DataFrame:
        """True where a categorical cell of ``df`` holds a value not seen when fitting (a
        missing cell counts as seen only if the fitted column had missing cells); same shape
        as ``df``."""
        if not hasattr(self, "schema_"):
            raise RuntimeError("TableTransformer is not fitted: call fit(df) first")
        self._check_columns(df)
        data = self.prepare(df)
        out = pd.DataFrame(False, index=df.index, columns=df.columns)
        for col, t in zip(self.schema_.columns, self.transforms_):
            if isinstance(t, CategoricalCodes):
                out[col.name] = ~t.known(self._values(col, data[col.name]))
        return out

    def transform(self, df: pd.DataFrame) -> TensorTable:
        """Slot tensors of ``df`` (same columns as the fitted table, in any order)."""
        if not hasattr(self, "schema_"):
            raise RuntimeError("TableTransformer is not fitted: call fit(df) first")
        self._check_columns(df)
        data = self.prepare(df)
        rng = np.random.default_rng(self.seed + 1)
        n = len(data)
        sources = self._sources()
        conts, cont_masks, cats, cat_masks, misses = [], [], [], [], []
        for col, t in zip(self.schema_.columns, self.transforms_):
            if isinstance(t, Identifier):  # generated, not modelled: no slot
                continue
            values = self._values(col, data[col.name])
            if isinstance(t, CategoricalCodes):
                codes, unseen = t.encode(values)
                if unseen:
                    shown = [v for v in unseen[:5]]
                    raise DataError(
                        f"column {col.name!r} has value(s) not seen when fitting: {shown}"
                        f"{' ...' if len(unseen) > 5 else ''}; map them to known levels, refit, or "
                        "keep the known rows: df[transformer.known_rows(df)]"
                    )
                cats.append(codes[:, None])
                cat_masks.append(np.ones((n, 1), dtype=bool))
                continue
            if np.isinf(values).any():
                raise DataError(
                    f"column {col.name!r} contains inf/-inf; replace them with NaN or finite values"
                )
            missing = np.isnan(values)
            cont = np.zeros((n, t.n_cont))
            cat = np.zeros((n, len(t.cat_cardinalities)), dtype=np.int64)
            if (~missing).any():
                if col.name in sources:
                    tied = self._tied(col, t, data, sources[col.name])[~missing]
                    c, k = t.forward(values[~missing], rng, tied)
                else:
                    c, k = t.forward(values[~missing], rng)
                cont[~missing], cat[~missing] = c, k
            conts.append(cont)
            cont_masks.append(np.repeat(~missing[:, None], t.n_cont, axis=1))
            cats.append(cat)
            cat_masks.append(np.repeat(~missing[:, None], len(t.cat_cardinalities), axis=1))
            if col.name in self.layout_.miss_names:
                misses.append(missing[:, None].astype(float))

        def stack(parts: list[np.ndarray], width_dtype: Any) -> np.ndarray:
            return np.concatenate(parts, axis=1) if parts else np.zeros((n, 0), dtype=width_dtype)

        return TensorTable(
            x_cont=torch.as_tensor(stack(conts, float), dtype=torch.float32),
            cont_mask=torch.as_tensor(stack(cont_masks, bool), dtype=torch.bool),
            x_cat=torch.as_tensor(stack(cats, np.int64), dtype=torch.long),
            cat_mask=torch.as_tensor(stack(cat_masks, bool), dtype=torch.bool),
            x_miss=torch.as_tensor(stack(misses, float), dtype=torch.float32),
        )

    def _sources(self) -> dict[Any, list[Any]]:
        """Per target column of the ties, its source columns in the order of its tie levels."""
        sources: dict[Any, list[Any]] = {}
        for target, source in self.ties_:
            sources.setdefault(target, []).append(source)
        return sources

    def _tied(
        self, col: Column, t: PointMasses, data: pd.DataFrame, sources: list[Any]
    ) -> np.ndarray:
        """Int ``[n]``: per row of ``data``, the first of ``sources`` that ``col`` equals (-1)."""
        columns = {c.name: c for c in self.schema_.columns}
        return tie_levels(
            self._absolute(col, data[col.name]),
            [self._absolute(columns[s], data[s]) for s in sources],
            t.spikes + float(col.offset or 0),
        )

    # -- inverse -----------------------------------------------------------------------
    def inverse_transform(self, table: TensorTable) -> pd.DataFrame:
        """A DataFrame with the fitted table's columns and dtypes from slot values."""
        x_cont = table.x_cont.detach().cpu().numpy().astype(float)
        x_cat = table.x_cat.detach().cpu().numpy()
        x_miss = table.x_miss.detach().cpu().numpy()
        n = x_cont.shape[0]
        ci = ki = mi = 0
        values, missing, levels = {}, {}, {}
        for col, t in zip(self.schema_.columns, self.transforms_):
            nk = len(t.cat_cardinalities)
            values[col.name] = t.inverse(x_cont[:, ci : ci + t.n_cont], x_cat[:, ki : ki + nk])
            if nk:
                levels[col.name] = x_cat[:, ki]
            ci, ki = ci + t.n_cont, ki + nk
            missing[col.name] = np.zeros(n, dtype=bool)
            if col.name in self.layout_.miss_names:
                missing[col.name] = x_miss[:, mi] > 0.5
                mi += 1
        columns = dict(zip(self.schema_.names, self.schema_.columns))
        transforms = dict(zip(self.schema_.names, self.transforms_))
        sources = self._sources()
        for target in tie_order(self.ties_):  # a target on a tie level: that source's value
            for j, source in enumerate(sources[target]):
                level = len(transforms[target].spikes) + 1 + j
                copy = (levels[target] == level) & ~missing[source]
                shift = float(columns[source].offset or 0) - float(columns[target].offset or 0)
                values[target] = np.where(
                    copy, values[source].astype(float) + shift, values[target]
                )
        out = {
            col.name: _restore(col, values[col.name], missing[col.name])
            for col in self.schema_.columns
        }
        return self.rules_.apply(pd.DataFrame(out))

    def as_delivered(self, table: TensorTable) -> TensorTable:
        """Generated slot values as a user receives them (decoded, the value rules applied),
        encoded again: what ``ppvae.marginal_calibration`` matches to the training rows."""
        return self.transform(self.inverse_transform(table))

    def continuous_in_use(self, table: TensorTable) -> tuple[torch.Tensor, list[bool]]:
        """Where the inverse reads a continuous slot: bool ``[n, n_cont]`` (observed, not
        missing, and for a point-mass column off its spikes), and per slot whether one
        monotone map of it can stand for its column (``ColumnTransform.continuous_in_use``)."""
        x_cat = table.x_cat.detach().cpu().numpy()
        x_miss = table.x_miss.detach().cpu().numpy()
        cont_mask = table.mask("x_cont")
        n = len(x_cat)
        used, mappable = [], []
        ki = mi = 0
        for col, t in zip(self.schema_.columns, self.transforms_):
            nk = len(t.cat_cardinalities)
            rows = t.continuous_in_use(x_cat[:, ki : ki + nk]) if t.n_cont == 1 else None
            ki += nk
            present = np.ones(n, dtype=bool)
            if col.name in self.layout_.miss_names:
                present = x_miss[:, mi] < 0.5
                mi += 1
            for _ in range(t.n_cont):
                used.append(present & (rows if rows is not None else False))
                mappable.append(rows is not None)
        in_use = torch.from_numpy(np.stack(used, axis=1) if used else np.zeros((n, 0), bool))
        if cont_mask is not None:
            in_use &= cont_mask.detach().cpu().bool()
        return in_use, mappable

    # -- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "params": {
                "continuous": self.continuous,
                "kinds": [[k, v] for k, v in self.kinds.items()],
                "missing_values": self.missing_values,
                "max_modes": self.max_modes,
                "seed": self.seed,
            },
            "schema": self.schema_.to_dict(),
            "transforms": [t.to_dict() for t in self.transforms_],
            "rules": self.rules_.to_dict(),
            "ties": [list(tie) for tie in self.ties_],
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TableTransformer:
        params = dict(state["params"])
        params["kinds"] = {k: v for k, v in params.get("kinds", [])}
        obj = cls(**params)
        obj.schema_ = Schema.from_dict(state["schema"])
        obj.transforms_ = [ColumnTransform.from_dict(t) for t in state["transforms"]]
        obj.layout_ = obj._layout()
        obj.rules_ = ValueRules.from_dict(state["rules"]) if "rules" in state else ValueRules()
        obj.ties_ = [tuple(tie) for tie in state.get("ties", [])]  # saved before ties: none
        return obj


def _restore(col: Column, values: np.ndarray, missing: np.ndarray) -> pd.Series:
    """Values back in the column's original dtype (NaN where ``missing``)."""
    if col.dtype.startswith("timedelta"):
        ns = pd.to_numeric(pd.Series(values, dtype=object)).to_numpy(dtype=float)
        ns = np.where(missing, np.nan, np.round(ns))
        return pd.Series(pd.to_timedelta(ns, unit="ns")).astype(col.dtype)
    if col.offset is not None:
        return _from_relative(col, values, missing)
    if col.kind in NUMERIC_KINDS:
        values = values.astype(float)
        if col.kind in ("integer", "datetime"):
            values = np.round(values)
        elif col.decimals is not None:
            values = np.round(values, col.decimals)
        values = np.where(missing, np.nan, values)
        if col.kind == "datetime":
            stamps = pd.to_datetime(pd.Series(values).astype("Int64"), unit="ns")
            return _as_datetime_dtype(stamps, col.dtype)
        if col.dtype.startswith(("int", "uint")) and not missing.any():
            return pd.Series(values.astype(col.dtype))
        if col.dtype.startswith(("int", "uint")):  # missing values in an int column: float
            return pd.Series(values)
        return pd.Series(values).astype(col.dtype)
    series = pd.Series(values, dtype=object)
    if col.dtype == "category":
        return pd.Series(pd.Categorical(series, categories=col.categories, ordered=col.ordered))
    if col.dtype == "bool":
        return series.astype(bool)
    if col.dtype == "object":
        return series
    try:
        return series.astype(col.dtype)
    except (TypeError, ValueError):
        return series


def _normalise(name: Any, s: pd.Series, warn: bool) -> pd.Series:
    """One column's cells in a form ppvae models (see ``TableTransformer.prepare``)."""
    dtype = s.dtype
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(
            f"column {name!r} holds complex numbers; split it into two real columns: "
            f"df[{name!r} + '_re'], df[{name!r} + '_im'] = df[{name!r}].real, df[{name!r}].imag"
        )
    if pd.api.types.is_timedelta64_dtype(dtype):
        ns = s.to_numpy(dtype="timedelta64[ns]")
        return pd.Series(np.where(np.isnat(ns), np.nan, ns.astype("int64")), index=s.index)
    if isinstance(dtype, pd.PeriodDtype):
        return s.dt.to_timestamp()
    if not pd.api.types.is_object_dtype(dtype):
        return s
    observed = s[s.notna().to_numpy()] if len(s) else s
    types = set(map(type, observed.to_numpy()))
    bad = [t for t in types if issubclass(t, CONTAINERS)]
    if bad:
        raise DataError(
            f"column {name!r} holds {bad[0].__name__} values, but each cell must be a single "
            f"value: spread them over columns, or store them as text: df[{name!r}] = "
            f"df[{name!r}].astype(str)"
        )
    if any(issubclass(t, (bytes, bytearray)) for t in types):
        raise DataError(
            f"column {name!r} holds bytes; decode them to text: df[{name!r}] = "
            f"df[{name!r}].str.decode('utf-8')"
        )
    if any(issubclass(t, complex) for t in types):
        raise DataError(f"column {name!r} holds complex numbers; split them into two real columns")
    if types and all(issubclass(t, decimal.Decimal) for t in types):
        if warn:
            warnings.warn(
                f"column {name!r} holds Decimal values: modelled (and sampled) as float64",
                UserWarning,
                stacklevel=4,
            )
        return s.astype(float)
    if types and all(issubclass(t, DATETIMES) for t in types):
        aware = any(getattr(v, "tzinfo", None) is not None for v in observed.iloc[:1000])
        try:
            return pd.to_datetime(s, utc=aware)
        except (ValueError, TypeError, OverflowError) as exc:
            raise DataError(
                f"column {name!r} holds date/time objects that do not convert to datetime64 "
                f"({exc}); convert it: df[{name!r}] = pd.to_datetime(df[{name!r}], utc=True)"
            ) from None
    if types and all(issubclass(t, pd.Timedelta) for t in types):
        return _normalise(name, pd.to_timedelta(s), warn)
    return s


def _all_numbers(values: pd.Series) -> bool:
    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def _nanoseconds(col: Column, s: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC for time-zone aware columns), NaN where missing."""
    values = s if pd.api.types.is_datetime64_any_dtype(s.dtype) else None
    if values is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = pd.to_datetime(s, errors="coerce", utc=True)
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        ns = values.to_numpy(dtype="datetime64[ns]")
    except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError):
        raise DataError(
            f"column {col.name!r} holds dates outside 1677-09-21 .. 2262-04-11, which ppvae "
            "models in nanoseconds; clip them or store them as text"
        ) from None
    return np.where(np.isnat(ns), np.nan, ns.astype("int64").astype(float))


def _exact_integers(dtype: Any) -> bool:
    """A numpy or nullable pandas integer dtype (values kept exactly, relative to the min)."""
    return pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _numpy_integers(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """An integer column's values (0 where missing) and its missing mask."""
    dtype = getattr(s.dtype, "numpy_dtype", s.dtype)
    missing = s.isna().to_numpy()
    return s.to_numpy(dtype=dtype, na_value=0), missing


def _relative(s: pd.Series, offset: int) -> np.ndarray:
    """Integer values minus ``offset`` as floats, exact for any int64/uint64 value when the
    column's range is below 2**53 (modular uint64 arithmetic, never a lossy cast first)."""
    try:
        raw, missing = _numpy_integers(s)
    except (TypeError, ValueError):
        raw = pd.to_numeric(s).to_numpy(dtype=float)
        return raw - float(offset)
    wrapped = raw.astype(np.uint64)
    base = np.uint64(offset % 2**64)
    info = np.iinfo(raw.dtype)
    if offset > info.max:
        below = np.ones(len(raw), dtype=bool)
    elif offset < info.min:
        below = np.zeros(len(raw), dtype=bool)
    else:
        below = raw < raw.dtype.type(offset)
    up = (wrapped - base).astype(float)
    down = -((base - wrapped).astype(float))
    return np.where(missing, np.nan, np.where(below, down, up))


def _from_relative(col: Column, values: np.ndarray, missing: np.ndarray) -> pd.Series:
    """The inverse of :func:`_relative`, in the column's integer dtype."""
    rel = np.clip(np.round(np.nan_to_num(values.astype(float))), 0, 2.0**64 - 4096)
    wrapped = rel.astype(np.uint64) + np.uint64(col.offset % 2**64)
    dtype = pd.api.types.pandas_dtype(col.dtype)
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
    ints = wrapped.astype(numpy_dtype)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return pd.Series(pd.array(ints, dtype=dtype)).mask(missing)
    if missing.any():  # a numpy integer column cannot hold missing values: float
        return pd.Series(np.where(missing, np.nan, ints.astype(float)))
    return pd.Series(ints)


def _as_datetime_dtype(stamps: pd.Series, dtype_name: str) -> pd.Series:
    """Naive UTC timestamps in the column's dtype (time zone, unit or period)."""
    try:
        dtype = pd.api.types.pandas_dtype(dtype_name)
    except TypeError:
        return stamps
    if isinstance(dtype, pd.DatetimeTZDtype):
        return stamps.dt.tz_localize("UTC").dt.tz_convert(dtype.tz).astype(dtype)
    if isinstance(dtype, pd.PeriodDtype):
        return stamps.dt.to_period(dtype.freq)
    if "datetime64" in dtype_name:
        return stamps.astype(dtype)
    return stamps
