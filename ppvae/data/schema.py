"""Column kinds: inferred from a DataFrame, overridable, JSON-able.

Rules (applied after the declared missing markers have become NaN):

- ``bool`` -> ``boolean``; ``datetime64`` (naive or time-zone aware) and ``period`` ->
  ``datetime``; ``timedelta64`` is modelled as its number of nanoseconds;
- ``object`` / ``string`` / ``category`` -> ``categorical`` (an object column of mixed types,
  such as ``["1", 2, None]``, is modelled on the string form of its values, so it comes back
  as strings);
- integers, and floats whose values are all whole numbers, -> ``categorical`` when they take
  at most ``max_int_levels`` distinct values (codes, ratings, counts of few values), else
  ``integer`` (sampled values are rounded and kept within the observed range);
- other floats -> ``continuous``;
- ``identifier`` for a name, ticket or row key (one value per row; see
  :mod:`ppvae.data.identifiers`): generated fresh, never learned. Only this kind looks at the
  number of rows, so it is decided in :func:`infer_schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ppvae.data.errors import DataError
from ppvae.data.identifiers import identifier_reason

KINDS = ("continuous", "integer", "categorical", "boolean", "datetime", "identifier")
NUMERIC_KINDS = ("continuous", "integer", "datetime")
MAX_INT_LEVELS = 20


@dataclass
class Column:
    """One column: its name, kind, original pandas dtype and whether it has missing values."""

    name: Any
    kind: str
    dtype: str
    has_missing: bool = False
    mixed_types: bool = False
    categories: list[Any] | None = field(default=None)  # the categories of a ``category`` dtype
    ordered: bool = False
    offset: int | None = None  # an integer column's minimum, kept exactly (uint64, >= 2**63)
    decimals: int | None = None  # a float column's recording grid (sampled values rounded)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Schema:
    columns: list[Column]

    @property
    def names(self) -> list[Any]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: Any) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Schema:
        return cls([Column(**c) for c in state["columns"]])


def _is_whole(values: pd.Series) -> bool:
    finite = values.to_numpy(dtype=float)
    return bool(np.all(np.mod(finite, 1) == 0))


def infer_kind(series: pd.Series, max_int_levels: int = MAX_INT_LEVELS) -> str:
    """The kind of one column (see the module docstring for the rules)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    observed = series.dropna()
    whole = pd.api.types.is_integer_dtype(dtype) or (len(observed) > 0 and _is_whole(observed))
    if whole:
        return "categorical" if observed.nunique() <= max_int_levels else "integer"
    return "continuous"


def infer_schema(
    df: pd.DataFrame,
    kinds: Mapping[Any, str] | None = None,
    max_int_levels: int = MAX_INT_LEVELS,
) -> Schema:
    """Infer a :class:`Schema` from ``df``; ``kinds`` overrides the kind of named columns."""
    kinds = dict(kinds or {})
    unknown = [k for k in kinds if k not in df.columns]
    if unknown:
        raise DataError(
            f"kinds names column(s) not in the table: {unknown}; columns are {list(df.columns)}"
        )
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise DataError(
                f"kinds[{name!r}] = {kind!r} is not a column kind; use one of {', '.join(KINDS)}"
            )
    columns = []
    for name in df.columns:
        series = df[name]
        kind = kinds.get(name) or (
            "identifier" if identifier_reason(series) else infer_kind(series, max_int_levels)
        )
        mixed = False
        if kind == "categorical" and series.dtype == object:
            types = {type(v) for v in series.dropna()}
            mixed = len(types) > 1
        categories = ordered = None
        if isinstance(series.dtype, pd.CategoricalDtype):
            categories = [_plain(v) for v in series.dtype.categories]
            ordered = bool(series.dtype.ordered)
        columns.append(
            Column(
                name=name,
                kind=kind,
                dtype="category" if categories is not None else str(series.dtype),
                has_missing=bool(series.isna().any()),
                mixed_types=mixed,
                categories=categories,
                ordered=bool(ordered),
            )
        )
    return Schema(columns)


def _plain(value: Any) -> Any:
    """A JSON-able Python scalar for a numpy/pandas scalar."""
    return value.item() if isinstance(value, np.generic) else value
