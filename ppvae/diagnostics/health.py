r"""The post-fit health check: did the fit end collapsed?

``TabularVAE.fit`` runs it on (a subsample of) the training rows and stores the result as
``vae.health_``; a failing check warns (``UserWarning``, shown by the CLI on stderr) with
what to try. Two signs, each measured with ppvae's own diagnostics:

- **no active unit** (:mod:`ppvae.diagnostics.collapse`): no latent dimension has
  :math:`\operatorname{Cov}_x(\mathbb{E}_q[z_d\mid x]) > 0.01`, so the decoder ignores z and
  every column is sampled independently of the others — a failure only when the data has a
  strong association (below): each marginal is already normal after ppvae's transforms, so
  a table of independent columns is rightly fitted without z;
- **lost dependence**: the ``TOP_PAIRS`` most associated column pairs of the real rows
  (bias-corrected Cramér's V, Bergsma 2013, on the columns binned into at most ``BINS``
  quantile bins / most frequent levels), among those with :math:`V \ge` ``STRONG``, keep on
  average less than ``KEPT`` of their association in as many sampled rows.

Generated identifier columns are left out of the pairs (they carry no dependence).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ppvae.diagnostics.collapse import ACTIVE_THRESHOLD, activity
from ppvae.diagnostics.latent import encode

MAX_ROWS = 2000
BINS = 5
TOP_PAIRS = 3
STRONG = 0.3
KEPT = 0.5


@dataclass
class Health:
    """The post-fit check's numbers and verdict."""

    active_units: int | None  # None: not measured (a model without an encoder, < 2 rows)
    latent_dim: int
    pairs: list[tuple[str, str, float, float]] = field(
        default_factory=list
    )  # a, b, V real, V synth

    @property
    def collapsed(self) -> bool:
        """No active unit while the data has a strong association for z to carry (without one,
        independent columns are the right model and z is rightly unused)."""
        return self.active_units == 0 and bool(self.pairs)

    @property
    def dependence_kept(self) -> float:
        """Mean ratio V(samples) / V(real) over the strongest pairs (1.0 when there are none)."""
        if not self.pairs:
            return 1.0
        return float(np.mean([min(s / r, 1.0) for _, _, r, s in self.pairs]))

    @property
    def lost_dependence(self) -> bool:
        return self.dependence_kept < KEPT

    @property
    def ok(self) -> bool:
        return not (self.collapsed or self.lost_dependence)

    def message(self) -> str:
        """One paragraph: what was found and what to try."""
        found = []
        if self.collapsed:
            found.append(
                f"no active latent unit (0 of {self.latent_dim}): the decoder ignores z, so the "
                "columns are sampled independently of each other"
            )
        if self.lost_dependence:
            shown = ", ".join(f"{a}~{b} {r:.2f}->{s:.2f}" for a, b, r, s in self.pairs)
            found.append(
                f"the samples keep {self.dependence_kept:.0%} of the strongest associations of "
                f"the data (Cramér's V real->sampled: {shown})"
            )
        if not found:
            units = "?" if self.active_units is None else self.active_units
            return f"healthy: {units} of {self.latent_dim} latent units active"
        return (
            "the fitted model looks collapsed: "
            + "; ".join(found)
            + ". Try objective={'name': 'free_bits', 'nats_per_dim': 0.25}, more training "
            "steps (a smaller batch_size, patience=None with more epochs), or drop columns that identify rows; ppvae.diagnose(vae, df) shows "
            "the details."
        )

    def __str__(self) -> str:
        return self.message()

    def to_dict(self) -> dict:
        return {
            "active_units": self.active_units,
            "latent_dim": self.latent_dim,
            "pairs": [list(p) for p in self.pairs],
            "ok": self.ok,
        }


