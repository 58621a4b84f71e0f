"""Choose on a validation split, never on the scored one: a spec's detection AUC, Column
Shapes and Pair Trends on the shared tables, fitted on 80 % of the bench's training part
and scored against it (the bench's holdout is never read).

    python bench/fidelity_validation.py --label default --spec default
    python bench/fidelity_validation.py --label vamp --spec '{"prior": {"name": "vamp"}}'
    python bench/fidelity_validation.py --label default --ex-post trained aggregate:10 aggregate:30

``--ex-post`` scores one fit sampled through several priors: ``trained`` (the prior the fit
ended with) and ``aggregate:K`` (a K-component mixture fitted to q(z) of the fit rows,
``TabularVAE.refit_prior``), or sampled without its detector, ``no-detector``
(``ppvae.detector_resampling``; put it last: the detector is dropped); each also gets exact copies and the DCR ratio, the validation
part standing in for the holdout. Appends one row per table and prior to ``bench/results/fidelity_validation.csv``; the per-column
detector AUCs of the synthetic sample go to its ``columns`` field (the giveaways).
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
from metrics import privacy, quality  # noqa: E402
from tables import RESULTS, load, setup, split  # noqa: E402

import ppvae  # noqa: E402
from ppvae.detection import column_aucs, detection_auc, detection_data  # noqa: E402
from ppvae.detector_resampling import drop_detector  # noqa: E402

OUT = RESULTS / "fidelity_validation.csv"


def validation_split(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit part, validation part): the bench's training 80 % split 80/20 with another seed."""
    train, _ = split(load(name, markers_as_nan=True))  # as bench/run.py reads them
    return split(train, seed=1)


def evaluate(name: str, spec: dict | str, label: str, ex_post: list[str]) -> list[dict]:
    fit_part, val_part = validation_split(name)
    options = {"verbose": False}  # the bench's contender: markers already NaN
    if isinstance(spec, str):
        vae = ppvae.TabularVAE.from_spec(spec, **options)
    else:
        vae = ppvae.TabularVAE.from_spec("default", **{**options, **spec})
    start = time.perf_counter()
    vae.fit(fit_part)
    fit_s = time.perf_counter() - start
    trained = vae.model_.prior
    rows = []
    for choice in ex_post or ["trained"]:
        if choice == "trained":
            vae.model_.prior = trained
        elif choice == "no-detector":
            drop_detector(vae.model_)
        else:
            kind, _, k = choice.partition(":")
            vae.refit_prior(kind, data=fit_part, **({"components": int(k)} if k else {}))
        rows.append(_score(vae, name, spec, f"{label} | {choice}", fit_part, val_part, fit_s))
    return rows


def _score(vae, name, spec, label, fit_part, val_part, fit_s) -> dict:
    cols = list(fit_part.columns)
    synth = vae.sample(len(fit_part), seed=0)[cols]
    row = {
        "label": label,
        "dataset": name,
        "spec": json.dumps(spec),
        "detection_auc": detection_auc(fit_part, synth),
        "rules": len(vae.transformer_.rules_.rules),
        **quality(fit_part, synth),
        **privacy(fit_part, val_part[cols], synth),
        "epochs": len(vae.history_),
        "detector_trees": getattr(getattr(vae.model_, "detector", None), "grown", 0),
        "detector_auc": float(getattr(getattr(vae.model_, "detector", None), "auc", "nan")),
        "fit_s": fit_s,
        "columns": json.dumps(
            column_aucs(detection_data(fit_part, synth)).round(3).head(6).to_dict()
        ),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--spec", default="default", help="a shipped spec name or JSON overrides")
    parser.add_argument(
        "--datasets", nargs="+", default=["adult", "default", "shoppers", "diamonds"]
    )
    parser.add_argument(
        "--ex-post",
        nargs="*",
        default=[],
        help="sampling priors: trained, aggregate:K; no-detector",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 2)")
    args = parser.parse_args()
    setup()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = json.loads(args.spec) if args.spec.strip().startswith("{") else args.spec
    for name in args.datasets:
        for row in evaluate(name, spec, args.label, args.ex_post):
            frame = pd.DataFrame([row])
            if OUT.exists():  # new fields (privacy) join the file's header
                frame = pd.concat([pd.read_csv(OUT), frame], ignore_index=True)
            frame.to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
