"""Objectives compared on Adult at equal budget (issue #4 acceptance): same model, same
prior, only the objective changes.

Adult is split 80/20 (seed 0); each shipped objective spec (``default`` = ELBO, ``beta``,
``anneal``, ``free_bits``, ``geco``, ``iwae``) is fitted on the 80 % and scored on the 20 %:

- held-out importance-weighted log-likelihood (``vae.log_likelihood``, nats per row);
- reconstruction error: :math:`-\\mathbb{E}_{q(z|x)} \\log p(x \\mid z)` per held-out row
  (``vae.column_log_likelihood`` summed over columns), the quantity GECO constrains;
- active units and active subspace (``ppvae.diagnose``; rotation-invariant subspace);
- sdmetrics Column Shapes / Column Pair Trends of as many synthetic rows as training rows;
- for GECO: its tolerance and the final moving average of the training reconstruction
  error, i.e. whether it reached its target.

Writes ``bench/results/objectives.md`` and ``objectives.csv``.

    python bench/objectives.py [--epochs N] [--objectives default geco]
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import torch

import ppvae
from ppvae.diagnostics.collapse import collapse
from ppvae.diagnostics.latent import encode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import quality  # noqa: E402
from results_table import merge  # noqa: E402
from tables import RESULTS as OUT  # noqa: E402
from tables import load, ppvae_options, setup, split  # noqa: E402

SPECS = ("default", "beta", "anneal", "free_bits", "geco", "iwae")


def run_one(spec: str, train: pd.DataFrame, test: pd.DataFrame, args) -> dict[str, object]:
    overrides: dict[str, object] = ppvae_options("adult", seed=args.seed)
    if args.epochs:
        overrides["epochs"] = args.epochs
    start = time.perf_counter()
    vae = ppvae.TabularVAE.from_spec(spec, **overrides).fit(train)
    fit_s = time.perf_counter() - start
    ll = vae.log_likelihood(test, num_particles=args.particles, seed=args.seed)
    recon = -vae.column_log_likelihood(test, num_samples=5, seed=args.seed).sum(axis=1)
    c = collapse(vae, encode(vae, test, seed=args.seed))
    row: dict[str, object] = {
        "objective": "elbo" if spec == "default" else spec,
        **quality(train, vae.sample(len(train), seed=args.seed)),
        "test_log_likelihood": float(ll.mean()),
        "test_recon_error": float(recon.mean()),
        "active_units": c.active_units,
        "active_subspace": c.active_subspace,
        "kl_per_row": float(c.kl_per_dim.sum()),
        "fit_seconds": round(fit_s, 1),
        "epochs_run": len(vae.history_),
        "measured": str(date.today()),
        "geco_tolerance": math.nan,
        "geco_final_recon_ma": math.nan,
        "geco_final_lambda": math.nan,
    }
    if spec == "geco":
        state = vae.objective_.state_dict()
        row["geco_tolerance"] = state["tolerance"]
        row["geco_final_recon_ma"] = state["c_ma"]
        row["geco_final_lambda"] = state["lambda"]
    return row


def to_markdown(results: pd.DataFrame, args) -> str:
    budget = f"at most {args.epochs} epochs" if args.epochs else "the spec's 300 epochs at most"
    lines = [
        "# Objectives on Adult",
        "",
        f"Measured {date.today()} on {platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__} (`python bench/objectives.py"
        f"{' --epochs ' + str(args.epochs) if args.epochs else ''}`): {budget}, early stopping "
        f"on a 10 % validation split, seed {args.seed}, latent_dim 16, standard-normal prior. "
        "Scores on the 20 % held-out rows except shapes/trends (synthetic vs training rows). "
        f"Log-likelihood: importance-weighted bound, {args.particles} particles; reconstruction "
        "error: -E_q log p(x|z), nats per row; active units: Cov_x E[z_d|x] > 0.01 (of 16).",
        "",
        "| objective | test log-lik | recon error | active units | active subspace "
        "| KL per row | Column Shapes | Column Pair Trends | fit (s) | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.itertuples(index=False):
        lines.append(
            f"| {r.objective} | {r.test_log_likelihood:.2f} | {r.test_recon_error:.2f} | "
            f"{r.active_units} | {r.active_subspace} | {r.kl_per_row:.2f} | "
            f"{r.column_shapes:.3f} | {r.column_pair_trends:.3f} | {r.fit_seconds:.0f} | "
            f"{r.epochs_run} |"
        )
    geco = results[results["objective"] == "geco"]
    if len(geco):
        g = geco.iloc[0]
        met = g.geco_final_recon_ma <= g.geco_tolerance * 1.02
        lines += [
            "",
            f"GECO: tolerance (auto) {g.geco_tolerance:.2f} nats per row; final moving average "
            f"of the training reconstruction error {g.geco_final_recon_ma:.2f} "
            f"({'within 2 % of the target: met' if met else 'above the target: not met'}); "
            f"final lambda {g.geco_final_lambda:.3g}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="cap on epochs per fit")
    parser.add_argument("--objectives", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--update",
        action="store_true",
        help="replace only the measured objectives' rows of an existing objectives.csv",
    )
    args = parser.parse_args()
    setup()
    train, test = split(load("adult"), seen_levels=True)
    rows = []
    for spec in args.objectives:
        rows.append(run_one(spec, train, test, args))
        print(rows[-1], flush=True)
    results = pd.DataFrame(rows)
    if args.update:
        names = ["elbo" if spec == "default" else spec for spec in SPECS]
        results = merge(OUT / "objectives.csv", results, ["objective"], {"objective": names})
    OUT.mkdir(parents=True, exist_ok=True)
    results.to_csv(OUT / "objectives.csv", index=False)
    text = to_markdown(results, args)
    (OUT / "objectives.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
