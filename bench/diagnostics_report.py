"""Diagnostics of the default model and of the best prior on Adult, side by side (issue #5).

Fits the default spec and the best prior's spec (``--best``, from ``bench/results/priors.md``)
on all of Adult, saves both, runs ``ppvae diagnose`` on each from the command line (timed:
the target is under a minute on 2 cores), and writes ``bench/results/diagnostics.md`` with
both headlines side by side and the reports' figures under ``bench/results/diagnostics/``.

    python bench/diagnostics_report.py [--best aggregate] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd
import torch

import ppvae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import RESULTS as OUT  # noqa: E402
from tables import load, path, ppvae_options, setup  # noqa: E402

DATA = path("adult")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--best", default="aggregate", help="the best prior's shipped spec")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    setup()
    work = Path(tempfile.mkdtemp(prefix="ppvae-diagnostics-"))
    overrides = ppvae_options("adult")
    if args.epochs:
        overrides["epochs"] = args.epochs
    df = load("adult")
    headlines, seconds = {}, {}
    figures = OUT / "diagnostics"
    shutil.rmtree(figures, ignore_errors=True)
    for spec in ("default", args.best):
        vae = ppvae.TabularVAE.from_spec(spec, **overrides).fit(df)
        vae.save(work / spec)
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "ppvae", "diagnose", str(work / spec)]
        cmd += ["--data", str(DATA), "-o", str(work / f"{spec}-report")]
        subprocess.run(cmd, check=True)
        seconds[spec] = time.perf_counter() - start
        report = json.loads((work / f"{spec}-report" / "report.json").read_text())
        headlines[spec] = {
            **report["headline"],
            "`ppvae diagnose` wall time": f"{seconds[spec]:.1f} s",
        }
        shutil.copytree(work / f"{spec}-report", figures / spec)
    table = pd.DataFrame(headlines)
    lines = [
        "# Diagnostics on Adult: default model vs best prior",
        "",
        f"Measured {date.today()} on {platform.machine()}, {torch.get_num_threads()} threads "
        f"(`python bench/diagnostics_report.py --best {args.best}`): both fitted on all 32,561 "
        "rows; `ppvae diagnose` (2,000-row subsample, CLI wall time including start-up). "
        "Definitions: [docs/diagnostics.md](../../docs/diagnostics.md). Full reports: "
        f"[default](diagnostics/default/report.md), [{args.best}](diagnostics/{args.best}/report.md).",
        "",
        "| diagnostic | " + " | ".join(table.columns) + " |",
        "|---|" + "---|" * len(table.columns),
    ]
    lines += [f"| {k} | " + " | ".join(str(v) for v in row) + " |" for k, row in table.iterrows()]
    lines += [
        "",
        "Latent space, default model: ![holes](diagnostics/default/holes.png)",
        "",
        f"Latent space, {args.best}: ![holes](diagnostics/{args.best}/holes.png)",
    ]
    (OUT / "diagnostics.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
