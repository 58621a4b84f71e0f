"""Priors compared on real tables (issue #3 acceptance): same model, only the prior changes.

For each table (Adult, Online Shoppers) an 80/20 split (seed 0) is made; each shipped prior
spec (``default`` = standard normal, ``mixture``, ``vamp``, ``flow``, ``aggregate``) is fitted
on the 80 %, and scored by

- sdmetrics' QualityReport (Column Shapes, Column Pair Trends) of as many synthetic rows as
  training rows, against the training rows;
- the held-out mean of ``vae.log_likelihood(test, num_particles=K)`` (nats per row; an
  importance-weighted lower bound on log p(x), so higher is better and comparable across
  priors because p(z) enters it);
- the hole measure of :func:`ppvae.diagnostics.holes` on held-out rows: the share of prior
  draws where the aggregate posterior has negligible density (about 0.01 when p(z) = q(z)),
  and the low (held-out) estimate of KL(q(z) || p(z)) in nats;
- the wall-clock fit time.

Writes ``bench/results/priors.md`` and ``priors.csv``.

    python bench/priors.py [--epochs N] [--datasets adult shoppers] [--particles K]
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
from ppvae.diagnostics.holes import holes
from ppvae.diagnostics.latent import encode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import quality  # noqa: E402
from results_table import merge  # noqa: E402
from tables import RESULTS as OUT  # noqa: E402
from tables import load, ppvae_options, setup, split  # noqa: E402

SPECS = ("default", "mixture", "vamp", "flow", "aggregate")
BENCHED = ("adult", "shoppers")


def run_one(
    dataset: str,
    spec: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    epochs: int | None,
    particles: int,
    seed: int,
) -> dict[str, object]:
    overrides: dict[str, object] = ppvae_options(dataset, seed=seed)
    if epochs:
        overrides["epochs"] = epochs
    start = time.perf_counter()
    vae = ppvae.TabularVAE.from_spec(spec, **overrides).fit(train)
    fit_s = time.perf_counter() - start
    synth = vae.sample(len(train), seed=seed)
    ll = vae.log_likelihood(test, num_particles=particles, seed=seed)
    hole = holes(vae, encode(vae, test, seed=seed), seed=seed)
    return {
        "dataset": dataset,
        "prior": spec if spec != "default" else "standard_normal",
        **quality(train, synth),
        "test_log_likelihood": float(np.mean(ll)),
        "hole_fraction": hole.hole_fraction,
        "kl_aggregate_prior": hole.kl_aggregate_prior,
        "fit_seconds": round(fit_s, 1),
        "epochs_run": len(vae.history_),
        "measured": str(date.today()),
    }


def to_markdown(results: pd.DataFrame, args: argparse.Namespace) -> str:
    budget = f"at most {args.epochs} epochs" if args.epochs else "the spec's epochs"
    lines = [
        "# Priors on real tables",
        "",
        f"Measured {date.today()} on {platform.machine()}, {torch.get_num_threads()} threads "
        f"(`python bench/priors.py{' --epochs ' + str(args.epochs) if args.epochs else ''}`): "
        f"{budget}, early stopping on a 10 % validation split, seed {args.seed}, 80/20 "
        f"train/test split. Shapes and pair trends compare as many synthetic rows as "
        f"training rows with the training rows; log-likelihood is the held-out mean "
        f"of the importance-weighted bound with {args.particles} particles (nats per row).",
        "",
        "| dataset | prior | Column Shapes | Column Pair Trends | test log-lik "
        "| hole fraction | KL(q(z) ‖ p(z)), low estimate | fit (s) | epochs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results.itertuples(index=False):
        lines.append(
            f"| {row.dataset} | {row.prior} | {row.column_shapes:.3f} | "
            f"{row.column_pair_trends:.3f} | {row.test_log_likelihood:.2f} | "
            f"{row.hole_fraction:.3f} | {row.kl_aggregate_prior:.2f} | "
            f"{row.fit_seconds:.0f} | {row.epochs_run} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="cap on epochs per fit")
    parser.add_argument("--datasets", nargs="+", default=list(BENCHED), choices=list(BENCHED))
    parser.add_argument("--priors", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--update",
        action="store_true",
        help="replace only the measured (dataset, prior) rows of an existing priors.csv",
    )
    args = parser.parse_args()
    setup()
    rows = []
    for dataset in args.datasets:
        train, test = split(load(dataset), seen_levels=True)
        for spec in args.priors:
            rows.append(run_one(dataset, spec, train, test, args.epochs, args.particles, args.seed))
            print(rows[-1], flush=True)
    results = pd.DataFrame(rows)
    if args.update:
        names = ["standard_normal" if spec == "default" else spec for spec in SPECS]
        order = {"dataset": list(BENCHED), "prior": names}
        results = merge(OUT / "priors.csv", results, ["dataset", "prior"], order)
    OUT.mkdir(parents=True, exist_ok=True)
    results.to_csv(OUT / "priors.csv", index=False)
    text = to_markdown(results, args)
    (OUT / "priors.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
