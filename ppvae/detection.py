r"""Can a classifier tell synthetic rows from real ones, and what does it look at?

The detector is scikit-learn's gradient-boosted ``HistGradientBoostingClassifier`` (numbers as
floats, every other column as a category), trained to label real rows 0 and synthetic rows 1
on at most ``MAX_ROWS`` seeded rows of each, and scored by the ROC AUC on held-out rows of a
5-fold stratified cross-validation: 0.5 means indistinguishable, 1 means every row gives itself
away. With the defaults it is the bench's detector (``bench/metrics.py``), to the digit.

Why it succeeds:

- **Permutation importance**: on each held-out fold, the drop in the fitted detector's AUC
  when one column is shuffled (``sklearn.inspection.permutation_importance``), averaged over
  folds.
- **Per-column AUC**: the cross-validated AUC of a detector that sees one column alone
  (50 boosting rounds: enough for one or two columns); high when that column's distribution
  differs.
- **Per-pair AUC and lift**: the same for two columns together; the lift, pair AUC minus the
  larger of the two columns' AUCs, isolates what only their joint distribution gives away
  (a broken dependence).
- **Flagged rows**: the synthetic rows with the highest out-of-fold probability of being
  synthetic.

scikit-learn is an optional dependency: ``pip install 'ppvae[evaluate]'``. Native thread pools
run single-threaded (``one_thread``): next to torch's OpenMP pool on a small machine,
scikit-learn's spinning OpenMP threads slowed a 1,600-row fit from 1 s to minutes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_ROWS = 10_000  # rows of each side the detector sees
FOLDS = 5
EXPLAIN_ITER = 50  # boosting rounds of the one- and two-column detectors (the full one: 100)
MAX_LEVELS = 250  # more levels than this are merged into one (the detector bins at 255)
OTHER = "<other levels>"


def require_sklearn() -> None:
    """Raise a clear ImportError when scikit-learn (the ``evaluate`` extra) is missing."""
    try:
        import sklearn  # noqa: F401
        import threadpoolctl  # noqa: F401
    except ImportError:
        raise ImportError(
            "ppvae.evaluate needs scikit-learn: pip install 'ppvae[evaluate]' "
            "(or pip install scikit-learn)"
        ) from None


def one_thread(fn):
    """Run ``fn`` with native thread pools (OpenMP, BLAS) limited to one thread."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        require_sklearn()
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return wrapped


