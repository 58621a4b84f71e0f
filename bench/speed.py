"""Speed of ppvae's SVI training against the plain-PyTorch reference of the same network,
measured side by side in one run, on Adult, with Pyro validation off (ppvae's training
default) and on (``PPVAE_PYRO_VALIDATION=1``); plus transform fit time against TVAE's
DataTransformer, and scaling of time per epoch and peak memory with the number of rows.

    python bench/speed.py [--epochs 6] [--no-scaling]

``--no-scaling`` keeps the scaling rows of the last full run (bench/results/scaling.csv);
``--ratio-only`` prints the per-epoch comparison and writes nothing.

Writes bench/results/speed.md and speed.csv.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import PeakRSS  # noqa: E402
from reference_vae import ReferenceVAE  # noqa: E402
from tables import RESULTS as OUT  # noqa: E402
from tables import load, missing_values, setup  # noqa: E402

import ppvae  # noqa: E402
from ppvae.objectives import ELBO  # noqa: E402
from ppvae.training import train  # noqa: E402

MARKERS = missing_values("adult")


def per_epoch_ratio(df: pd.DataFrame, epochs: int) -> dict[str, float]:
    """Alternate one ppvae epoch with Pyro validation on, one with it off and one reference
    epoch, on the same batches from the same start; median times."""
    ref = ReferenceVAE(epochs=0, missing_values=MARKERS).fit(df)
    vae = ppvae.TabularVAE(epochs=1, missing_values=MARKERS, verbose=False, val_fraction=0.0)
    vae.fit(df.head(50))  # warm-up and access to the module builder
    modules, generators, times = {}, {}, {"on": [], "off": [], "reference": []}
    for arm in ("on", "off"):
        modules[arm] = vae._build_module(ref.layout_)
        modules[arm].encoder.load_state_dict(ref.encoder_.state_dict())
        modules[arm].decoder.load_state_dict(ref.decoder_.state_dict())
        generators[arm] = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for arm in ("on", "off"):
            start = time.perf_counter()
            train(
                modules[arm],
                ELBO(),
                ref.data_,
                None,
                epochs=1,
                batch_size=500,
                lr=1e-3,
                patience=None,
                generator=generators[arm],
                verbose=False,
                validate=arm == "on",
            )
            times[arm].append(time.perf_counter() - start)
        times["reference"].append(ref.run_epoch())
    on, off, r = (statistics.median(times[k]) for k in ("on", "off", "reference"))
    return {
        "ppvae_epoch_s": off,
        "ppvae_validation_epoch_s": on,
        "reference_epoch_s": r,
        "ratio": off / r,
        "ratio_validation_on": on / r,
        "validation_cost": on / off - 1,
    }


def transform_times(df: pd.DataFrame) -> dict[str, float]:
    start = time.perf_counter()
    ppvae.TableTransformer(missing_values=MARKERS).fit(df)
    ours = time.perf_counter() - start
    try:
        from ctgan.data_transformer import DataTransformer
    except ImportError:
        return {"ppvae_transform_s": ours}
    discrete = [c for c in df.columns if df[c].dtype == object]
    start = time.perf_counter()
    DataTransformer().fit(df, discrete)
    theirs = time.perf_counter() - start
    return {
        "ppvae_transform_s": ours,
        "tvae_transform_s": theirs,
        "transform_speedup": theirs / ours,
    }


def sample_time(df: pd.DataFrame, n: int = 100_000) -> dict[str, float]:
    """Seconds to draw ``n`` rows from a (briefly) fitted default model."""
    vae = ppvae.TabularVAE(epochs=2, missing_values=MARKERS, verbose=False).fit(df)
    vae.sample(1000, seed=0)  # warm-up
    start = time.perf_counter()
    vae.sample(n, seed=0)
    return {"sample_rows": n, "sample_s": time.perf_counter() - start}


def resample(df: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows drawn with replacement, numeric columns jittered by 1% of their std."""
    rng = np.random.default_rng(seed)
    out = df.iloc[rng.integers(0, len(df), n)].reset_index(drop=True)
    for c in out.columns:
        if pd.api.types.is_numeric_dtype(out[c]):
            noise = rng.normal(0, 0.01 * out[c].std(), n)
            out[c] = (
                (out[c] + noise).round().astype(out[c].dtype)
                if pd.api.types.is_integer_dtype(out[c])
                else out[c] + noise
            )
    return out


