"""Scores shared by the bench scripts: fidelity (sdmetrics), detection, ML efficacy, privacy,
and peak memory. Each takes real and synthetic DataFrames with the same columns. Detection,
privacy and the SDMetrics scores are the library's (``ppvae.evaluate`` reports them too).

scikit-learn's OpenMP runs single-threaded here (``one_thread``): next to torch's own OpenMP
pool on a busy 2-core machine, its spinning threads slowed a 1,600-row fit from 1 s to
minutes.
"""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pandas as pd
import psutil
from threadpoolctl import threadpool_limits

from ppvae.detection import detection_auc, encode_features  # noqa: F401  (bench scripts use both)
from ppvae.privacy import exact_copy_rate, privacy_report  # noqa: F401  (fidelity.py: the rate)
from ppvae.quality import quality as sdmetrics_quality


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
    """SDMetrics' Column Shapes and Column Pair Trends (0-1, higher is better), and Pair
    Trends with the real table's bins (:func:`trends_real_bins`)."""
    q = sdmetrics_quality(real, synth)
    return {**q.scores(), "trends_real_bins": trends_real_bins(real, synth, q.trends)}


def trends_real_bins(real: pd.DataFrame, synth: pd.DataFrame, trends: pd.DataFrame) -> float:
    """Column Pair Trends over the pairs SDMetrics scored (``trends``: ``column_a``,
    ``column_b``, ``score``), with each number-category pair's contingency similarity taken
    on bins of the number computed from the real column and applied to both tables.

    SDMetrics 0.32 bins the number of such a pair over each table's own minimum to maximum
    (``np.histogram_bin_edges`` per table), so the score of a sample that misses one extreme
    real row (diamonds' ``table`` = 79) counts rows of the same value in different bins;
    its maintainers describe bins from the real data as the intended method
    (sdv-dev/SDMetrics#368). Every other pair keeps SDMetrics' own score.
    """
    from sdmetrics.column_pairs import ContingencySimilarity

    scores = []
    for a, b, score in trends[["column_a", "column_b", "score"]].itertuples(index=False):
        if pd.isna(score):  # the real association is below SDMetrics' threshold: not scored
            continue
        if is_numeric(real[a]) != is_numeric(real[b]):
            number, category = (a, b) if is_numeric(real[a]) else (b, a)
            edges = np.histogram_bin_edges(real[number].dropna())
            pair = [
                pd.DataFrame(
                    {"number": np.digitize(t[number], edges), "category": t[category].values}
                )
                for t in (real, synth)
            ]
            score = ContingencySimilarity.compute(pair[0], pair[1])
        scores.append(float(score))
    return float(np.mean(scores)) if scores else float("nan")


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


def privacy(
    train: pd.DataFrame, holdout: pd.DataFrame, synth: pd.DataFrame, seed: int = 0
) -> dict[str, float]:
    """Exact copies of training rows (synthetic vs a real holdout) and the DCR ratio:
    ``ppvae.privacy.privacy_report``."""
    report = privacy_report(train, synth, holdout, seed=seed)
    keys = ("exact_copies", "exact_copies_holdout", "dcr_synth", "dcr_holdout", "dcr_ratio")
    return {k: getattr(report, k) for k in keys}


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