def is_numeric(s: pd.Series) -> bool:
    """Numbers and datetimes (booleans are categories)."""
    dtype = s.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return True
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def encode_features(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Numbers (and datetimes) as floats, everything else as one pandas category shared by all
    frames; a column with more than ``MAX_LEVELS`` levels keeps its most frequent ones and
    merges the rest into one level."""
    both = pd.concat(frames, keys=range(len(frames)))
    out = pd.DataFrame(index=both.index)
    for c in both.columns:
        col = both[c]
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            out[c] = col.astype("int64").astype(float).where(col.notna())
        elif is_numeric(col):
            out[c] = col.astype(float)
        else:
            text = col.astype(str)
            counts = text.value_counts()
            if len(counts) > MAX_LEVELS:
                text = text.where(text.isin(counts.index[:MAX_LEVELS]), OTHER)
            out[c] = text.astype("category")
    return [out.xs(i) for i in range(len(frames))]


def classifier(seed: int, max_iter: int = 100):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        categorical_features="from_dtype", max_iter=max_iter, random_state=seed
    )


@dataclass
class DetectionData:
    """The detector's input: ``x`` (2n rows: n real then n synthetic, encoded), labels ``y``
    (0 real, 1 synthetic), the same rows as given (``rows``) and the CV ``splits``."""

    x: pd.DataFrame
    y: np.ndarray
    rows: pd.DataFrame
    splits: list[tuple[np.ndarray, np.ndarray]]


def detection_data(
    real: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0, max_rows: int = MAX_ROWS
) -> DetectionData:
    """Seeded subsamples of n = min(len(real), len(synthetic), max_rows) rows of each side."""
    from sklearn.model_selection import StratifiedKFold

    n = min(len(real), len(synthetic), max_rows)
    r, s = real.sample(n, random_state=seed), synthetic.sample(n, random_state=seed)
    x = pd.concat(encode_features([r, s]), ignore_index=True)
    y = np.r_[np.zeros(n), np.ones(n)]
    # rows arrive shuffled by the sampling, so the folds need no shuffling (as cross_val_score)
    splits = list(StratifiedKFold(FOLDS).split(x, y))
    return DetectionData(x, y, pd.concat([r, s], ignore_index=True), splits)


def cross_validated(data: DetectionData, columns: list[str], seed: int = 0, max_iter: int = 100):
    """Fit a detector on ``columns`` in every fold: (fold AUCs, out-of-fold P(synthetic),
    fitted detectors)."""
    from sklearn.metrics import roc_auc_score

    x = data.x[columns]
    proba, aucs, fitted = np.empty(len(x)), [], []
    for train, test in data.splits:
        clf = classifier(seed, max_iter).fit(x.iloc[train], data.y[train])
        proba[test] = clf.predict_proba(x.iloc[test])[:, 1]
        aucs.append(float(roc_auc_score(data.y[test], proba[test])))
        fitted.append(clf)
    return aucs, proba, fitted


@dataclass
class Detection:
    """Detection AUC (mean over folds), out-of-fold ``proba`` (P(synthetic) per row of
    ``data``) and permutation ``importance`` (mean AUC drop per column, held-out folds)."""

    auc: float
    fold_aucs: list[float]
    proba: np.ndarray
    importance: pd.Series
    data: DetectionData

    def flagged(self, k: int = 10) -> pd.DataFrame:
        """The ``k`` synthetic rows most confidently flagged, with their probability."""
        synth = np.flatnonzero(self.data.y == 1)
        top = synth[np.argsort(-self.proba[synth], kind="stable")[:k]]
        rows = self.data.rows.iloc[top].reset_index(drop=True)
        return rows.assign(p_synthetic=self.proba[top])


@one_thread
def detect(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
    repeats: int = 3,
) -> Detection:
    """Cross-validated detection AUC of ``synthetic`` against ``real`` (same columns), with the
    permutation importance of each column (``repeats`` shuffles per held-out fold)."""
    from sklearn.inspection import permutation_importance

    data = detection_data(real, synthetic, seed=seed, max_rows=max_rows)
    columns = list(data.x.columns)
    aucs, proba, fitted = cross_validated(data, columns, seed)
    drops = np.zeros(len(columns))
    for clf, (_, test) in zip(fitted, data.splits):
        result = permutation_importance(
            clf,
            data.x.iloc[test],
            data.y[test],
            scoring="roc_auc",
            n_repeats=repeats,
            random_state=seed,
        )
        drops += result.importances_mean / len(data.splits)
    importance = pd.Series(drops, index=columns).sort_values(ascending=False)
    return Detection(float(np.mean(aucs)), aucs, proba, importance, data)


@one_thread
def detection_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0, max_rows: int = MAX_ROWS
) -> float:
    """The detection AUC alone (no importance): 0.5 means indistinguishable."""
    data = detection_data(real, synthetic, seed=seed, max_rows=max_rows)
    return float(np.mean(cross_validated(data, list(data.x.columns), seed)[0]))


@one_thread
def column_aucs(data: DetectionData, seed: int = 0) -> pd.Series:
    """Cross-validated AUC of a detector that sees one column alone, per column."""
    aucs = {
        c: float(np.mean(cross_validated(data, [c], seed, EXPLAIN_ITER)[0])) for c in data.x.columns
    }
    return pd.Series(aucs).sort_values(ascending=False)


@one_thread
def pair_aucs(
    data: DetectionData, pairs: list[tuple[str, str]], single: pd.Series, seed: int = 0
) -> pd.DataFrame:
    """Cross-validated AUC of a detector on each of ``pairs`` of columns, and its lift over the
    better of its two columns alone (``single``: per-column AUCs); sorted by lift."""
    rows = []
    for a, b in pairs:
        auc = float(np.mean(cross_validated(data, [a, b], seed, EXPLAIN_ITER)[0]))
        rows.append((a, b, auc, auc - max(single[a], single[b])))
    out = pd.DataFrame(rows, columns=["column_a", "column_b", "auc", "lift"])
    return out.sort_values("lift", ascending=False, ignore_index=True)
