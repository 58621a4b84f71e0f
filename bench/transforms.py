"""Quantile-to-normal against mode-specific encoding of numeric columns (issue #2: pick the
default by measurement on real data).

Adult and Online Shoppers, 80/20 split (seed 0); the default model is fitted with
``continuous="quantile"`` and with ``continuous="mode_specific"`` (CTGAN/TVAE's encoding),
everything else equal. Scores: sdmetrics Column Shapes / Column Pair Trends (as many
synthetic rows as training rows, against the training rows), the mean per-column KS
statistic of the numeric columns alone, the transform fit time and the model fit time.
Held-out likelihoods are not comparable across encodings (different data spaces), so they
are not reported. Writes ``bench/results/transforms.{md,csv}``.

    python bench/transforms.py [--epochs N]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import ppvae
from ppvae.diagnostics.ppc import ks_statistic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import is_numeric, quality  # noqa: E402
from tables import RESULTS as OUT  # noqa: E402
from tables import load, missing_values, setup, split  # noqa: E402

BENCHED = ("adult", "shoppers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    setup()
    rows = []
    for dataset in BENCHED:
        df = load(dataset)
        markers = missing_values(dataset)
        train, _ = split(df)
        numeric = [c for c in df.columns if is_numeric(df[c]) and df[c].nunique() > 10]
        for encoding in ("quantile", "mode_specific"):
            start = time.perf_counter()
            ppvae.TableTransformer(continuous=encoding, missing_values=markers).fit(train)
            transform_s = time.perf_counter() - start
            overrides = {"continuous": encoding, "missing_values": markers, "verbose": False}
            if args.epochs:
                overrides["epochs"] = args.epochs
            start = time.perf_counter()
            vae = ppvae.TabularVAE(**overrides).fit(train)
            fit_s = time.perf_counter() - start
            synth = vae.sample(len(train), seed=0)
            rows.append(
                {
                    "dataset": dataset,
                    "encoding": encoding,
                    **quality(train, synth),
                    "numeric_ks": float(
                        np.mean([ks_statistic(train[c], synth[c]) for c in numeric])
                    ),
                    "transform_fit_s": transform_s,
                    "fit_s": fit_s,
                    "epochs_run": len(vae.history_),
                }
            )
            print(rows[-1], flush=True)
    results = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    results.to_csv(OUT / "transforms.csv", index=False)
    lines = [
        "# Numeric encodings: quantile-to-normal vs mode-specific",
        "",
        f"Measured {date.today()} on {platform.machine()}, {torch.get_num_threads()} threads "
        f"(`python bench/transforms.py{' --epochs ' + str(args.epochs) if args.epochs else ''}`): "
        "default model, 80/20 split (seed 0), early stopping; numeric KS is the mean "
        "Kolmogorov-Smirnov statistic over numeric columns with more than 10 values (lower is better).",
        "",
        "| dataset | encoding | Column Shapes | Column Pair Trends | numeric KS | transform fit (s) | model fit (s) | epochs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.dataset} | {r.encoding} | {r.column_shapes:.3f} | {r.column_pair_trends:.3f} | "
        f"{r.numeric_ks:.3f} | {r.transform_fit_s:.2f} | {r.fit_s:.0f} | {r.epochs_run} |"
        for r in results.itertuples(index=False)
    ]
    (OUT / "transforms.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
