"""What a small-table fit spends its likelihood and its code z on (issue 18), on validation rows.

For one validation case (``small_tables_validation.case_rows``: ``random_state=1``, never the
reported rows) and each scale floor of the normal family: the training rows' mean
reconstruction log-likelihood E_q[log p(x_col | z)] summed over the numeric and over the
categorical columns and of the target, the KL of q(z | x) to N(0, I) (total and units above
0.1 nats), how well the target is predicted from the encoder mean E[z | x] alone (5-fold
cross-validated ROC AUC or R^2 of a gradient-boosting model: whether z carries the target),
the last and best epoch's validation loss (is the fit still improving at the epoch cap?),
and the ML efficacy of 5 synthetic draws on the held-out rows.

    nice -n 10 python bench/small_tables_diagnose.py shoppers 2000 --floors 0.001 0.1
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import cross_val_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import ml_efficacy  # noqa: E402
from small_tables_validation import DRAWS, TABLES, case_rows  # noqa: E402
from tables import DATASETS  # noqa: E402

import ppvae  # noqa: E402


def diagnose(table: str, rows: int, floor: float, seed: int = 0) -> dict:
    ds = DATASETS[table]
    train, test = case_rows(table, rows)
    likelihood = {"name": "normal", "min_scale": floor}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = ppvae.TabularVAE.from_spec("default", verbose=False, seed=seed, likelihood=likelihood)
        vae.fit(train)
    recon = vae.column_log_likelihood(train).mean()
    numeric = [c for c in train.columns if pd.api.types.is_numeric_dtype(train[c])]
    loc, scale = (t.cpu().numpy() for t in vae.encode(train))
    kl = (0.5 * (loc**2 + scale**2 - 1) - np.log(scale)).mean(0)
    y = train[ds.target]
    if ds.task == "regression":
        model, scoring = HistGradientBoostingRegressor(random_state=0), "r2"
    else:
        model, scoring = HistGradientBoostingClassifier(random_state=0), "roc_auc"
        y = (y == y.value_counts().index[-1]).astype(int)  # the rarer class
    h = vae.history_
    draws = [vae.sample(len(train), seed=s) for s in range(DRAWS)]
    return {
        "table": table,
        "rows": rows,
        "floor": floor,
        "recon_numeric": float(recon[[c for c in recon.index if c in numeric]].sum()),
        "recon_categorical": float(recon[[c for c in recon.index if c not in numeric]].sum()),
        "recon_target": float(recon[ds.target]),
        "kl_total": float(kl.sum()),
        "kl_units_above_0.1": int((kl > 0.1).sum()),
        "target_from_z": float(cross_val_score(model, loc, y, cv=5, scoring=scoring).mean()),
        "best_epoch": int(vae.best_epoch_),
        "val_loss_best": float(h.val_loss.min()),
        "val_loss_last": float(h.val_loss.iloc[-1]),
        "ml_efficacy": float(np.mean([ml_efficacy(d, test, ds.target, ds.task) for d in draws])),
        "ml_efficacy_real": ml_efficacy(train, test, ds.target, ds.task),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("table", choices=TABLES)
    p.add_argument("rows", type=int)
    p.add_argument("--floors", nargs="+", type=float, default=[1e-3, 0.1])
    p.add_argument("--seed", type=int, default=0, help="training seed")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = [diagnose(args.table, args.rows, f, args.seed) for f in args.floors]
    frame = pd.DataFrame(out).round(3)
    print("| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.shape[1])
    for row in frame.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
