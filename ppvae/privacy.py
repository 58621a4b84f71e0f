r"""Do synthetic rows copy the training table? Exact copies and the distance to the closest
record (DCR), each set next to what a real holdout (rows the model never saw) scores.

- **Exact copies**: the share of rows equal, in every column, to some training row.
- **DCR**: the Euclidean distance from a row to its closest training row, with numbers
  standardised by the training mean and standard deviation and categories one-hot; the report
  gives the median over rows, for synthetic rows and for holdout rows, and their ratio
  :math:`\mathrm{median\,DCR}_{synth} / \mathrm{median\,DCR}_{holdout}`. Below 1, synthetic rows
  sit closer to training rows than new real rows do.
- **Copied identifiers**: for each column whose training values are all distinct (an ID, an
  e-mail...), the share of synthetic values that are training values.

The check (:attr:`PrivacyReport.passed`; ``ppvae sample --privacy-check``) fails when the DCR
ratio is below ``MIN_DCR_RATIO`` (0.9), or when synthetic rows copy training rows (or an
identifier column copies training values) more often than holdout rows do by more than
``COPY_MARGIN`` (1 percentage point). Details: ``docs/evaluate.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ppvae.data.errors import DataError

MIN_DCR_RATIO = 0.9
COPY_MARGIN = 0.01
MAX_TRAIN_ROWS = 10_000  # training rows searched for the closest record
MAX_QUERY_ROWS = 2_000  # synthetic and holdout rows whose DCR is measured
MIN_ID_ROWS = 20  # an "identifier" needs at least this many distinct training values


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _row_keys(df: pd.DataFrame) -> pd.Index:
    return pd.Index(map(tuple, df.astype(str).itertuples(index=False)))


def exact_copy_rate(source: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Share of ``source`` rows that appear verbatim (compared as text) in ``reference``."""
    if len(source) == 0:
        return 0.0
    return float(_row_keys(source).isin(_row_keys(reference)).mean())


def id_like_columns(train: pd.DataFrame) -> list[str]:
    """Columns whose training values are all distinct and not continuous numbers: text or
    integer identifiers."""
    out = []
    for c in train.columns:
        s = train[c].dropna()
        if len(s) < MIN_ID_ROWS or s.nunique() < len(s):
            continue
        floats = pd.api.types.is_float_dtype(s.dtype)
        if _is_numeric(s) and (floats or pd.api.types.is_datetime64_any_dtype(s.dtype)):
            continue
        out.append(str(c))
    return out


def _features(frames: list[pd.DataFrame], ref: pd.DataFrame) -> list[np.ndarray]:
    """Numbers standardised by ``ref``'s mean and std (missing: 0), other columns one-hot."""
    numeric = [c for c in ref.columns if _is_numeric(ref[c])]
    both = pd.concat(frames, keys=range(len(frames)))
    feats = pd.get_dummies(both.drop(columns=numeric).astype(str)).astype(float)
    for c in numeric:
        col = pd.to_numeric(both[c], errors="coerce").astype(float)
        std = ref[c].astype(float).std()
        feats[c] = ((col - ref[c].astype(float).mean()) / (std if std > 0 else 1.0)).fillna(0.0)
    return [feats.xs(i).to_numpy(float) for i in range(len(frames))]