def scaling(df: pd.DataFrame, sizes=(10_000, 100_000, 1_000_000)) -> list[dict[str, float]]:
    rows = []
    for n in sizes:
        big = resample(df, n)
        gc.collect()
        with PeakRSS() as mem:
            vae = ppvae.TabularVAE(
                epochs=1, missing_values=MARKERS, verbose=False, patience=None, val_fraction=0.05
            )
            start = time.perf_counter()
            vae.fit(big)
            seconds = time.perf_counter() - start
        rows.append(
            {
                "rows": n,
                "fit_s_1_epoch": seconds,
                "s_per_1k_rows": 1000 * seconds / n,
                "peak_rss_gb": mem.peak / 2**30,
                "rss_increase_gb": (mem.peak - mem.base) / 2**30,
            }
        )
        del big, vae
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--ratio-only", action="store_true")
    args = parser.parse_args()
    setup()
    df = load("adult")
    ratio = per_epoch_ratio(df, args.epochs)
    print(ratio, flush=True)
    if args.ratio_only:
        return
    transforms = transform_times(df)
    sampling = sample_time(df)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.no_scaling:
        kept = OUT / "scaling.csv"
        scale = pd.read_csv(kept).to_dict("records") if kept.is_file() else []
    else:
        scale = scaling(df)
        pd.DataFrame(scale).to_csv(OUT / "scaling.csv", index=False)
    pd.DataFrame([{**ratio, **transforms, **sampling}]).to_csv(OUT / "speed.csv", index=False)
    lines = [
        "# Speed",
        "",
        f"Measured {date.today()} on {platform.machine()} with {torch.get_num_threads()} threads, torch {torch.__version__} (`python bench/speed.py`).",
        "",
        "## Per-epoch time on Adult, side by side (median of alternating epochs, same batches)",
        "",
        "| ppvae SVI, Pyro validation on | validation off (default) | plain PyTorch | ratio (on) "
        "| ratio (off) | cost of validation |",
        "|---|---|---|---|---|---|",
        f"| {ratio['ppvae_validation_epoch_s']:.3f} s | {ratio['ppvae_epoch_s']:.3f} s "
        f"| {ratio['reference_epoch_s']:.3f} s | {ratio['ratio_validation_on']:.3f} "
        f"| {ratio['ratio']:.3f} | {100 * ratio['validation_cost']:+.1f} % |",
        "",
        "Validation on: `PPVAE_PYRO_VALIDATION=1` (ppvae trains with it off by default).",
        "",
        "## Fitting the column transforms on Adult",
        "",
        f"ppvae: {transforms['ppvae_transform_s']:.2f} s"
        + (
            f"; TVAE's DataTransformer (ctgan): {transforms['tvae_transform_s']:.1f} s; speed-up {transforms['transform_speedup']:.0f}x"
            if "tvae_transform_s" in transforms
            else ""
        ),
    ]
    lines += [
        "",
        "## Sampling",
        "",
        f"{sampling['sample_rows']:,} rows of Adult from the default model: {sampling['sample_s']:.2f} s.",
    ]
    if scale:
        lines += [
            "",
            "## Scaling (Adult resampled with 1% noise; one epoch, default model)"
            + (" (kept from the last full run)" if args.no_scaling else ""),
            "",
            "| rows | fit s (1 epoch, incl. transforms) | s per 1k rows | peak RSS (GB) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['rows']:,} | {r['fit_s_1_epoch']:.1f} | {r['s_per_1k_rows']:.3f} | {r['peak_rss_gb']:.2f} |"
            for r in scale
        ]
    (OUT / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
