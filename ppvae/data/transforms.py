r"""Reversible per-column transforms from values to model slots and back.

Each transform maps the observed (non-missing) values of one column to ``n_cont``
continuous slots and ``len(cat_cardinalities)`` categorical slots, and back. State is
plain numbers and strings (``to_dict``/``from_dict``), so saved models hold no pickles.

- :class:`QuantileNormal` — :math:`y = \Phi^{-1}(F(x))` with :math:`F` the empirical CDF
  (at most ``knots`` quantiles, linear in between, denser in the tails: :func:`quantile_probs`). Integer columns are first dequantised
  (:math:`x + U(-\tfrac12, \tfrac12)`, undone by rounding); ties of a float column (a spike)
  are spread uniformly over the knots they cover. The model thus sees a continuous standard
  normal variable, and the inverse :math:`x = F^{-1}(\Phi(y))` maps spikes back to spikes:
  every marginal is reproduced as closely as the decoder fits a normal. This is the default
  (see ``bench/results/transforms.md``).
- :class:`ModeSpecific` — the mode-specific normalisation of CTGAN/TVAE (Xu et al. 2019): a
  1-D Gaussian mixture; a value becomes its mode (categorical slot) and its offset within
  the mode :math:`(x-\mu_k)/(4\sigma_k)` (continuous slot).
- :class:`CategoricalCodes` — level indices over the observed levels (NaN is a level of its
  own when present).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import ndtr, ndtri

#: a training value's CDF is clipped to [EPS, 1 - EPS] before the normal quantile (scores
#: within +-4.75): with 1e-4 (+-3.72) the highest and lowest 0.01 % of a large column's rows all
#: scored alike, so no sample reached them (diamonds' carat, 34,522 rows: none above 3.0 carat
#: in the samples, 18 rows in the training rows)
EPS = 1e-6
MAX_FIT_ROWS = 100_000


TAIL_KNOTS = 20  # knots below probability TAIL (and as many above 1 - TAIL): see quantile_probs
TAIL = 0.001


def quantile_probs(knots: int, smallest: float) -> np.ndarray:
    r"""``knots`` probabilities ``[knots]`` at which to take a column's quantiles: 0, then
    ``TAIL_KNOTS`` evenly spaced in normal score from ``smallest`` up to ``TAIL``, the rest
    evenly spaced up to ``1 - TAIL``, the mirror image above, 1. Evenly spaced from 0 to 1
    when ``smallest >= TAIL`` or ``knots`` are too few for tails.

    Quantiles interpolated linearly between evenly spaced probabilities treat the last
    ``TAIL`` of a column alike: a value drawn there falls anywhere between the 0.999
    quantile and the maximum, though nearly all of a long tail's rows lie close to the
    former. With knots spaced in normal score the tail keeps its shape.

    >>> p = quantile_probs(1001, 1e-6)
    >>> len(p), float(p[0]), float(p[21]), float(p[-1])
    (1001, 0.0, 0.001, 1.0)
    >>> bool(np.all(np.diff(p) > 0)), bool(np.allclose(p, 1 - p[::-1]))
    (True, True)
    """
    if smallest >= TAIL or knots < 4 * TAIL_KNOTS:
        return np.linspace(0.0, 1.0, knots)
    scores = np.linspace(ndtri(smallest), ndtri(TAIL), TAIL_KNOTS + 1)[:-1]
    tail = ndtr(scores)
    middle = np.linspace(TAIL, 1.0 - TAIL, knots - 2 * TAIL_KNOTS - 2)
    return np.concatenate([[0.0], tail, middle, 1.0 - tail[::-1], [1.0]])


def _subsample(
    values: np.ndarray, rng: np.random.Generator, limit: int = MAX_FIT_ROWS
) -> np.ndarray:
    return values if len(values) <= limit else rng.choice(values, limit, replace=False)


class ColumnTransform:
    """Base class; ``name`` keys the registry used by ``from_dict``."""

    name: ClassVar[str] = ""
    n_cont: int = 0
    cat_cardinalities: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.name, **self._state()}

    def continuous_in_use(self, cat: np.ndarray) -> np.ndarray | None:
        """Which rows' continuous slot value :meth:`inverse` reads, given their categorical
        slots ``cat`` ``[n, n_cat]`` -> bool ``[n]``; None when one monotone map of the slot
        cannot stand for the column (its meaning depends on a category). One slot only."""
        return np.ones(len(cat), dtype=bool)

    def read_level(self) -> int | None:
        """The level of the first categorical slot in whose rows the continuous slot is read
        (the others hold filler); None: read in every row."""
        return None

    def _state(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def from_dict(state: dict[str, Any]) -> ColumnTransform:
        state = dict(state)
        cls = TRANSFORMS[state.pop("type")]
        obj = cls.__new__(cls)
        obj._load(state)
        return obj


class QuantileNormal(ColumnTransform):
    """Empirical-CDF-to-normal transform (one continuous slot)."""

    name = "quantile"
    n_cont = 1

    def __init__(self, knots: int = 1000, dequantize: bool = False):
        self.num_knots, self.dequantize = knots, dequantize

    def _dequantized(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = values.astype(float)
        return x + rng.random(len(x)) - 0.5 if self.dequantize else x

    def fit(self, values: np.ndarray, rng: np.random.Generator) -> QuantileNormal:
        sub = np.sort(_subsample(self._dequantized(values, rng), rng))
        k = int(min(self.num_knots, max(len(sub), 2)))
        self.probs = quantile_probs(k, 1.0 / len(sub))
        self.knots = np.quantile(sub, self.probs)
        return self

    def forward(
        self, values: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        x = self._dequantized(values, rng)
        knots, probs = self.knots, self.probs
        left = np.searchsorted(knots, x, side="left")
        right = np.searchsorted(knots, x, side="right")
        last = len(knots) - 1
        # strictly between knots: linear interpolation of the CDF
        i = np.clip(left, 1, last)
        span = knots[i] - knots[i - 1]
        frac = np.where(span > 0, (x - knots[i - 1]) / np.where(span > 0, span, 1.0), 0.0)
        u = probs[i - 1] + np.clip(frac, 0.0, 1.0) * (probs[i] - probs[i - 1])
        # equal to several knots (a spike): uniform over the knots' probabilities, which the
        # inverse maps back to the tied value exactly
        tied = right > left
        lo = probs[np.clip(left, 0, last)]
        hi = probs[np.clip(right - 1, 0, last)]
        jitter = lo + rng.random(len(x)) * (hi - lo)
        u = np.where(tied, jitter, u)
        u = np.where(x < knots[0], 0.0, np.where(x > knots[-1], 1.0, u))
        y = ndtri(np.clip(u, EPS, 1.0 - EPS))
        return y[:, None], np.zeros((len(x), 0), dtype=np.int64)

    def inverse(self, cont: np.ndarray, cat: np.ndarray) -> np.ndarray:
        return np.interp(ndtr(cont[:, 0]), self.probs, self.knots)

    def _state(self) -> dict[str, Any]:
        return {
            "knots": self.knots.tolist(),
            "probs": self.probs.tolist(),
            "dequantize": self.dequantize,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.knots, self.probs = (
            np.asarray(state["knots"], float),
            np.asarray(state["probs"], float),
        )
        self.num_knots, self.dequantize = len(self.knots), bool(state["dequantize"])


class ModeSpecific(ColumnTransform):
    """Mode-specific normalisation: a 1-D Gaussian mixture fitted by EM (one mode slot and
    one within-mode slot). Components with weight below ``min_weight`` are pruned."""

    name = "mode_specific"
    n_cont = 1

    def __init__(self, max_modes: int = 10, min_weight: float = 0.005, iterations: int = 100):
        self.max_modes, self.min_weight, self.iterations = max_modes, min_weight, iterations

    def fit(self, values: np.ndarray, rng: np.random.Generator) -> ModeSpecific:
        x = _subsample(values.astype(float), rng, 20_000)
        spread = float(np.std(x)) or 1.0
        floor = 1e-3 * spread
        k = int(min(self.max_modes, max(len(np.unique(x)), 1)))
        mu = np.quantile(x, (np.arange(k) + 0.5) / k)
        sigma = np.full(k, spread / k + floor)
        weight = np.full(k, 1.0 / k)
        for _ in range(self.iterations):
            logp = -0.5 * ((x[:, None] - mu) / sigma) ** 2 - np.log(sigma) + np.log(weight)
            logp -= logp.max(axis=1, keepdims=True)
            resp = np.exp(logp)
            resp /= resp.sum(axis=1, keepdims=True)
            nk = resp.sum(axis=0) + 1e-10
            weight = nk / len(x)
            mu = (resp * x[:, None]).sum(axis=0) / nk
            sigma = np.sqrt((resp * (x[:, None] - mu) ** 2).sum(axis=0) / nk) + floor
        keep = weight >= self.min_weight
        self.means, self.stds = mu[keep], sigma[keep]
        self.weights = weight[keep] / weight[keep].sum()
        self.low, self.high = float(np.min(values)), float(np.max(values))
        self.cat_cardinalities = (len(self.means),)
        return self

    def _responsibilities(self, x: np.ndarray) -> np.ndarray:
        logp = (
            -0.5 * ((x[:, None] - self.means) / self.stds) ** 2
            - np.log(self.stds)
            + np.log(self.weights)
        )
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    def forward(
        self, values: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        x = values.astype(float)
        resp = self._responsibilities(x)
        mode = (
            (resp.cumsum(axis=1) < rng.random((len(x), 1))).sum(axis=1).clip(0, len(self.means) - 1)
        )
        alpha = np.clip((x - self.means[mode]) / (4 * self.stds[mode]), -0.99, 0.99)
        return alpha[:, None], mode[:, None].astype(np.int64)

    def continuous_in_use(self, cat: np.ndarray) -> None:
        return None  # the within-mode value means something else in each mode

    def inverse(self, cont: np.ndarray, cat: np.ndarray) -> np.ndarray:
        mode = cat[:, 0]
        x = np.clip(cont[:, 0], -1, 1) * 4 * self.stds[mode] + self.means[mode]
        return np.clip(x, self.low, self.high)

    def _state(self) -> dict[str, Any]:
        return {
            "means": self.means.tolist(),
            "stds": self.stds.tolist(),
            "weights": self.weights.tolist(),
            "low": self.low,
            "high": self.high,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.means = np.asarray(state["means"], float)
        self.stds = np.asarray(state["stds"], float)
        self.weights = np.asarray(state["weights"], float)
        self.low, self.high = state["low"], state["high"]
        self.cat_cardinalities = (len(self.means),)


class CategoricalCodes(ColumnTransform):
    """Level indices over the observed levels, sorted by their string form; NaN, when
    present, is one more level at the end."""

    name = "categorical"

    def fit(self, values: np.ndarray, rng: np.random.Generator | None = None) -> CategoricalCodes:
        missing = _isna(values)
        observed = values[~missing]
        levels = sorted({_plain(v) for v in observed}, key=lambda v: (str(type(v)), str(v)))
        self.levels: list[Any] = levels
        self.has_nan = bool(missing.any())
        self.cat_cardinalities = (len(levels) + int(self.has_nan),)
        return self

    def _lookup(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Level indices (-1: unknown), the missing mask and the known mask, each ``[n]``."""
        import pandas as pd

        codes = pd.Index(self.levels, dtype=object).get_indexer(pd.Index(values, dtype=object))
        missing = _isna(values)
        known = np.where(missing, self.has_nan, codes >= 0)
        return codes, missing, known

    def known(self, values: np.ndarray) -> np.ndarray:
        """True where a value is a level seen when fitting (or NaN, if NaN was seen) ``[n]``."""
        return self._lookup(values)[2]

    def encode(self, values: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """Codes ``[n]`` and the list of values that are not known levels."""
        import pandas as pd

        codes, missing, known = self._lookup(values)
        unseen = list(pd.unique(values[~known]))
        codes = np.where(missing, len(self.levels), np.maximum(codes, 0)).astype(np.int64)
        return codes, unseen

    def forward(
        self, values: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        codes, _ = self.encode(values)
        return np.zeros((len(values), 0)), codes[:, None]

    def inverse(self, cont: np.ndarray, cat: np.ndarray) -> np.ndarray:
        table = np.empty(len(self.levels) + 1, dtype=object)
        table[: len(self.levels)] = self.levels
        table[-1] = np.nan
        return table[np.clip(cat[:, 0], 0, len(self.levels))]

    def _state(self) -> dict[str, Any]:
        return {"levels": self.levels, "has_nan": self.has_nan}

    def _load(self, state: dict[str, Any]) -> None:
        self.levels, self.has_nan = list(state["levels"]), bool(state["has_nan"])
        self.cat_cardinalities = (len(self.levels) + int(self.has_nan),)


def _isna(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.isna(values), dtype=bool)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


TRANSFORMS: dict[str, type[ColumnTransform]] = {
    cls.name: cls for cls in (QuantileNormal, ModeSpecific, CategoricalCodes)
}
