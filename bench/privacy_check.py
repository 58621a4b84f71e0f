"""The privacy check (``ppvae.privacy``, ``ppvae sample --privacy-check``) on a model that
memorises and on the default model.

    python bench/privacy_check.py                       # over-fitted model + default on shoppers
    python bench/privacy_check.py --datasets adult shoppers

Over-fitted: 200 Adult rows, a wide network (hidden 512x512, latent 32, lr 3e-3) trained for
1,500 epochs without early stopping; holdout: 2,000 other Adult rows; 2,000 rows drawn. It
must fail. Default: the default spec on the bench split (``bench/run.py``'s ``load``, 80/20,
seed 0), as many rows drawn as training rows. It must pass. Results go to
``bench/results/privacy_check.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DATASETS, RESULTS, load  # noqa: E402

import ppvae  # noqa: E402
from ppvae.privacy import privacy_report  # noqa: E402

OVERFIT = dict(
    hidden=(512, 512), latent_dim=32, lr=3e-3, epochs=1500, patience=None, val_fraction=0.0
)


def row(case: str, train: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame, fit_s: float):
    r = privacy_report(train, synth, holdout)
    return {
        "case": case,
        "training rows": len(train),
        "fit_s": round(fit_s, 1),
        "exact_copies": round(r.exact_copies, 4),
        "exact_copies_holdout": round(r.exact_copies_holdout, 4),
        "dcr_ratio": round(r.dcr_ratio, 3),
        "check": "passes" if r.passed else "FAILS",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["shoppers"], choices=list(DATASETS))
    args = parser.parse_args()
    rows = []
    train, test = load(DATASETS["adult"])
    small = train.sample(200, random_state=0)
    start = time.perf_counter()
    vae = ppvae.TabularVAE(**OVERFIT, verbose=False).fit(small)
    fit_s = time.perf_counter() - start
    holdout = test.sample(2000, random_state=0)
    rows.append(
        row("adult, 200 rows, over-fitted", small, vae.sample(2000, seed=0), holdout, fit_s)
    )
    print(rows[-1], flush=True)
    for name in args.datasets:
        train, test = load(DATASETS[name])
        start = time.perf_counter()
        vae = ppvae.TabularVAE(verbose=False).fit(train)
        fit_s = time.perf_counter() - start
        rows.append(
            row(f"{name}, default spec", train, vae.sample(len(train), seed=0), test, fit_s)
        )
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    text = [
        "# Privacy check",
        "",
        "`python bench/privacy_check.py --datasets " + " ".join(args.datasets) + "`; thresholds "
        "and definitions: docs/evaluate.md (fails when the DCR ratio is below 0.9 or synthetic "
        "rows copy training rows more often than the holdout by more than 1 point).",
        "",
        "| " + " | ".join(table.columns) + " |",
        "|" + "---|" * len(table.columns),
        *("| " + " | ".join(map(str, r)) + " |" for r in table.itertuples(index=False)),
    ]
    (RESULTS / "privacy_check.md").write_text("\n".join(text) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
