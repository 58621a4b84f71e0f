"""Imputation, its calibration, and conditional sampling, on the four shared tables (issue 11).

    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=. python bench/impute.py select  # rate, on val
    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=. python bench/impute.py          # the report
    ... bench/impute.py conditional  # only the Adult conditional part (+ reliability), then write
    ... bench/impute.py write        # bench/results/impute.md from the CSVs of the runs

Each table: a seeded subsample of ROWS rows, the shared 80/20 split (bench/tables.py); 20% of
the holdout's cells masked completely at random (seeded; the masks are saved under
bench/results/impute_masks/). Every method learns from the complete training part and fills
the masked holdout cells; scores are on the masked cells only: numeric RMSE / the column's
range (from the training part), categorical accuracy. Methods: mean/mode, scikit-learn's
IterativeImputer (default: BayesianRidge), IterativeImputer(ExtraTreesRegressor(10 trees))
(the MissForest stand-in of scikit-learn's own example), and ppvae (20 imputations; the best
guess is the draws' mean / most frequent level, and single draws are scored too).

``select`` chooses the default ``input_mask_rate`` on a validation split carved out of the
training part (never the holdout) and records what each rate costs unconditional fidelity.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from metrics import detection_auc, one_thread, quality
from tables import RESULTS, load, ppvae_options, setup, split

import ppvae
from ppvae.imputation import imputation_intervals, point_estimate

TABLES = ["adult", "default", "shoppers", "diamonds"]
ROWS = 3_000
EPOCHS = 40  # a cap (early stopping may end sooner): 2 CPU cores shared by 5 busy sessions
MASK_SHARE = 0.2
DRAWS = 20
RATES = [0.0, 0.1, 0.25, 0.5]
MASKS = RESULTS / "impute_masks"


def numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def mcar_mask(df: pd.DataFrame, seed: int, name: str | None = None) -> pd.DataFrame:
    """True where a cell is hidden: each cell independently with probability MASK_SHARE;
    saved (0/1 CSV) when ``name`` is given."""
    rng = np.random.default_rng(seed)
    mask = pd.DataFrame(rng.random(df.shape) < MASK_SHARE, columns=df.columns)
    if name:
        MASKS.mkdir(parents=True, exist_ok=True)
        mask.astype(int).to_csv(MASKS / f"{name}.csv.gz", index=False)
    return mask


def fit_vae(name: str, train: pd.DataFrame, **options) -> ppvae.TabularVAE:
    opts = ppvae_options(name, epochs=EPOCHS, missing_values=[], **options)
    return ppvae.TabularVAE(**opts).fit(train)


def score(
    true: pd.DataFrame, guess: pd.DataFrame, mask: pd.DataFrame, ranges: dict
) -> dict[str, float]:
    """Mean over columns of RMSE/range (numeric) and accuracy (categorical), masked cells."""
    rmse, acc = [], []
    for c in true.columns:
        m = mask[c].to_numpy()
        if not m.any():
            continue
        if numeric(true[c]):
            err = true[c].to_numpy(float)[m] - guess[c].to_numpy(float)[m]
            rmse.append(np.sqrt(np.mean(err**2)) / ranges[c])
        else:
            acc.append(
                np.mean(true[c].astype(str).to_numpy()[m] == guess[c].astype(str).to_numpy()[m])
            )
    return {"nrmse": float(np.mean(rmse)), "accuracy": float(np.mean(acc)) if acc else np.nan}


# -- the contenders ----------------------------------------------------------------------
def mean_mode(train: pd.DataFrame, masked: pd.DataFrame) -> pd.DataFrame:
    out = masked.copy()
    for c in masked.columns:
        fill = train[c].mean() if numeric(train[c]) else train[c].mode().iloc[0]
        out[c] = masked[c].astype(object).where(masked[c].notna(), fill)
    return out


@one_thread
def iterative(train: pd.DataFrame, masked: pd.DataFrame, trees: bool) -> pd.DataFrame:
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    codes = {}
    enc_train, enc_masked = pd.DataFrame(index=train.index), pd.DataFrame(index=masked.index)
    for c in train.columns:
        if numeric(train[c]):
            enc_train[c], enc_masked[c] = train[c].astype(float), masked[c].astype(float)
        else:
            levels = sorted(train[c].astype(str).unique())
            codes[c] = levels
            lookup = {v: i for i, v in enumerate(levels)}
            enc_train[c] = train[c].astype(str).map(lookup).astype(float)
            enc_masked[c] = masked[c].astype(str).map(lookup).where(masked[c].notna())
    estimator = ExtraTreesRegressor(n_estimators=10, random_state=0) if trees else None
    imputer = IterativeImputer(estimator=estimator, random_state=0).fit(enc_train.to_numpy())
    filled = pd.DataFrame(imputer.transform(enc_masked.to_numpy()), columns=train.columns)
    out = pd.DataFrame(index=masked.index)
    for c in train.columns:
        if c in codes:
            idx = np.clip(np.round(filled[c].to_numpy()), 0, len(codes[c]) - 1).astype(int)
            out[c] = np.asarray(codes[c], dtype=object)[idx]
        else:
            out[c] = filled[c].to_numpy()
    return out


# -- the report -----------------------------------------------------------------------------
def coverage(true: pd.DataFrame, lo: pd.DataFrame, hi: pd.DataFrame, mask: pd.DataFrame) -> float:
    hits = []
    for c in lo.columns:
        m = mask[c].to_numpy()
        x = true[c].to_numpy(float)[m]
        hits.append((lo[c].to_numpy(float)[m] <= x) & (x <= hi[c].to_numpy(float)[m]))
    return float(np.mean(np.concatenate(hits)))


def reliability(true: pd.DataFrame, draws: pd.DataFrame, mask: pd.DataFrame) -> pd.DataFrame:
    """(predicted frequency, observed) pairs of every level of every masked categorical cell,
    the predicted frequency being the share of the draws holding the level."""
    rows = []
    for c in true.columns:
        if numeric(true[c]) or not mask[c].any():
            continue
        m = np.flatnonzero(mask[c].to_numpy())
        values = draws[c].astype(str).to_numpy().reshape(DRAWS, len(true))[:, m]  # [draws, cells]
        levels = np.unique(np.concatenate([values.ravel(), true[c].astype(str).to_numpy()[m]]))
        truth = true[c].astype(str).to_numpy()[m]
        for level in levels:
            p = (values == level).mean(0)
            rows.append(pd.DataFrame({"predicted": p, "observed": (truth == level).astype(float)}))
    return pd.concat(rows, ignore_index=True)


def impute_table(name: str) -> tuple[list[dict], dict, pd.DataFrame]:
    df = load(name, rows=ROWS)
    train, holdout = split(df, seen_levels=True)
    mask = mcar_mask(holdout, seed=11, name=name)
    masked = holdout.mask(mask)
    ranges = {c: float(train[c].max() - train[c].min()) or 1.0 for c in train if numeric(train[c])}
    out = []
    for method in ("mean/mode", "IterativeImputer", "IterativeImputer(ExtraTrees)"):
        t = time.perf_counter()
        if method == "mean/mode":
            guess = mean_mode(train, masked)
        else:
            guess = iterative(train, masked, trees="Extra" in method)
        seconds = time.perf_counter() - t
        out.append(
            {
                "table": name,
                "method": method,
                **score(holdout, guess, mask, ranges),
                "seconds": seconds,
            }
        )
    t = time.perf_counter()
    vae = fit_vae(name, train)
    fit_seconds = time.perf_counter() - t
    t = time.perf_counter()
    draws = vae.impute(masked, num_imputations=DRAWS, seed=0)
    impute_seconds = time.perf_counter() - t
    best = point_estimate(draws).reset_index(drop=True)
    single = draws.xs(0, level="imputation").reset_index(drop=True)
    total = fit_seconds + impute_seconds
    out.append(
        {
            "table": name,
            "method": "ppvae (best guess)",
            **score(holdout, best, mask, ranges),
            "seconds": total,
        }
    )
    out.append(
        {
            "table": name,
            "method": "ppvae (one draw)",
            **score(holdout, single, mask, ranges),
            "seconds": total,
        }
    )
    lo, hi = imputation_intervals(draws, 0.9)
    lo, hi = lo.reset_index(drop=True), hi.reset_index(drop=True)
    ess = np.asarray(draws.attrs["inference"]["ess"])
    calib = {
        "table": name,
        "coverage_90": coverage(holdout, lo, hi, mask),
        "masked_numeric_cells": int(sum(mask[c].sum() for c in lo.columns)),
        "ess_median": float(np.median(ess)),
        "ess_below_20": float(np.mean(ess < 20)),
        "fit_seconds": fit_seconds,
        "impute_seconds": impute_seconds,
        "epochs_run": int(len(vae.history_)),
    }
    rel = reliability(holdout, draws.reset_index(drop=True), mask).assign(table=name)
    cost = []
    if name in ("adult", "shoppers"):  # what the proposal phase costs: the same fit without it
        plain = fit_vae(name, train, input_mask_rate=0.0)
        for rate, model in ((0.0, plain), (vae.input_mask_rate, vae)):
            cost.append({"table": name, "input_mask_rate": rate, **fidelity(model, holdout)})
        same = plain.sample(2000, seed=5).equals(vae.sample(2000, seed=5))
        cost[-1]["identical_samples_to_rate_0"] = same
    return out, calib, rel, cost


# -- conditional sampling on Adult ----------------------------------------------------------
def rejection(vae, condition, n: int, budget_s: float) -> tuple[float, int, int]:
    """Seconds to collect ``n`` rows satisfying ``condition`` by sampling the model and
    keeping matches (stops at ``budget_s``): (seconds, rows found, rows drawn)."""
    t, found, drawn = time.perf_counter(), 0, 0
    while found < n and time.perf_counter() - t < budget_s:
        rows = vae.sample(20_000)
        keep = np.ones(len(rows), dtype=bool)
        for c, v in condition.items():
            keep &= rows[c].to_numpy() == v
        found, drawn = found + int(keep.sum()), drawn + len(rows)
    return time.perf_counter() - t, found, drawn


def conditional(n: int = 1_000) -> list[dict]:
    full = load("adult")
    counts = full["native-country"].value_counts()
    single = counts[counts == 1].index[0]  # a level of one row in the whole table
    df = load("adult", rows=ROWS * 3)
    train, _ = split(df, seen_levels=True)
    if not (train["native-country"] == single).any():  # keep that one row in training
        train = pd.concat([train, full[full["native-country"] == single]], ignore_index=True)
    vae = fit_vae("adult", train)
    conditions = {
        "sex=Female": {"sex": "Female"},
        "education=Doctorate & sex=Female": {"education": "Doctorate", "sex": "Female"},
        f"native-country={single} (1 row)": {"native-country": single},
    }
    out = []
    for label, cond in conditions.items():
        real = train
        for c, v in cond.items():
            real = real[real[c] == v]
        t = time.perf_counter()
        rows = vae.sample(n, given=cond, seed=0)
        seconds = time.perf_counter() - t
        ok = np.ones(len(rows), dtype=bool)
        for c, v in cond.items():
            ok &= rows[c].to_numpy() == v
        row = {
            "condition": label,
            "real_rows": len(real),
            "prevalence": len(real) / len(train),
            "satisfied": float(ok.mean()),
            "ess": float(rows.attrs["inference"]["ess"][0]),
            "particles": int(rows.attrs["inference"]["particles"][0]),
            "seconds_ppvae": seconds,
        }
        if len(real) >= 200:
            free = [c for c in train.columns if c not in cond]
            row.update(
                {f"{k} (free columns)": v for k, v in quality(real[free], rows[free]).items()}
            )
        rs, found, drawn = rejection(vae, cond, n, budget_s=30.0)
        row.update({"seconds_rejection": rs, "rejection_found": found, "rejection_drawn": drawn})
        if found < n:  # extrapolate at the observed rate (or the real prevalence when none)
            rate = found / drawn if found else row["prevalence"]
            row["seconds_rejection"] = rs * n / max(rate * drawn, 1e-9)
            row["rejection_extrapolated"] = True
        row["speedup"] = row["seconds_rejection"] / seconds
        out.append(row)
    return out


# -- the mask rate ---------------------------------------------------------------------------
def fidelity(vae, real: pd.DataFrame) -> dict[str, float]:
    synth = vae.sample(len(real), seed=1)
    return {**quality(real, synth), "detection_auc": detection_auc(real, synth)}


def select_rate() -> None:
    """Impute score on a validation split of the training part, and unconditional fidelity,
    per input_mask_rate (adult, shoppers)."""
    rows = []
    for name in ("adult", "shoppers"):
        train, _ = split(load(name, rows=ROWS), seen_levels=True)
        fit, val = split(train, seen_levels=True, seed=1)
        mask = mcar_mask(val, seed=12)
        masked = val.mask(mask)
        ranges = {c: float(fit[c].max() - fit[c].min()) or 1.0 for c in fit if numeric(fit[c])}
        for rate in RATES:
            vae = fit_vae(name, fit, input_mask_rate=rate)
            best = point_estimate(vae.impute(masked, num_imputations=DRAWS, seed=0))
            row = {"table": name, "input_mask_rate": rate}
            row.update(score(val, best.reset_index(drop=True), mask, ranges))
            row.update(fidelity(vae, val))
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / "impute_rate.csv", index=False)


def markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A pipe table (no tabulate dependency)."""

    def cell(v) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def write(
    results: pd.DataFrame,
    calib: pd.DataFrame,
    rel: pd.DataFrame,
    cond: pd.DataFrame,
    cost: pd.DataFrame,
) -> None:
    bins = np.linspace(0, 1, 11)
    rel["bin"] = pd.cut(rel["predicted"], bins, include_lowest=True)
    table = rel.groupby("bin", observed=True).agg(
        pairs=("observed", "size"),
        mean_predicted=("predicted", "mean"),
        observed=("observed", "mean"),
    )
    ece = float(
        (table["pairs"] * (table["mean_predicted"] - table["observed"]).abs()).sum()
        / table["pairs"].sum()
    )
    results.to_csv(RESULTS / "impute.csv", index=False)
    lines = [
        "# Imputation, calibration and conditional sampling (issue 11)",
        "",
        f"`nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=. python bench/impute.py`: each table a "
        f"seeded {ROWS}-row subsample, shared 80/20 split, {MASK_SHARE:.0%} of holdout cells "
        "masked completely at random (masks: bench/results/impute_masks/), scored on masked "
        f"cells only. ppvae: default options, epochs capped at {EPOCHS} (early stopping), "
        f"{DRAWS} imputations; 'best guess' = mean of draws (numeric) / most frequent level "
        "(categorical), 'one draw' = imputation 0. Seconds: fit + impute. 2 shared CPU cores.",
        "",
        "## Accuracy (numeric RMSE / range: lower is better; categorical accuracy: higher)",
        "",
        markdown(results, 4),
        "",
        "## Calibration of the 20 draws",
        "",
        "90% intervals = 5%/95% quantiles of the 20 draws per masked numeric cell.",
        "",
        markdown(calib, 3),
        "",
        "Categorical draws: every (masked cell, level) pair, the level's share of the 20 draws "
        f"against whether it was the true level; tables: {', '.join(rel['table'].unique())} "
        f"(ECE {ece:.3f}):",
        "",
        markdown(table.reset_index(), 3),
        "",
        "## Conditional sampling on Adult (1,000 rows per condition)",
        "",
        "Shapes/Trends: SDMetrics Column Shapes / Column Pair Trends of the sampled rows against "
        "the real rows of the condition (training part), over the columns not conditioned on. "
        "Rejection: unconditional samples from the same model, kept when they match, in "
        "20,000-row batches, 30 s budget (extrapolated at the observed rate when it runs out).",
        "",
        markdown(cond, 3),
        "",
        "## What masked training costs unconditional fidelity",
        "",
        markdown(cost, 4),
        "",
    ]
    rates = RESULTS / "impute_rate.csv"
    if rates.is_file():
        lines += [
            "## Choosing input_mask_rate (validation split, `python bench/impute.py select`)",
            "",
            "Fit on 80% of the training part, scored on 20% MCAR cells of the other 20% (the "
            "holdout above is never used); fidelity: the validation rows against as many "
            "samples (identical across rates: the model is the same). Run on Adult only, "
            "8,000-row subsample and a 100-epoch cap (the Shoppers half was stopped for time).",
            "",
            markdown(pd.read_csv(rates), 4),
            "",
        ]
    (RESULTS / "impute.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / "impute_calibration.json").write_text(
        json.dumps(
            {
                "ece": ece,
                "reliability": table.reset_index().astype({"bin": str}).to_dict("records"),
            },
            indent=1,
        ),
        encoding="utf-8",
    )


