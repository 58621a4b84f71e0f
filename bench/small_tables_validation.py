"""Choose the small-table default on validation rows (issue 18), never on the reported ones.

Each case: a shared table subsampled to ``--rows`` rows with ``random_state=1`` (the benchmark,
``bench/small_tables.py``, reports ``random_state=0``), split 80/20 with the same seed; a
candidate setting is fitted on the training 80 % and scored on its own held-out 20 %:
ML efficacy (mean over ``DRAWS`` synthetic draws, as in the benchmark), Pair Trends, and
memorisation (exact copies of training rows and the DCR ratio against the held-out rows,
``ppvae.privacy``). A candidate is a set of constructor arguments plus the number of
aggregate-prior components (``ppvae.budget.SMALL_TABLE_COMPONENTS``); its normal family keeps
the scale floor 1e-3 unless it sets ``likelihood`` (``cyc_floor0.1`` is today's rule). Rows are appended to
``bench/results/small_tables_validation.csv`` (resumable).

    nice -n 10 python bench/small_tables_validation.py --candidates current beta0.25_k5
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import ml_efficacy, privacy, quality  # noqa: E402
from tables import DATASETS, SHARED  # noqa: E402

import ppvae  # noqa: E402
from ppvae import budget  # noqa: E402

CSV = Path(__file__).resolve().parent / "results" / "small_tables_validation.csv"
TABLES = ("adult", "default", "diamonds", "shoppers")
DRAWS = 5
SEED = 1


def beta(b: float) -> dict:
    return {"objective": {"name": "beta", "beta": b}}


def floor(scale: float) -> dict:
    """The normal family with the scale floor ``scale`` (1e-3 before the floor rule)."""
    return {"likelihood": {"name": "normal", "min_scale": scale}}


CANDIDATES: dict[str, tuple[dict, int]] = {
    "current": (beta(0.5), 3),  # the rule before: beta 0.5, 3 components
    "beta0.25_k5": (beta(0.25), 5),
    "beta0.25_k10": (beta(0.25), 10),
    "beta0.1_k5": (beta(0.1), 5),
    "beta0.1_k10": (beta(0.1), 10),
    "current_e1000": ({**beta(0.5), "epochs": 1000}, 3),
    "current_e1000_p100": ({**beta(0.5), "epochs": 1000, "patience": 100}, 3),
    "beta0.1_k10_e1000": ({**beta(0.1), "epochs": 1000}, 10),
    "current_b32": ({**beta(0.5), "batch_size": 32}, 3),
    "current_val0.05": ({**beta(0.5), "val_fraction": 0.05}, 3),
    "current_h128": ({**beta(0.5), "hidden": [128, 128]}, 3),
    "beta0.1_k5_h128": ({**beta(0.1), "hidden": [128, 128]}, 5),
    "beta0.1_k5_p100": ({**beta(0.1), "patience": 100}, 5),
    "beta0.2_k5": (beta(0.2), 5),
    "anneal_lin0.5": (
        {"objective": {"name": "anneal", "schedule": "linear", "beta_max": 0.5}},
        3,
    ),
    "anneal_cyc0.5": ({"objective": {"name": "anneal", "beta_max": 0.5}}, 3),
    "current_lr3e-3": ({**beta(0.5), "lr": 0.003}, 3),
    "current_lr5e-3": ({**beta(0.5), "lr": 0.005}, 3),
    # the rule: cyclical annealing, with the normal family's scale floor raised to 0.1
    "cyc_floor0.1": (
        {"objective": {"name": "anneal", "beta_max": 0.5}, **floor(0.1), "calibrate": "none"},
        3,
    ),
    # the rule with the categorical marginals calibrated ex post (ppvae.marginal_calibration)
    "cyc_floor0.1_calibrated": (
        {"objective": {"name": "anneal", "beta_max": 0.5}, **floor(0.1), "calibrate": "categories"},
        3,
    ),
    # the rule with the chains of the default model (ppvae.chained_categories, .._continuous):
    # categorical slots only, then both
    "cyc_floor0.1_calibrated_catchain": (
        {
            "objective": {"name": "anneal", "beta_max": 0.5},
            **floor(0.1),
            "model": {"name": "tabular", "chain_continuous": False},
        },
        3,
    ),
    "cyc_floor0.1_calibrated_chains": (
        {
            "objective": {"name": "anneal", "beta_max": 0.5},
            **floor(0.1),
            "model": {"name": "tabular", "chain_continuous": True},
        },
        3,
    ),
}


def case_rows(table: str, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = DATASETS[table]
    df = pd.read_csv(SHARED / f"{table}.csv")
    for c in df.columns:
        if ds.missing_values and df[c].dtype == object:
            df[c] = df[c].mask(df[c].isin(ds.missing_values))
    df = df.sample(rows, random_state=SEED).reset_index(drop=True)
    train = df.sample(frac=0.8, random_state=SEED)
    return train.reset_index(drop=True), df.drop(train.index).reset_index(drop=True)


def run(candidate: str, table: str, rows: int, seed: int = 0) -> dict:
    kwargs, components = CANDIDATES[candidate]
    kwargs = {**floor(1e-3), **kwargs}  # the floor of every candidate before the floor rule
    ds = DATASETS[table]
    train, test = case_rows(table, rows)
    budget.SMALL_TABLE_COMPONENTS = components
    start = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = ppvae.TabularVAE.from_spec("default", verbose=False, seed=seed, **kwargs).fit(train)
    fit_s = time.time() - start
    draws = [vae.sample(len(train), seed=s) for s in range(DRAWS)]
    eff = [ml_efficacy(d, test, ds.target, ds.task) for d in draws]
    return {
        "candidate": candidate,
        "table": table,
        "rows": rows,
        "seed": seed,
        "epochs": len(vae.history_),
        "active_units": vae.health_.active_units,
        "fit_s": round(fit_s, 1),
        "ml_efficacy": float(np.mean(eff)),
        "ml_efficacy_sd": float(np.std(eff)),
        "ml_efficacy_real": ml_efficacy(train, test, ds.target, ds.task),
        **quality(train, draws[0]),
        **privacy(train, test, draws[0]),
    }


def summary(results: pd.DataFrame) -> str:
    """Markdown: per candidate and size, the efficacy gap (train on real minus train on
    synthetic) of each table (mean over the training seeds measured), their mean and worst,
    and the mean Pair Trends, lowest DCR ratio and most exact copies."""
    r = results.assign(gap=results.ml_efficacy_real - results.ml_efficacy)
    lines = [
        "| candidate | rows | seeds | " + " | ".join(TABLES) + " | mean gap | worst | "
        "Pair Trends | min DCR ratio | max copies |",
        "|---|---|---|" + "---|" * (len(TABLES) + 5),
    ]
    for (candidate, rows), g in r.groupby(["candidate", "rows"], sort=False):
        gaps = g.groupby("table").gap.mean().reindex(TABLES)
        cells = [f"{v:.3f}" if not np.isnan(v) else "" for v in gaps]
        lines.append(
            f"| {candidate} | {rows} | {g.seed.nunique()} | {' | '.join(cells)} | "
            f"{gaps.mean():.3f} | {gaps.max():.3f} | {g.column_pair_trends.mean():.3f} | "
            f"{g.dcr_ratio.min():.2f} | {g.exact_copies.max():.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--candidates", nargs="+", default=["current"], choices=list(CANDIDATES))
    p.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    p.add_argument("--rows", nargs="+", type=int, default=[1000])
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds")
    p.add_argument("--summary", action="store_true", help="print the Markdown table and exit")
    args = p.parse_args()
    if args.summary:
        print(summary(pd.read_csv(CSV)))
        return
    torch.set_num_threads(1)
    done = pd.read_csv(CSV) if CSV.is_file() else pd.DataFrame()
    if len(done) and "seed" not in done:
        done["seed"] = 0
    cases = [
        (c, r, t, s)
        for s in args.seeds
        for c in args.candidates
        for r in args.rows
        for t in args.tables
    ]
    for candidate, rows, table, seed in cases:
        if len(done) and len(
            done[
                (done.candidate == candidate)
                & (done.table == table)
                & (done.rows == rows)
                & (done.seed == seed)
            ]
        ):
            continue
        row = run(candidate, table, rows, seed)
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
        sys.stdout.flush()
        new = not CSV.is_file()
        pd.DataFrame([row]).to_csv(CSV, mode="a", header=new, index=False)
        done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)


if __name__ == "__main__":
    main()
