"""Identifier columns: names, ticket numbers, row keys — one value (nearly) per row.

Such a column carries no pattern a model can learn: one-hot encoded it adds a level per row
that swamps the likelihood (and every held-out value is unseen), and any value the model
returns is a copy of a training value. ppvae therefore recognises them at fit time and
*generates* them instead: fresh values in the column's format, unique within a sample and
never equal to a training value.

Detection (:func:`identifier_reason`), on the observed values of a column with at least
``MIN_ROWS`` of them:

- text (``object`` / ``string``): more than ``MIN_DISTINCT_RATIO`` of the values distinct;
- integers: all distinct and dense (``max - min + 1 <= MAX_SPAN_RATIO * n``): a row key, or
  a split or filtered part of one; other unique integers (amounts, weights) stay numbers.
  Distinct values drawn at random from a range that narrow are all but impossible (the
  birthday bound), so only an assigned key passes.

``kinds={"col": "categorical"}`` (or ``"integer"``) overrides it; ``kinds={"col": "identifier"}``
declares one. Generation (:class:`Identifier`):

- integer keys continue the key: ``max + 1, max + 2, ...``;
- text: each value's *shape* is its runs of upper-case letters, lower-case letters and digits
  (``"A/5 21171"`` -> ``A/9 99999``, ``"Braund, Owen"`` -> ``Aaaaaa, Aaaa``; other characters are
  kept); a new value picks a shape with its training frequency and fills each run with
  random characters of its class. Only the shapes are stored, plus a salted 32-bit hash of
  each training value so that a generated value equal to one is drawn again (the model file
  never holds the values themselves).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
import pandas as pd
import torch

from ppvae.data.transforms import TRANSFORMS, ColumnTransform

MIN_ROWS = 20
MIN_DISTINCT_RATIO = 0.9
MAX_SPAN_RATIO = 2.0
MAX_SHAPES = 200
_RUN = re.compile(r"[A-Z]+|[a-z]+|[0-9]+|[^A-Za-z0-9]")
_CLASSES = {"A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "a": "abcdefghijklmnopqrstuvwxyz", "9": "0123456789"}


def identifier_reason(series: pd.Series) -> str | None:
    """Why ``series`` looks like an identifier column, or ``None`` when it does not."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return None
    observed = series.dropna()
    n = len(observed)
    if n < MIN_ROWS:
        return None
    if pd.api.types.is_integer_dtype(dtype):
        values = observed.to_numpy(dtype=np.int64)
        distinct = len(np.unique(values))
        span = int(values.max()) - int(values.min()) + 1
        if distinct == n and span <= MAX_SPAN_RATIO * n:
            return f"{n} distinct integers within a range of {span} in {n} rows: a row key"
        return None
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        if not all(isinstance(v, str) for v in observed):
            return None
        distinct = observed.nunique()
        if distinct > MIN_DISTINCT_RATIO * n:
            return f"{distinct} distinct text values in {n} rows"
    return None


def shape_of(value: str) -> str:
    """The run-length shape of a text value: ``"A/5 21171"`` -> ``"A1/19 95"`` (class, length)."""
    parts = []
    for run in _RUN.findall(value):
        c = run[0]
        cls = "A" if c.isupper() and c.isascii() else "a" if c.islower() and c.isascii() else None
        cls = "9" if c.isdigit() and c.isascii() else cls
        parts.append(f"{cls}{len(run)}" if cls else "\\" + run)
    return "|".join(parts)


def _fill(shape: str, rng: np.random.Generator) -> str:
    out = []
    for part in shape.split("|"):
        if part.startswith("\\"):
            out.append(part[1:])
            continue
        chars = _CLASSES[part[0]]
        idx = rng.integers(0, len(chars), int(part[1:]))
        if part[0] == "9" and len(idx) > 1 and idx[0] == 0:  # no leading zero in a number
            idx[0] = rng.integers(1, 10)
        out.append("".join(chars[i] for i in idx))
    return "".join(out)


class Identifier(ColumnTransform):
    """Generates fresh identifiers in a column's format; takes no model slot (module docstring)."""

    name = "identifier"
    n_cont = 0
    cat_cardinalities = ()

    def fit(self, values: np.ndarray, rng: np.random.Generator | None = None) -> Identifier:
        series = pd.Series(values, dtype=object)
        observed = series.dropna()
        self.missing_rate = float(series.isna().mean()) if len(series) else 0.0
        self.salt = f"{int((rng or np.random.default_rng()).integers(0, 2**31)):08x}"
        self.integer = bool(len(observed)) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in observed
        )
        if self.integer:
            self.start = int(max(observed)) + 1
            self.shapes, self.weights, self.hashes = [], [], []
            return self
        counts = observed.astype(str).map(shape_of).value_counts().head(MAX_SHAPES)
        self.shapes = counts.index.tolist()
        self.weights = (counts / counts.sum()).tolist()
        self.hashes = sorted({self._hash(str(v)) for v in observed})
        self.start = 0
        return self

    def _hash(self, value: str) -> str:
        return hashlib.blake2b(f"{self.salt}{value}".encode(), digest_size=4).hexdigest()

    def generate(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` fresh values ``[n]`` (object): unique, none equal to a training value."""
        out = np.empty(n, dtype=object)
        missing = rng.random(n) < self.missing_rate
        out[missing] = np.nan
        k = int((~missing).sum())
        if self.integer:
            out[~missing] = [self.start + i for i in range(k)]
            return out
        if not self.shapes:
            out[~missing] = np.nan
            return out
        taken, fresh = set(self.hashes), []
        seen: set[str] = set()
        shapes = rng.choice(len(self.shapes), size=k, p=self.weights)
        for s in shapes:
            for _ in range(100):
                value = _fill(self.shapes[s], rng)
                if value not in seen and self._hash(value) not in taken:
                    break
            else:  # a shape too short to hold enough fresh values: lengthen its last run
                value = f"{value}{len(seen)}"
            seen.add(value)
            fresh.append(value)
        out[~missing] = fresh
        return out

    def inverse(self, cont: np.ndarray, cat: np.ndarray) -> np.ndarray:
        # seeded from torch's generator, so ``TabularVAE.sample(seed=...)`` stays reproducible
        seed = int(torch.randint(0, 2**31 - 1, ()))
        return self.generate(len(cont), np.random.default_rng(seed))

    def _state(self) -> dict[str, Any]:
        return {
            "integer": self.integer,
            "start": self.start,
            "shapes": self.shapes,
            "weights": self.weights,
            "hashes": self.hashes,
            "salt": self.salt,
            "missing_rate": self.missing_rate,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.integer, self.start = bool(state["integer"]), int(state["start"])
        self.shapes, self.weights = list(state["shapes"]), list(state["weights"])
        self.hashes, self.salt = list(state["hashes"]), str(state["salt"])
        self.missing_rate = float(state["missing_rate"])


def identifier_message(name: Any, reason: str, integer: bool) -> str:
    """The fit-time notice for a detected identifier column, with how to override it."""
    kind = "integer" if integer else "categorical"
    return (
        f"column {name!r} looks like an identifier ({reason}): ppvae does not learn it but "
        f"generates fresh unique values in its format. To model it as data instead, pass "
        f"kinds={{{name!r}: {kind!r}}}; to leave it out, df.drop(columns=[{name!r}])"
    )


TRANSFORMS[Identifier.name] = Identifier