def _codes(series: pd.Series, bins: int = BINS) -> np.ndarray:
    """Small integer codes ``[n]``: quantile bins of a number, the top levels of the rest."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        edges = np.unique(np.nanquantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        return np.where(np.isnan(values), len(edges) + 1, np.searchsorted(edges, values))
    text = series.astype(str)
    top = text.value_counts().index[: bins - 1]
    return np.where(text.isin(top), pd.Index(top).get_indexer(text), bins - 1)


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) of two code arrays ``[n]``, in [0, 1]."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    r, k, n = ai.max() + 1, bi.max() + 1, len(a)
    if r < 2 or k < 2 or n < 2:
        return 0.0
    table = np.bincount(ai * k + bi, minlength=r * k).reshape(r, k).astype(float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    phi2 = float(((table - expected) ** 2 / expected).sum()) / n
    phi2 = max(0.0, phi2 - (r - 1) * (k - 1) / (n - 1))
    r_c, k_c = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denom = min(r_c - 1, k_c - 1)
    return float(np.sqrt(phi2 / denom)) if denom > 0 else 0.0


def strongest_pairs(
    real: pd.DataFrame, synth: pd.DataFrame, top: int = TOP_PAIRS, strong: float = STRONG
) -> list[tuple[str, str, float, float]]:
    """The ``top`` column pairs of ``real`` with the highest V (at least ``strong``), with their
    V in ``synth``: ``[(a, b, v_real, v_synth), ...]``."""
    cols = list(real.columns)
    rc = {c: _codes(real[c]) for c in cols}
    found = []
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            v = cramers_v(rc[a], rc[b])
            if v >= strong:
                found.append((a, b, v))
    found = sorted(found, key=lambda t: -t[2])[:top]
    return [(str(a), str(b), v, cramers_v(_codes(synth[a]), _codes(synth[b]))) for a, b, v in found]


def _modelled(df: pd.DataFrame, transformer, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` seeded rows of ``df``, prepared, without identifier columns."""
    rows = df.sample(max_rows, random_state=seed) if len(df) > max_rows else df
    kinds = {c.name: c.kind for c in transformer.schema_.columns}
    modelled = [c for c in rows.columns if kinds.get(c) != "identifier"]
    return transformer.prepare(rows)[modelled]


def has_strong_pairs(
    df: pd.DataFrame, transformer, max_rows: int = MAX_ROWS, seed: int = 0
) -> bool:
    """Whether the rows :func:`check_health` reads have a column pair with V >= ``STRONG``,
    the association that makes a code without an active unit a collapse (``transformer``:
    fitted on ``df``)."""
    rows = _modelled(df, transformer, max_rows, seed)
    return len(rows.columns) > 1 and len(rows) >= 20 and bool(strongest_pairs(rows, rows, top=1))


def check_health(
    vae, df: pd.DataFrame, max_rows: int = MAX_ROWS, seed: int = 0, warn: bool = True
) -> Health:
    """Encode and sample at most ``max_rows`` rows of the fitted ``vae`` and judge them;
    ``warn``: a ``UserWarning`` with :meth:`Health.message` when the check fails."""
    rows = df.sample(max_rows, random_state=seed) if len(df) > max_rows else df
    active = None
    if len(rows) >= 2:
        try:
            enc = encode(vae, rows, max_rows=max_rows, seed=seed)
        except (AttributeError, NotImplementedError):  # a custom model without an encoder
            enc = None
        if enc is not None:
            active = int((activity(enc.loc) > ACTIVE_THRESHOLD).sum())
    real = _modelled(df, vae.transformer_, max_rows, seed)
    pairs = []
    if len(real.columns) > 1 and len(real) >= 20:
        synth = vae.sample(len(real), seed=seed)
        pairs = strongest_pairs(real, synth[list(real.columns)])
    health = Health(active_units=active, latent_dim=int(vae.latent_dim), pairs=pairs)
    if warn and not health.ok:
        warnings.warn(health.message(), UserWarning, stacklevel=3)
    return health