def main() -> None:
    setup()
    if sys.argv[1:] == ["select"]:
        select_rate()
        return
    if sys.argv[1:] == ["write"]:  # the report from the CSVs of the runs above
        write(
            pd.read_csv(RESULTS / "impute.csv"),
            pd.read_csv(RESULTS / "impute_calibration.csv"),
            pd.read_csv(RESULTS / "impute_reliability_pairs.csv.gz"),
            pd.read_csv(RESULTS / "impute_conditional.csv"),
            pd.read_csv(RESULTS / "impute_cost.csv"),
        )
        return
    if sys.argv[1:] == ["conditional"]:  # after a full run stopped there: finish from its CSVs
        cond = pd.DataFrame(conditional())
        cond.to_csv(RESULTS / "impute_conditional.csv", index=False)
        print(cond, flush=True)
        df = load("adult", rows=ROWS)
        train, holdout = split(df, seen_levels=True)
        mask = mcar_mask(holdout, seed=11)
        draws = fit_vae("adult", train).impute(holdout.mask(mask), num_imputations=DRAWS, seed=0)
        rel = reliability(holdout, draws.reset_index(drop=True), mask).assign(table="adult")
        rel.to_csv(RESULTS / "impute_reliability_pairs.csv.gz", index=False)
        write(
            pd.read_csv(RESULTS / "impute.csv"),
            pd.read_csv(RESULTS / "impute_calibration.csv"),
            rel,
            cond,
            pd.read_csv(RESULTS / "impute_cost.csv"),
        )
        return
    results, calib, rels, cost = [], [], [], []
    for name in TABLES:
        r, c, rel, fid = impute_table(name)
        results += r
        calib.append(c)
        rels.append(rel)
        cost += fid
        print(pd.DataFrame(r), c, fid, flush=True)
        pd.DataFrame(results).to_csv(RESULTS / "impute.csv", index=False)  # partial, per table
        pd.DataFrame(calib).to_csv(RESULTS / "impute_calibration.csv", index=False)
        pd.DataFrame(cost).to_csv(RESULTS / "impute_cost.csv", index=False)
    cond = pd.DataFrame(conditional())
    cond.to_csv(RESULTS / "impute_conditional.csv", index=False)
    print(cond, flush=True)
    cost = pd.DataFrame(cost)
    write(
        pd.DataFrame(results), pd.DataFrame(calib), pd.concat(rels, ignore_index=True), cond, cost
    )


if __name__ == "__main__":
    Path(RESULTS).mkdir(exist_ok=True)
    main()
