"""``evaluate``: how well synthetic rows pass for real ones, what gives them away, and whether
they copy the training rows; a report with numbers, figures, Markdown and JSON
(``ppvae evaluate`` on the command line). How to read it: ``docs/evaluate.md``.

>>> report = ppvae.evaluate(train, synthetic, holdout=test)
>>> print(report); report.columns; report.pairs; report.flagged; report.write("report/")
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ppvae.data.errors import DataError
from ppvae.detection import MAX_ROWS, column_aucs, detect, pair_aucs, require_sklearn
from ppvae.diagnostics.ppc import association, marginal_distance
from ppvae.numeric_grid import off_grid_share
from ppvae.privacy import PrivacyReport, privacy_report
from ppvae.quality import INSTALL_NOTE, Quality, quality, sdmetrics_available

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCREEN_COLUMNS = 15  # pairs among this many most important columns are screened by association
MIN_ROWS = 10  # rows per table: the detector's 5 folds need a few of each side
LIFT_NOTABLE = 0.02  # a pair "gives rows away" when it beats its better column by this much
MAX_COMBINATION_LEVELS = 50  # unseen combinations are counted for columns with fewer values
OFF_GRID_NOTABLE = 0.5  # a numeric column "gives rows away" when most values leave its grid
UNSEEN_NOTABLE = 0.01  # ... or when this share more of its values never occur in real rows
MAX_LEVEL_SHARE = 0.05  # unseen values are counted for columns with fewer distinct values


@dataclass
class SyntheticReport:
    """What :func:`evaluate` found.

    - ``detection_auc``: cross-validated AUC of the detector (0.5: indistinguishable).
    - ``columns``: per column (most important first): ``importance`` (permutation importance,
      AUC drop), ``auc`` (a detector on that column alone), ``marginal_distance`` (KS or total
      variation), ``grid_decimals`` / ``off_grid`` (decimals the real values are written with,
      share of synthetic values off that grid), ``unseen_values`` (share of synthetic values
      never seen in real rows, for columns with few distinct values; ``unseen_values_holdout``:
      the same for the holdout) and, with sdmetrics, ``shape_score``.
    - ``pairs``: pairs among the most important columns and the pairs whose association changed
      most: ``auc`` (a detector on the pair),
      ``lift`` (over its better column), ``association_real`` / ``association_synthetic``,
      ``unseen_combinations`` (share of synthetic rows pairing values never seen together).
    - ``flagged``: the synthetic rows most confidently flagged, with ``p_synthetic``.
    - ``quality`` / ``quality_holdout``: SDMetrics scores of the synthetic rows and of the real
      holdout (the noise floor), or None.
    - ``privacy``: exact copies and distances to the closest training row.
    """

    detection_auc: float
    fold_aucs: list[float]
    columns: pd.DataFrame
    pairs: pd.DataFrame
    flagged: pd.DataFrame
    privacy: PrivacyReport
    quality: Quality | None = None
    quality_holdout: Quality | None = None
    proba: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def giveaways(self) -> list[str]:
        """What gives the rows away, in words, strongest first."""
        out = []
        for name, row in self.columns.head(3).iterrows():
            if row["importance"] > 0.005 or row["auc"] > 0.55:
                out.append(
                    f"column {name!r}: permutation importance {row['importance']:.3f}, "
                    f"AUC alone {row['auc']:.3f}"
                )
        for _, row in self.pairs.iterrows():
            if row["lift"] >= LIFT_NOTABLE:
                out.append(
                    f"pair ({row['column_a']!r}, {row['column_b']!r}): AUC {row['auc']:.3f}, "
                    f"+{row['lift']:.3f} over its better column (association real "
                    f"{row['association_real']:.2f}, synthetic {row['association_synthetic']:.2f})"
                )
                if row["unseen_combinations"] > 0.01:
                    out[-1] += (
                        f"; {row['unseen_combinations']:.1%} of synthetic rows combine values "
                        "never seen together in real rows"
                    )
        for name, row in self.columns.iterrows():
            reference = row.get("unseen_values_holdout", 0.0)
            if row["unseen_values"] > (0.0 if np.isnan(reference) else reference) + UNSEEN_NOTABLE:
                out.append(
                    f"column {name!r}: {row['unseen_values']:.1%} of synthetic values never occur "
                    "in real rows"
                    + ("" if "unseen_values_holdout" not in row else f" (holdout: {reference:.1%})")
                )
            if row["off_grid"] > OFF_GRID_NOTABLE:
                out.append(
                    f"column {name!r}: {row['off_grid']:.0%} of synthetic values have more than "
                    f"the {int(row['grid_decimals'])} decimals real values are written with"
                )
        return out

    def headline(self) -> dict[str, str]:
        out = {
            "detection AUC": f"{self.detection_auc:.3f} (0.5: indistinguishable; 1: every row "
            "gives itself away)",
        }
        if self.quality is not None:
            ref = self.quality_holdout
            out["Column Shapes"] = f"{self.quality.column_shapes:.3f}" + (
                f" (real holdout: {ref.column_shapes:.3f})" if ref else ""
            )
            out["Column Pair Trends"] = f"{self.quality.column_pair_trends:.3f}" + (
                f" (real holdout: {ref.column_pair_trends:.3f})" if ref else ""
            )
        p = self.privacy
        out["exact copies of training rows"] = f"{p.exact_copies:.2%}" + (
            ""
            if math.isnan(p.exact_copies_holdout)
            else f" (real holdout: {p.exact_copies_holdout:.2%})"
        )
        if not math.isnan(p.dcr_holdout):
            out["DCR ratio"] = (
                f"{p.dcr_ratio:.3f} (median distance to the closest training row, synthetic "
                f"{p.dcr_synth:.3g} / holdout {p.dcr_holdout:.3g}; "
                + ("passes" if p.passed else "FAILS: " + "; ".join(p.problems))
                + ")"
            )
        return out

    def __str__(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.headline().items()]
        lines += ["what gives the rows away:"]
        lines += [f"  - {g}" for g in self.giveaways()] or ["  nothing stands out"]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict]:
            return json.loads(df.to_json(orient="records", date_format="iso"))

        columns = self.columns.reset_index(names="column")
        out = {
            "info": self.info,
            "detection_auc": self.detection_auc,
            "fold_aucs": self.fold_aucs,
            "giveaways": self.giveaways(),
            "columns": records(columns),
            "pairs": records(self.pairs),
            "flagged": records(self.flagged),
            "privacy": self.privacy.to_dict(),
            "notes": self.notes,
        }
        for key, q in (("quality", self.quality), ("quality_holdout", self.quality_holdout)):
            if q is not None:
                out[key] = {**q.scores(), "worst_pairs": records(q.trends.head(10))}
        return _plain(out)

    def plot(self) -> dict[str, Figure]:
        """Figures: ``columns`` (per-column AUC and permutation importance), ``pairs`` (pair
        AUC and lift) and ``scores`` (the detector's out-of-fold probabilities)."""
        import matplotlib.pyplot as plt  # on use: importing ppvae must not load pyplot

        figs: dict[str, Figure] = {}
        cols = self.columns.iloc[::-1]
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.32 * len(cols) + 1.4), sharey=True)
        axes[0].barh(cols.index.astype(str), cols["auc"] - 0.5, left=0.5, color="tab:red")
        axes[0].axvline(0.5, color="k", lw=0.8)
        axes[0].set(title="detector on one column: AUC", xlabel="AUC (0.5: no giveaway)")
        axes[1].barh(cols.index.astype(str), cols["importance"], color="tab:blue")
        axes[1].set(title="permutation importance", xlabel="AUC drop when shuffled")
        fig.suptitle(f"what gives synthetic rows away (detection AUC {self.detection_auc:.3f})")
        fig.tight_layout()
        figs["columns"] = fig

        if len(self.pairs):
            pairs = self.pairs.iloc[::-1]
            labels = [f"{a} × {b}" for a, b in zip(pairs["column_a"], pairs["column_b"])]
            fig, ax = plt.subplots(figsize=(7, 0.32 * len(pairs) + 1.4))
            ax.barh(labels, pairs["auc"] - 0.5, left=0.5, color="tab:gray", label="pair AUC")
            ax.barh(
                labels,
                pairs["lift"].clip(lower=0),
                left=pairs["auc"] - pairs["lift"].clip(lower=0),
                color="tab:orange",
                label="lift over its better column",
            )
            ax.axvline(0.5, color="k", lw=0.8)
            ax.set(title="detector on two columns", xlabel="AUC")
            ax.legend(loc="lower right")
            fig.tight_layout()
            figs["pairs"] = fig

        if self.proba:
            fig, ax = plt.subplots(figsize=(6, 3))
            bins = np.linspace(0, 1, 41)
            for name, color in (("real", "tab:blue"), ("synthetic", "tab:red")):
                ax.hist(self.proba[name], bins=bins, alpha=0.5, color=color, label=f"{name} rows")
            ax.set(
                title="detector's out-of-fold P(synthetic)",
                xlabel="P(synthetic)",
                ylabel="rows",
            )
            ax.legend()
            fig.tight_layout()
            figs["scores"] = fig
        return figs

    def to_markdown(self, figures: dict[str, str] | None = None) -> str:
        lines = ["# ppvae evaluate: synthetic against real rows", ""]
        lines += [f"- {k}: {v}" for k, v in self.info.items()]
        lines += ["", "## Headline", ""]
        lines += [f"- **{k}**: {v}" for k, v in self.headline().items()]
        lines += ["", "## What gives the rows away", ""]
        lines += [f"- {g}" for g in self.giveaways()] or ["Nothing stands out."]
        lines += [f"- note: {n}" for n in self.notes]
        lines += ["", "## Columns (most important to the detector first)", ""]
        lines += [_table(self.columns.reset_index(names="column"))]
        lines += ["", "## Pairs: among the most important columns, and most changed", ""]
        lines += [_table(self.pairs)]
        if self.quality is not None:
            lines += ["", "## Worst Column Pair Trends (SDMetrics)", ""]
            lines += [_table(self.quality.trends.head(10))]
        lines += ["", "## Synthetic rows most confidently flagged", ""]
        lines += [_table(self.flagged)]
        lines += ["", "## Privacy", "", "```", str(self.privacy), "```"]
        for name, path in (figures or {}).items():
            lines += ["", f"### {name}", "", f"![{name}]({path})"]
        lines += ["", "How to read this report: docs/evaluate.md in the ppvae repository."]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path, force: bool = False) -> Path:
        """Write ``report.md``, ``report.json`` and the figures (PNG) to ``out_dir``,
        atomically; returns the path of ``report.md``."""
        from ppvae.outputs import atomic_dir, check_target, save_figures

        target = check_target(out_dir, "report", force)
        with atomic_dir(target, "report", force) as tmp:
            paths = save_figures(self.plot(), tmp)
            (tmp / "report.md").write_text(self.to_markdown(paths), encoding="utf-8")
            (tmp / "report.json").write_text(
                json.dumps(self.to_dict(), indent=2, allow_nan=False), encoding="utf-8"
            )
        return target / "report.md"


