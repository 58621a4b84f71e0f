"""Choose the marginal calibration on validation splits: one default fit per table (80 % of
the bench's training part, ``fidelity_validation.validation_split``), sampled with each
``calibrate`` setting (``ppvae.marginal_calibration``), scored against its fit rows like
``bench/fidelity_validation.py`` (the bench's holdout is never read). ``categories`` and
``all`` are also scored with the levels matched before the value rules (``... | before
rules``, as ppvae calibrated until 2026-11-29), and each setting on ``--seeds`` draws.

    python bench/calibration_validation.py --models /tmp/ppvae-calibration-models

``--models`` keeps each fit (reused when present). Rows go to
``bench/results/calibration_validation.csv``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity_validation import validation_split  # noqa: E402
from metrics import privacy, quality  # noqa: E402
from tables import RESULTS, setup  # noqa: E402

import ppvae  # noqa: E402
from ppvae.detection import detection_auc  # noqa: E402
from ppvae.marginal_calibration import CALIBRATIONS, calibrate, reset  # noqa: E402

OUT = RESULTS / "calibration_validation.csv"


def fitted(
    name: str, fit_part: pd.DataFrame, models: Path | None
) -> tuple[ppvae.TabularVAE, float]:
    path = None if models is None else models / name
    if path is not None and path.exists():
        return ppvae.load(path), float("nan")
    vae = ppvae.TabularVAE.from_spec("default", verbose=False, calibrate="none")
    start = time.perf_counter()
    vae.fit(fit_part)
    fit_s = time.perf_counter() - start
    if path is not None:
        vae.save(path)
    return vae, fit_s


def evaluate(name: str, models: Path | None, seeds: list[int]) -> list[dict]:
    fit_part, val_part = validation_split(name)
    vae, fit_s = fitted(name, fit_part, models)
    cols = list(fit_part.columns)
    table = vae._table(fit_part)
    rows = []
    settings = [(s, True) for s in CALIBRATIONS] + [("categories", False), ("all", False)]
    for setting, after_rules in settings:
        reset(vae.model_)
        if setting != "none":
            calibrate(
                vae.model_,
                table,
                vae.transformer_.continuous_in_use,
                continuous=setting == "all",
                through=vae.transformer_.as_delivered if after_rules else None,
            )
        for seed in seeds:
            synth = vae.sample(len(fit_part), seed=seed)[cols]
            row = {
                "dataset": name,
                "calibrate": setting
                + ("" if after_rules or setting == "none" else " | before rules"),
                "seed": seed,
                "detection_auc": detection_auc(fit_part, synth),
                **quality(fit_part, synth),
                **privacy(fit_part, val_part[cols], synth),
                "fit_s": fit_s,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["adult", "default", "shoppers", "diamonds"]
    )
    parser.add_argument("--models", type=Path, default=None, help="keep/reuse fits here")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="sample seeds")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 2)")
    args = parser.parse_args()
    setup()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.datasets:
        frame = pd.DataFrame(evaluate(name, args.models, args.seeds))
        if OUT.exists():
            frame = pd.concat([pd.read_csv(OUT), frame], ignore_index=True)
        frame.to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