def closest_distances(queries: np.ndarray, reference: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Euclidean distance from each row of ``queries`` (m, d) to its nearest row of
    ``reference`` (n, d); shape (m,)."""
    ref_sq = (reference**2).sum(1)
    out = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk]
        d2 = (q**2).sum(1)[:, None] + ref_sq[None, :] - 2.0 * q @ reference.T
        out[start : start + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


@dataclass
class PrivacyReport:
    """Copies and closeness of synthetic rows to training rows, next to a real holdout's.

    ``*_holdout`` fields and ``dcr_ratio`` are NaN when no holdout was given; ``dcr_ratio`` is
    NaN too when the holdout's median DCR is 0 (the training table repeats its rows), and the
    check then rests on exact copies.
    """

    exact_copies: float
    exact_copies_holdout: float
    dcr_synth: float
    dcr_holdout: float
    dcr_ratio: float
    id_copies: dict[str, float] = field(default_factory=dict)
    id_copies_holdout: dict[str, float] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """Why the check fails (empty when it passes or no holdout was given)."""
        out = []
        if math.isnan(self.exact_copies_holdout):
            return out
        if self.dcr_ratio < MIN_DCR_RATIO:
            out.append(
                f"synthetic rows sit closer to training rows than holdout rows do: median "
                f"distance to the closest training row {self.dcr_synth:.3g} vs "
                f"{self.dcr_holdout:.3g} (ratio {self.dcr_ratio:.2f} < {MIN_DCR_RATIO})"
            )
        if self.exact_copies > self.exact_copies_holdout + COPY_MARGIN:
            out.append(
                f"{self.exact_copies:.1%} of synthetic rows copy a training row exactly, "
                f"against {self.exact_copies_holdout:.1%} of holdout rows"
            )
        for c, share in self.id_copies.items():
            if share > self.id_copies_holdout.get(c, 0.0) + COPY_MARGIN:
                out.append(
                    f"identifier column {c!r} (all training values distinct) copies training "
                    f"values in {share:.1%} of synthetic rows"
                )
        return out

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "problems": self.problems}

    def __str__(self) -> str:
        lines = [f"exact copies of training rows: {self.exact_copies:.2%} of synthetic rows"]
        if not math.isnan(self.exact_copies_holdout):
            lines[0] += f" (holdout: {self.exact_copies_holdout:.2%})"
            lines.append(
                f"median distance to the closest training row: {self.dcr_synth:.3g} "
                f"(holdout: {self.dcr_holdout:.3g}; ratio {self.dcr_ratio:.2f}, "
                f">= {MIN_DCR_RATIO} passes)"
            )
        for c, share in self.id_copies.items():
            lines.append(f"identifier {c!r}: {share:.1%} of synthetic values are training values")
        lines += [f"FAILS: {p}" for p in self.problems]
        return "\n".join(lines)


def privacy_report(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    seed: int = 0,
) -> PrivacyReport:
    """Exact copies of ``train`` rows and distances to the closest ``train`` record, for
    ``synthetic`` rows and (if given) for real ``holdout`` rows the model never saw.

    Distances use at most 10,000 training rows and 2,000 rows of each of ``synthetic`` and
    ``holdout`` (the same number of each; seeded subsamples); exact copies use every row.
    """
    frames = {"synthetic": synthetic} | ({} if holdout is None else {"holdout": holdout})
    for name, df in frames.items():
        missing = [c for c in train.columns if c not in df.columns]
        if missing:
            raise DataError(
                f"the {name} table lacks the training columns {missing}; pass tables with the "
                "same columns"
            )
    if len(train) == 0 or len(synthetic) == 0 or (holdout is not None and len(holdout) == 0):
        raise DataError("privacy_report needs non-empty training, synthetic and holdout tables")
    cols = list(train.columns)
    synthetic = synthetic[cols]
    ref = train.sample(min(len(train), MAX_TRAIN_ROWS), random_state=seed)
    m = min([MAX_QUERY_ROWS, len(synthetic)] + ([] if holdout is None else [len(holdout)]))
    queries = [synthetic.sample(m, random_state=seed)]
    if holdout is not None:
        holdout = holdout[cols]
        queries.append(holdout.sample(m, random_state=seed))
    feats = _features([ref, *queries], ref)
    dcr = [float(np.median(closest_distances(f, feats[0]))) for f in feats[1:]]
    ids = id_like_columns(train)

    def id_copies(df: pd.DataFrame) -> dict[str, float]:
        return {c: float(df[c].dropna().isin(train[c]).mean()) for c in ids}

    nan = float("nan")
    if holdout is None:
        return PrivacyReport(
            exact_copy_rate(synthetic, train), nan, dcr[0], nan, nan, id_copies(synthetic)
        )
    return PrivacyReport(
        exact_copies=exact_copy_rate(synthetic, train),
        exact_copies_holdout=exact_copy_rate(holdout, train),
        dcr_synth=dcr[0],
        dcr_holdout=dcr[1],
        dcr_ratio=dcr[0] / dcr[1] if dcr[1] > 0 else nan,
        id_copies=id_copies(synthetic),
        id_copies_holdout=id_copies(holdout),
    )
