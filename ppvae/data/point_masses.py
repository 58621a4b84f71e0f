r"""A numeric column with point masses as a mixed discrete/continuous column.

Zero-inflated amounts (Shoppers' ``Informational_Duration``: 80 % zeros; Adult's
``capital-gain``: 92 %), a standard working week (``hours-per-week = 40``: 47 %) or a rate's
round values carry most of their rows on a few exact values. Spread over a slice of a
continuous slot (the quantile transforms), a spike is reproduced in the marginal, but the
model cannot say *which* rows sit on it: two columns whose zeros go together (no
informational page, no informational duration) are then sampled half apart.

Here each value holding at least ``SPIKE_SHARE`` of the rows (``FEW_VALUES_SPIKE_SHARE`` in
a column of few distinct values) is a level of a categorical
slot, as is "elsewhere" (the last level); the rows elsewhere are encoded by the usual
continuous transform of the remaining values (a finite support or the quantile-to-normal
one), and the continuous slot of a row on a spike holds standard-normal noise, which the
inverse ignores:

- forward: ``x = s_j`` -> (level ``j``, noise); otherwise (level ``k``, ``rest(x)``);
- inverse: level ``j < k`` -> ``s_j``; level ``k`` -> ``rest^{-1}(y)``.

A column that copies other columns' values in many rows (``ppvae.data.ties``) has one more
level per source, ``k + 1 + j``, "equal to source j", with noise in the continuous slot; its
inverse here is the rest's (a fallback: ``TableTransformer`` puts the source's value there).
A column with ties needs no spike (``k = 0``).

The point masses are thus modelled as categories, jointly with every other column.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ppvae.data.support import EmpiricalSupport, has_small_support
from ppvae.data.transforms import TRANSFORMS, ColumnTransform, QuantileNormal

SPIKE_SHARE = 0.05
#: The share that makes a value of a column with few distinct values a spike (any value of
#: a count holds a few per cent of the rows; a zero-inflated count's zero holds most).
FEW_VALUES_SPIKE_SHARE = 0.25
MIN_REST = 10


def spikes_of(values: np.ndarray, share: float = SPIKE_SHARE) -> np.ndarray:
    """The values holding at least ``share`` of ``values`` (observed, ``[n]``)."""
    levels, counts = np.unique(values.astype(float), return_counts=True)
    return levels[counts >= share * len(values)]


class PointMasses(ColumnTransform):
    """Spikes as levels of one categorical slot, the rest through one continuous slot."""

    name = "point_masses"
    n_cont = 1

    def __init__(self, integer: bool = False, share: float = SPIKE_SHARE):
        self.integer, self.share = integer, share
        self.tied = 0  # tie levels, one per source column

    def fit(self, values: np.ndarray, rng: np.random.Generator) -> PointMasses:
        x = values.astype(float)
        self.spikes = spikes_of(x, self.share)
        rest = x[~np.isin(x, self.spikes)]
        self.rest: ColumnTransform | None = None
        if len(np.unique(rest)) >= 2 and len(rest) >= MIN_REST:
            self.rest = (
                EmpiricalSupport().fit(rest)
                if has_small_support(rest)
                else QuantileNormal(dequantize=self.integer).fit(rest, rng)
            )
        elif len(rest):  # one value elsewhere (or very few): it is a spike too
            self.spikes = np.unique(np.r_[self.spikes, rest])
        self._set_cardinalities()
        return self

    def tie(self) -> PointMasses:
        """Add a level "equal to the next source column" (``ppvae.data.ties``); returns self."""
        self.tied += 1
        self._set_cardinalities()
        return self

    def _set_cardinalities(self) -> None:
        self.cat_cardinalities = (len(self.spikes) + 1 + self.tied,)

    def forward(
        self, values: np.ndarray, rng: np.random.Generator, tied: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slots of ``values``; ``tied`` (int ``[n]``): per row the source column it equals
        (``ppvae.data.ties.tie_levels``; -1: none), encoded on that tie level."""
        x = values.astype(float)
        k = len(self.spikes)
        if k:
            position = np.clip(np.searchsorted(self.spikes, x), 0, k - 1)
            on_spike = self.spikes[position] == x
        else:
            position, on_spike = np.zeros(len(x), dtype=np.int64), np.zeros(len(x), dtype=bool)
        level = np.where(on_spike, position, k)
        if self.tied and tied is not None:
            level = np.where((tied >= 0) & ~on_spike, k + 1 + tied, level)
        cont = rng.standard_normal(len(x))
        rest = level == k
        if self.rest is not None and rest.any():
            cont[rest] = self.rest.forward(x[rest], rng)[0][:, 0]
        return cont[:, None], level[:, None].astype(np.int64)

    def read_level(self) -> int:
        """Elsewhere: off the spikes and the ties (never, without a rest)."""
        return len(self.spikes)

    def continuous_in_use(self, cat: np.ndarray) -> np.ndarray:
        """The rows elsewhere (the last level), when there is a rest to encode."""
        return (cat[:, 0] == len(self.spikes)) & (self.rest is not None)

    def inverse(self, cont: np.ndarray, cat: np.ndarray) -> np.ndarray:
        k = len(self.spikes)
        level = np.clip(cat[:, 0], 0, k)  # the tie levels read as the rest here
        if self.rest is None:
            return self.spikes[np.minimum(level, k - 1)]
        rest = self.rest.inverse(cont, cat[:, :0])
        if not k:
            return rest
        return np.where(level < k, self.spikes[np.minimum(level, k - 1)], rest)

    def _state(self) -> dict[str, Any]:
        return {
            "spikes": self.spikes.tolist(),
            "integer": self.integer,
            "rest": None if self.rest is None else self.rest.to_dict(),
            "tied": self.tied,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.spikes = np.asarray(state["spikes"], float)
        self.integer = bool(state["integer"])
        rest = state["rest"]
        self.rest = None if rest is None else ColumnTransform.from_dict(rest)
        self.tied = int(state.get("tied", 0))  # a model saved before ties: none
        self._set_cardinalities()


TRANSFORMS[PointMasses.name] = PointMasses
