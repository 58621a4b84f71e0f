"""Scores shared by the bench scripts: fidelity (sdmetrics), detection, ML efficacy, privacy,
and peak memory. Each takes real and synthetic DataFrames with the same columns.

scikit-learn's OpenMP runs single-threaded here (``one_thread``): next to torch's own OpenMP
pool on a busy 2-core machine, its spinning threads slowed a 1,600-row fit from 1 s to
minutes.
"""

from __future__ import annotations

import functools
import threading
import time
import warnings

import numpy as np
import pandas as pd
import psutil
from threadpoolctl import threadpool_limits


def one_thread(fn):
    """Run ``fn`` with native thread pools (OpenMP, BLAS) limited to one thread."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return wrapped


def is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and column.dtype != bool


def quality(real: pd.DataFrame, synth: pd.DataFrame) -> dict[str, float]:
    """sdmetrics QualityReport: Column Shapes and Column Pair Trends (0-1, higher is better)."""
    with warnings.catch_warnings():  # the single-table report's import warns it is deprecated
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

    meta = {
        "columns": {
            c: {"sdtype": "numerical" if is_numeric(real[c]) else "categorical"}
            for c in real.columns
        }
    }
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(real, synth[list(real.columns)], meta, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    return {
        "column_shapes": float(props["Column Shapes"]),
        "column_pair_trends": float(props["Column Pair Trends"]),
    }


def encode_features(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Numbers as floats, everything else as a shared pandas category (for gradient boosting)."""
    both = pd.concat(frames, keys=range(len(frames)))
    out = pd.DataFrame(index=both.index)
    for c in both.columns:
        out[c] = (
            both[c].astype(float) if is_numeric(both[c]) else both[c].astype(str).astype("category")
        )
    return [out.xs(i) for i in range(len(frames))]


@one_thread
def detection_auc(real: pd.DataFrame, synth: pd.DataFrame, seed: int = 0) -> float:
    """5-fold cross-validated ROC AUC of a gradient-boosted classifier telling real rows from
    synthetic ones (at most 10,000 of each); 0.5 means indistinguishable."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    n = min(len(real), len(synth), 10_000)
    r, s = encode_features([real.sample(n, random_state=seed), synth.sample(n, random_state=seed)])
    x = pd.concat([r, s], ignore_index=True)
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    return float(cross_val_score(clf, x, y, cv=5, scoring="roc_auc").mean())


@one_thread
def ml_efficacy(
    train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, seed: int = 0
) -> float:
    """Train a gradient-boosted model on ``train``, score on real ``test``: ROC AUC for a
    binary target, R^2 for regression."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import r2_score, roc_auc_score

    tr, te = encode_features([train, test])
    x_tr, x_te = tr.drop(columns=[target]), te.drop(columns=[target])
    if task == "regression":
        model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed)
        model.fit(x_tr, train[target].astype(float))
        return float(r2_score(test[target].astype(float), model.predict(x_te)))
    y_tr, y_te = train[target].astype(str), test[target].astype(str)
    if y_tr.nunique() < 2:
        return 0.5
    positive = sorted(y_te.unique())[-1]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    model.fit(x_tr, y_tr)
    if positive not in model.classes_:
        return 0.5
    proba = model.predict_proba(x_te)[:, list(model.classes_).index(positive)]
    return float(roc_auc_score(y_te == positive, proba))


def exact_copy_rate(source: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Share of ``source`` rows that appear verbatim in ``reference``."""
    keys = set(map(tuple, reference.astype(str).itertuples(index=False)))
    return float(
        np.mean([row in keys for row in map(tuple, source.astype(str).itertuples(index=False))])
    )


@one_thread
def privacy(
    train: pd.DataFrame, holdout: pd.DataFrame, synth: pd.DataFrame, seed: int = 0
) -> dict[str, float]:
    """Exact copies of training rows (synthetic vs a real holdout) and the median distance to
    the closest training record (DCR; standardised numbers, one-hot categories) of synthetic
    rows divided by that of holdout rows: below 1 means synthetic rows sit closer to training
    rows than new real rows do."""
    from sklearn.neighbors import NearestNeighbors

    ref = train.sample(min(len(train), 10_000), random_state=seed)
    m = min(2000, len(holdout), len(synth))
    frames = [ref, holdout.sample(m, random_state=seed), synth.sample(m, random_state=seed)]
    numeric = [c for c in train.columns if is_numeric(train[c])]
    both = pd.concat(frames, keys=range(3))
    feats = pd.get_dummies(both.drop(columns=numeric).astype(str)).astype(float)
    for c in numeric:
        col = both[c].astype(float)
        feats[c] = ((col - ref[c].mean()) / (ref[c].std() or 1.0)).fillna(0.0)
    f = [feats.xs(i).to_numpy() for i in range(3)]
    nn = NearestNeighbors(n_neighbors=1).fit(f[0])
    dcr_holdout = float(np.median(nn.kneighbors(f[1])[0]))
    dcr_synth = float(np.median(nn.kneighbors(f[2])[0]))
    return {
        "exact_copies": exact_copy_rate(synth, train),
        "exact_copies_holdout": exact_copy_rate(holdout, train),
        "dcr_synth": dcr_synth,
        "dcr_holdout": dcr_holdout,
        "dcr_ratio": dcr_synth / dcr_holdout if dcr_holdout else float("nan"),
    }


class PeakRSS:
    """Peak resident memory of this process while the block runs (polled every 20 ms)."""

    def __enter__(self) -> PeakRSS:
        self.proc, self.running = psutil.Process(), True
        self.base = self.peak = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def seen_levels_only(test: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``test`` whose categorical values all occur in ``train``: a model gives a level
    it never saw zero probability, so held-out likelihoods are scored on these rows."""
    keep = pd.Series(True, index=test.index)
    for c in test.columns:
        if not is_numeric(test[c]):
            keep &= test[c].isin(train[c].unique()) | test[c].isna()
    return test[keep]
