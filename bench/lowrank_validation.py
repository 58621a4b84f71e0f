"""Correlated residuals or not: ``likelihood="normal"`` against ``"lowrank_normal"`` on a
validation split (the bench's training 80 % split 80/20 with seed 1; the scored holdout is
never read), the numbers behind ``docs/correlated_residuals.md``.

    nice -n 10 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=. \\
        python bench/lowrank_validation.py --tables default diamonds --fit-rows 8000

Per table and likelihood: fit seconds and epochs; unconditional fidelity of a sample the size
of the validation part against it (detection AUC, Column Shapes, Pair Trends, exact copies
and DCR ratio with the validation part as the holdout); the held-out log-likelihood per row;
and on ``--impute`` tables, 20 % of the validation rows' cells masked completely at random
(seed 12), 20 imputations: RMSE/range of the point estimate and the 90 % intervals' coverage
per numeric column. Appends to ``bench/results/lowrank_validation.csv``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity_validation import validation_split  # noqa: E402
from impute import mcar_mask, numeric, score  # noqa: E402
from metrics import privacy, quality  # noqa: E402
from tables import RESULTS, setup  # noqa: E402

import ppvae  # noqa: E402
from ppvae.detection import detection_auc  # noqa: E402
from ppvae.imputation import imputation_intervals, point_estimate  # noqa: E402

OUT = RESULTS / "lowrank_validation.csv"


def run(name: str, likelihood: str, fit_rows: int, epochs: int | None, impute_rows: int) -> dict:
    fit_part, val_part = validation_split(name)
    if fit_rows and len(fit_part) > fit_rows:
        fit_part = fit_part.sample(fit_rows, random_state=0).reset_index(drop=True)
    options = {"verbose": False, "seed": 0, "likelihood": likelihood}
    if epochs:
        options["epochs"] = epochs
    vae = ppvae.TabularVAE(**options)
    start = time.perf_counter()
    vae.fit(fit_part)
    row = {"table": name, "likelihood": likelihood, "fit_rows": len(fit_part)}
    row["fit_s"] = time.perf_counter() - start
    row["epochs"] = len(vae.history_)
    cols = list(fit_part.columns)
    synth = vae.sample(len(val_part), seed=0)[cols]
    row["detection_auc"] = detection_auc(val_part, synth)
    row.update(quality(val_part, synth))
    row.update(privacy(fit_part, val_part, synth))
    ll = vae.log_likelihood(val_part.head(1000), num_particles=16, seed=0)
    row["val_loglik"] = float(np.mean(ll))
    if impute_rows:
        row.update(impute(vae, fit_part, val_part.head(impute_rows)))
    print(json.dumps(row), flush=True)
    return row


def impute(vae, fit_part: pd.DataFrame, val: pd.DataFrame) -> dict:
    mask = mcar_mask(val, seed=12)
    num = [c for c in fit_part if numeric(fit_part[c])]
    ranges = {c: float(fit_part[c].max() - fit_part[c].min()) or 1.0 for c in num}
    start = time.perf_counter()
    draws = vae.impute(val.mask(mask), num_imputations=20, seed=0)
    out = {"impute_s": time.perf_counter() - start}
    best = point_estimate(draws).reset_index(drop=True)
    out.update(score(val, best, mask, ranges))
    lo, hi = imputation_intervals(draws, level=0.9)
    lo, hi = lo.reset_index(drop=True), hi.reset_index(drop=True)
    per_column, hits = {}, []
    for c in ranges:
        m = mask[c].to_numpy()
        x = val[c].to_numpy(float)[m]
        inside = (lo[c].to_numpy(float)[m] <= x) & (x <= hi[c].to_numpy(float)[m])
        per_column[c] = round(float(inside.mean()), 3)
        hits.append(inside)
    out["coverage90"] = float(np.concatenate(hits).mean())
    out["coverage_columns"] = json.dumps(per_column)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="+", default=["default", "diamonds"])
    parser.add_argument("--likelihoods", nargs="+", default=["normal", "lowrank_normal"])
    parser.add_argument("--fit-rows", type=int, default=8000, help="fit rows (0: all)")
    parser.add_argument("--epochs", type=int, default=None, help="cap (default: early stop)")
    parser.add_argument("--impute", nargs="*", default=["default", "diamonds"])
    parser.add_argument("--impute-rows", type=int, default=1000)
    args = parser.parse_args()
    setup()
    torch.set_num_threads(1)
    for name in args.tables:
        for likelihood in args.likelihoods:
            rows = args.impute_rows if name in args.impute else 0
            row = run(name, likelihood, args.fit_rows, args.epochs, rows)
            frame = pd.DataFrame([row])
            if OUT.exists():
                frame = pd.concat([pd.read_csv(OUT), frame], ignore_index=True)
            frame.to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
