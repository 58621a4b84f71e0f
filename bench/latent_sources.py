"""Is the sampling prior or the decoder what gives rows away? One default fit per table (the
validation split of ``bench/fidelity_validation.py``) decoded from three sources of z:

- ``prior``: the sampling prior (what ``sample`` does);
- ``posterior``: the exact aggregate posterior, z ~ q(z | x_n) of the fit rows in random order
  (the best any latent density model could do; it decodes near copies of training rows, so
  it is a bound, not a sampler);
- ``mean``: the posterior means of the same rows.

If ``posterior`` is hardly harder to detect than ``prior``, a better prior cannot help: the
decoder is the limit. The decoder is scored as fitted (no marginal calibration). Scores go to ``bench/results/latent_sources.csv``.

    python bench/latent_sources.py --datasets adult shoppers --models /tmp/ppvae-calibration-models
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration_validation import fitted  # noqa: E402
from fidelity_validation import validation_split  # noqa: E402
from metrics import quality  # noqa: E402
from tables import RESULTS, setup  # noqa: E402

from ppvae.detection import detection_auc  # noqa: E402
from ppvae.marginal_calibration import reset  # noqa: E402

OUT = RESULTS / "latent_sources.csv"


def evaluate(name: str, models: Path | None) -> list[dict]:
    fit_part, _ = validation_split(name)
    vae, _ = fitted(name, fit_part, models)
    reset(vae.model_)  # the decoder as fitted: no marginal calibration on any source
    cols = list(fit_part.columns)
    with torch.no_grad():
        torch.manual_seed(0)
        q, draw = vae.model_.posterior(vae._table(fit_part))
    order = torch.randperm(len(fit_part), generator=torch.Generator().manual_seed(0))
    active = int((q.mean.var(0) > 0.01).sum())
    sources = {"prior": None, "posterior": draw[order], "mean": q.mean[order]}
    rows = []
    for source, z in sources.items():
        condition = None if z is None else {"z": z}
        synth = vae.sample(len(fit_part), seed=0, condition=condition)[cols]
        row = {
            "dataset": name,
            "source": source,
            "active_units": active,
            "detection_auc": detection_auc(fit_part, synth),
            **quality(fit_part, synth),
        }
        print(row, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["adult", "default", "shoppers", "diamonds"]
    )
    parser.add_argument("--models", type=Path, default=None, help="keep/reuse fits here")
    args = parser.parse_args()
    setup()
    for name in args.datasets:
        frame = pd.DataFrame(evaluate(name, args.models))
        if OUT.exists():
            frame = pd.concat([pd.read_csv(OUT), frame], ignore_index=True)
        frame.to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
