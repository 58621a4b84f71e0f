"""SDMetrics' quality report, when the optional ``sdmetrics`` package is installed: Column
Shapes (per column, 1 - KS statistic for numbers, 1 - total variation for categories) and
Column Pair Trends (per pair, 1 - half the difference of correlation or contingency tables),
both averaged, on [0, 1], higher is better."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

INSTALL_NOTE = (
    "sdmetrics is not installed (pip install sdmetrics): Column Shapes and Pair Trends skipped"
)


@dataclass
class Quality:
    """Overall scores, ``shapes`` per column and ``trends`` per pair (columns ``column_a``,
    ``column_b``, ``score``; worst first)."""

    column_shapes: float
    column_pair_trends: float
    shapes: pd.Series
    trends: pd.DataFrame

    def scores(self) -> dict[str, float]:
        return {"column_shapes": self.column_shapes, "column_pair_trends": self.column_pair_trends}


def sdtype(s: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime"
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    return "numerical" if numeric else "categorical"


def sdmetrics_available() -> bool:
    try:
        with warnings.catch_warnings():  # the single-table report's import warns it is deprecated
            warnings.simplefilter("ignore")
            import sdmetrics.reports.single_table  # noqa: F401
    except ImportError:
        return False
    return True


def quality(real: pd.DataFrame, synthetic: pd.DataFrame) -> Quality:
    """SDMetrics' QualityReport of ``synthetic`` against ``real`` (same columns); needs
    sdmetrics (see :func:`sdmetrics_available`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

    meta = {"columns": {c: {"sdtype": sdtype(real[c])} for c in real.columns}}
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(real, synthetic[list(real.columns)], meta, verbose=False)
        props = report.get_properties().set_index("Property")["Score"]
        shapes = report.get_details("Column Shapes").set_index("Column")["Score"]
        trends = report.get_details("Column Pair Trends")
    trends = trends.rename(
        columns={"Column 1": "column_a", "Column 2": "column_b", "Score": "score"}
    )
    trends = trends[["column_a", "column_b", "score"]].sort_values("score", ignore_index=True)
    return Quality(
        column_shapes=float(props["Column Shapes"]),
        column_pair_trends=float(props["Column Pair Trends"]),
        shapes=shapes.astype(float),
        trends=trends,
    )
