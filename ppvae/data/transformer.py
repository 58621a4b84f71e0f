"""``TableTransformer``: a DataFrame <-> :class:`~ppvae.data.layout.TensorTable`, reversibly.

``fit`` checks the table (clear :class:`~ppvae.data.errors.DataError` for what cannot be
modelled), infers the schema and fits one transform per column; ``transform`` produces the
slot tensors; ``inverse_transform`` turns slot values (e.g. samples) back into a DataFrame
with the fitted table's columns, order and dtypes: integers are rounded and kept in the
observed range, categories come only from the observed levels, and a numeric column is NaN
where its missingness slot is 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ppvae.data.errors import DataError
from ppvae.data.identifiers import Identifier, identifier_message, identifier_reason
from ppvae.data.layout import Layout, TensorTable
from ppvae.data.schema import NUMERIC_KINDS, Column, Schema, infer_schema
from ppvae.data.transforms import CategoricalCodes, ColumnTransform, ModeSpecific, QuantileNormal

CONTINUOUS_ENCODINGS = ("quantile", "mode_specific")
ID_LIKE_LEVELS = 1000


def _check_frame(df: Any) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"expected a pandas DataFrame, got {type(df).__name__}; wrap your data in pd.DataFrame(...)"
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
    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """Declared missing markers -> NaN (object columns only, never numbers)."""
        if not self.missing_values:
            return df
        out = {}
        for name in df.columns:
            s = df[name]
            if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                s = s.mask(s.isin(self.missing_values))
                if s.notna().any() and s.dtype == object:
                    numeric = pd.to_numeric(s, errors="coerce")
                    if numeric.notna().sum() == s.notna().sum():  # '?' made a numeric column object
                        s = numeric
            out[name] = s
        return pd.DataFrame(out, index=df.index)

    def _values(self, col: Column, s: pd.Series) -> np.ndarray:
        """A column's values as the transform takes them."""
        if col.kind == "datetime":
            values = pd.to_datetime(s, errors="coerce")
            return (
                values.astype("int64").to_numpy(dtype=float)
                if not values.isna().any()
                else np.where(
                    values.isna(),
                    np.nan,
                    values.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float),
                )
            )
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
        data = self.prepare(df)
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
        rng = np.random.default_rng(self.seed)
        transforms: list[ColumnTransform] = []
        for col in schema.columns:
            values = self._values(col, data[col.name])
            if col.kind == "identifier":
                transforms.append(self._identifier(col, data[col.name], values, rng))
                continue
            if col.kind in NUMERIC_KINDS:
                observed = values[~np.isnan(values)]
                if self.continuous == "quantile" or col.kind == "datetime":
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
        self.schema_ = schema
        self.transforms_ = transforms
        self.layout_ = self._layout()
        return self

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
        cont, cat, cards, miss = [], [], [], []
        for col, t in zip(self.schema_.columns, self.transforms_):
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
        if not hasattr(self, "schema_"):
            raise RuntimeError("TableTransformer is not fitted: call fit(df) first")
        self._check_columns(df)
        data = self.prepare(df)
        known = np.ones(len(data), dtype=bool)
        for col, t in zip(self.schema_.columns, self.transforms_):
            if isinstance(t, CategoricalCodes):
                known &= t.known(self._values(col, data[col.name]))
        return pd.Series(known, index=df.index, name="known")

    def transform(self, df: pd.DataFrame) -> TensorTable:
        """Slot tensors of ``df`` (same columns as the fitted table, in any order)."""
        if not hasattr(self, "schema_"):
            raise RuntimeError("TableTransformer is not fitted: call fit(df) first")
        self._check_columns(df)
        data = self.prepare(df)
        rng = np.random.default_rng(self.seed + 1)
        n = len(data)
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

    # -- inverse -----------------------------------------------------------------------
    def inverse_transform(self, table: TensorTable) -> pd.DataFrame:
        """A DataFrame with the fitted table's columns and dtypes from slot values."""
        x_cont = table.x_cont.detach().cpu().numpy().astype(float)
        x_cat = table.x_cat.detach().cpu().numpy()
        x_miss = table.x_miss.detach().cpu().numpy()
        n = x_cont.shape[0]
        ci = ki = mi = 0
        out = {}
        for col, t in zip(self.schema_.columns, self.transforms_):
            nk = len(t.cat_cardinalities)
            values = t.inverse(x_cont[:, ci : ci + t.n_cont], x_cat[:, ki : ki + nk])
            ci, ki = ci + t.n_cont, ki + nk
            missing = np.zeros(n, dtype=bool)
            if col.name in self.layout_.miss_names:
                missing = x_miss[:, mi] > 0.5
                mi += 1
            out[col.name] = _restore(col, values, missing)
        return pd.DataFrame(out)

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
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TableTransformer:
        params = dict(state["params"])
        params["kinds"] = {k: v for k, v in params.get("kinds", [])}
        obj = cls(**params)
        obj.schema_ = Schema.from_dict(state["schema"])
        obj.transforms_ = [ColumnTransform.from_dict(t) for t in state["transforms"]]
        obj.layout_ = obj._layout()
        return obj


def _restore(col: Column, values: np.ndarray, missing: np.ndarray) -> pd.Series:
    """Values back in the column's original dtype (NaN where ``missing``)."""
    if col.kind in NUMERIC_KINDS:
        values = values.astype(float)
        if col.kind in ("integer", "datetime"):
            values = np.round(values)
        values = np.where(missing, np.nan, values)
        if col.kind == "datetime":
            stamps = pd.to_datetime(pd.Series(values).astype("Int64"), unit="ns")
            return stamps.astype(col.dtype) if "datetime64" in col.dtype else stamps
        if col.dtype.startswith("int") and not missing.any():
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