def _plain(obj: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN as None (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _table(df: pd.DataFrame) -> str:
    def fmt(v: Any) -> str:
        if v is pd.NA:
            return ""
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else f"{v:.3f}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def unseen_combinations(real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str) -> float:
    """Share of ``synthetic`` rows whose values of ``a`` and ``b`` never occur together in
    ``real`` rows (a broken one-to-one relation shows here); NaN when either column has more
    than ``MAX_COMBINATION_LEVELS`` distinct real values."""
    if max(real[a].nunique(dropna=False), real[b].nunique(dropna=False)) > MAX_COMBINATION_LEVELS:
        return float("nan")
    seen = pd.MultiIndex.from_frame(real[[a, b]].astype(str))
    return float(1.0 - pd.MultiIndex.from_frame(synthetic[[a, b]].astype(str)).isin(seen).mean())


def unseen_values(real: pd.Series, other: pd.Series) -> float:
    """Share of ``other``'s values (missing included) that never occur in ``real``; NaN when
    ``real`` has more distinct values than ``MAX_LEVEL_SHARE`` of its rows (continuous)."""
    if real.nunique(dropna=False) > MAX_LEVEL_SHARE * len(real):
        return float("nan")
    return float(1.0 - other.astype(str).isin(set(real.astype(str))).mean())


def _check_tables(real: pd.DataFrame, tables: dict[str, pd.DataFrame | None]) -> None:
    for name, df in {"real": real, **tables}.items():
        if df is None:
            continue
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"the {name} table must be a pandas DataFrame, got {type(df).__name__}")
        if len(df) < MIN_ROWS:
            raise DataError(
                f"the {name} table has {len(df)} rows; evaluate needs {MIN_ROWS} or more"
            )
        missing = [c for c in real.columns if c not in df.columns]
        extra = [c for c in df.columns if c not in real.columns]
        if missing or extra:
            raise DataError(
                f"the {name} table's columns differ from the real table's: "
                f"missing {missing}, unexpected {extra}; pass tables with the same columns"
            )


def evaluate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    *,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
    top_columns: int = 6,
    top_pairs: int = 5,
    flagged: int = 10,
) -> SyntheticReport:
    """Detection AUC of ``synthetic`` against ``real`` rows and what drives it; privacy of
    ``synthetic`` against ``real`` as the training table (with a real ``holdout`` the model
    never saw: the holdout's distances and copies as the reference); SDMetrics' quality if
    installed.

    The detector uses at most ``max_rows`` (10,000) seeded rows of each table; the pairs
    scored are those among the ``top_columns`` most important columns and the ``top_pairs``
    others (among the 15 most important columns) whose association, real vs synthetic, changed
    most; ``flagged`` rows are listed. Needs
    scikit-learn (``pip install 'ppvae[evaluate]'``).
    """
    require_sklearn()
    if max_rows < MIN_ROWS:
        raise DataError(
            f"max_rows must be at least {MIN_ROWS} (rows of each table), got {max_rows}"
        )
    _check_tables(real, {"synthetic": synthetic, "holdout": holdout})
    cols = list(real.columns)
    synthetic = synthetic[cols]
    holdout = None if holdout is None else holdout[cols]

    found = detect(real, synthetic, seed=seed, max_rows=max_rows)
    data = found.data
    single = column_aucs(data, seed=seed)
    n = int(len(data.y) // 2)
    x_real, x_synth = data.x.iloc[:n], data.x.iloc[n:]
    rows_real, rows_synth = data.rows.iloc[:n], data.rows.iloc[n:]
    columns = pd.DataFrame(
        {"importance": found.importance, "auc": single}, index=found.importance.index
    )
    columns["marginal_distance"] = [marginal_distance(x_real[c], x_synth[c]) for c in columns.index]
    grid = [
        off_grid_share(rows_real[c], rows_synth[c])
        if pd.api.types.is_numeric_dtype(rows_real[c].dtype)
        and not pd.api.types.is_bool_dtype(rows_real[c].dtype)
        else (None, float("nan"))
        for c in columns.index
    ]
    columns["grid_decimals"] = pd.array([d for d, _ in grid], dtype="Int64")
    columns["off_grid"] = [share for _, share in grid]

    columns["unseen_values"] = [unseen_values(rows_real[c], rows_synth[c]) for c in columns.index]
    if holdout is not None:
        rows_holdout = holdout.sample(min(len(holdout), max_rows), random_state=seed)
        columns["unseen_values_holdout"] = [
            unseen_values(rows_real[c], rows_holdout[c]) for c in columns.index
        ]

    candidates = list(combinations(found.importance.index[:top_columns], 2))
    assoc = {
        (a, b): (association(x_real, a, b), association(x_synth, a, b))
        for a, b in combinations(columns.index[: max(SCREEN_COLUMNS, top_columns)], 2)
    }
    changed = sorted(assoc, key=lambda p: -abs(assoc[p][0] - assoc[p][1]))
    taken = {frozenset(p) for p in candidates}
    candidates += [p for p in changed if frozenset(p) not in taken][:top_pairs]
    pairs = pair_aucs(data, candidates, single, seed=seed)
    pairs["association_real"] = [assoc[(a, b)][0] for a, b in zip(pairs.column_a, pairs.column_b)]
    pairs["association_synthetic"] = [
        assoc[(a, b)][1] for a, b in zip(pairs.column_a, pairs.column_b)
    ]
    pairs["unseen_combinations"] = [
        unseen_combinations(rows_real, rows_synth, a, b)
        for a, b in zip(pairs.column_a, pairs.column_b)
    ]

    notes, q, q_holdout = [], None, None
    if sdmetrics_available():
        q = quality(rows_real, rows_synth)
        columns["shape_score"] = q.shapes.reindex(columns.index)
        if holdout is not None:
            q_holdout = quality(rows_real, rows_holdout)
    else:
        notes.append(INSTALL_NOTE)
    info = {
        "real rows": len(real),
        "synthetic rows": len(synthetic),
        "holdout rows": "none given" if holdout is None else len(holdout),
        "rows per side seen by the detector": n,
        "seed": seed,
    }
    return SyntheticReport(
        detection_auc=found.auc,
        fold_aucs=found.fold_aucs,
        columns=columns,
        pairs=pairs,
        flagged=found.flagged(flagged),
        privacy=privacy_report(real, synthetic, holdout, seed=seed),
        quality=q,
        quality_holdout=q_holdout,
        proba={"real": found.proba[:n], "synthetic": found.proba[n:]},
        info=info,
        notes=notes,
    )
