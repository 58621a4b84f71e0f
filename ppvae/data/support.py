r"""The quantile-to-normal transform of a numeric column with few distinct values.

Counts, ratings, prices on a coarse grid, a zero-inflated amount (Adult's ``capital-gain``:
92 % zeros and about a hundred other values) are recorded on a finite *support*
:math:`v_1 < \dots < v_K`. With the empirical CDF :math:`F` of the training values,

- forward: :math:`y = \Phi^{-1}(u)`, :math:`u \sim U(F(v_{k-1}), F(v_k))` for :math:`x = v_k`
  (each value fills its own slice of the unit interval, so the model sees a continuous
  standard normal variable);
- inverse: the value whose slice holds :math:`\Phi(y)`, :math:`x = v_k` with
  :math:`F(v_{k-1}) < \Phi(y) \le F(v_k)`.

Sampled values are therefore always values the column takes (never 2.5 children, never a
price between two list prices), with the same point masses, and a model that gets :math:`y`'s
marginal right reproduces the column's exactly. A value not in the support (a new row) is
placed at the CDF between its neighbours. Used for numeric columns with at most
``MAX_SUPPORT`` distinct values and at least ``ROWS_PER_VALUE`` rows per value on average.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from ppvae.data.transforms import EPS, TRANSFORMS, ColumnTransform

MAX_SUPPORT = 2000
ROWS_PER_VALUE = 10


def has_small_support(values: np.ndarray) -> bool:
    """True when ``values`` (observed, ``[n]``) take few enough distinct values."""
    k = len(np.unique(values))
    return 1 < k <= MAX_SUPPORT and k * ROWS_PER_VALUE <= len(values)


class EmpiricalSupport(ColumnTransform):
    """Quantile-to-normal over a finite support (one continuous slot)."""

    name = "support"
    n_cont = 1

    def fit(self, values: np.ndarray, rng: np.random.Generator | None = None) -> EmpiricalSupport:
        support, counts = np.unique(values.astype(float), return_counts=True)
        self.support = support
        self.cdf = np.cumsum(counts) / counts.sum()
        return self

    def forward(
        self, values: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        x = values.astype(float)
        k = np.clip(np.searchsorted(self.support, x), 0, len(self.support) - 1)
        upper = self.cdf[k]
        lower = np.where(k > 0, self.cdf[np.maximum(k - 1, 0)], 0.0)
        exact = self.support[k] == x
        u = np.where(exact, lower + rng.random(len(x)) * (upper - lower), lower)
        u = np.where(x > self.support[-1], 1.0, u)
        y = ndtri(np.clip(u, EPS, 1.0 - EPS))
        return y[:, None], np.zeros((len(x), 0), dtype=np.int64)

    def inverse(self, cont: np.ndarray, cat: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.cdf, ndtr(cont[:, 0]), side="left")
        return self.support[np.clip(k, 0, len(self.support) - 1)]

    def _state(self) -> dict[str, Any]:
        return {"support": self.support.tolist(), "cdf": self.cdf.tolist()}

    def _load(self, state: dict[str, Any]) -> None:
        self.support = np.asarray(state["support"], float)
        self.cdf = np.asarray(state["cdf"], float)


TRANSFORMS[EmpiricalSupport.name] = EmpiricalSupport
