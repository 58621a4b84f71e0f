"""Past one machine and past memory (issue 15): streaming fits, quantile-sketch error and
data-parallel training, measured side by side in one run.

    nice -n 10 python bench/scale.py [--rows 100000 1000000 10000000] [--epochs 20]
                                     [--skip-stream] [--skip-torchrun] [--skip-sketch]

1. Sketch error: for every numeric column of the four shared tables (and of the largest
   generated table), the max absolute difference between the CDF a streamed fit's
   quantile transform encodes and the exact empirical CDF, at every distinct value
   (``reservoir``: the default 100,000-row sample; ``reservoir 10k``: a 10,000-row sample,
   to show the sampling error the shared tables are too small to show; ``in memory``: the
   in-memory fit, i.e. the interpolation error of 1,000 knots alone).
2. Streaming: Adult resampled with noise to 10^5, 10^6 and 10^7 rows, written as Parquet
   under a temporary directory (not kept); one epoch of ``TabularVAE().fit(path)`` in a
   fresh process each: scan and epoch time, peak RSS (the process's ``ru_maxrss``).
3. torchrun on Adult, 1 and 2 processes (gloo, one thread each), the same epochs and the
   same rows per optimiser step (``batch_size`` is global): seconds per epoch (the fit time
   ``ppvae fit`` reports, which includes fitting the transforms and the health check, over
   the epochs) and Column Shapes / Pair Trends of ``len(adult)`` samples against Adult; a
   second single-process seed gives the seed-to-seed spread for scale.

Writes bench/results/scale.md and scale.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import RESULTS as OUT  # noqa: E402
from tables import ROOT, load, missing_values, path  # noqa: E402

PYTHON = sys.executable
TORCHRUN = str(Path(PYTHON).with_name("torchrun"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


# -- 1. sketch error ---------------------------------------------------------------------
def cdf_error(transform, values: np.ndarray) -> float:
    """Max |F_transform(v) - F_exact(v)| over the distinct observed values v."""
    x = np.sort(values[~np.isnan(values)])
    distinct = np.unique(x)
    exact = np.searchsorted(x, distinct, side="right") / len(x)
    at = distinct + (0.5 if transform.dequantize else 0.0)  # the top of v's unit interval
    return float(np.max(np.abs(np.interp(at, transform.knots, transform.probs) - exact)))


def sketch_errors(name: str, source, column, full=None, reservoir_sizes=(100_000, 10_000)) -> list:
    """Per numeric column: CDF error of streamed fits with each reservoir size, and of the
    in-memory fit of ``full`` (the whole table) when given; ``column(name)``: one column
    of the table as a frame."""
    from ppvae.data import TableTransformer
    from ppvae.data.sources import open_source
    from ppvae.data.streaming import scan
    from ppvae.data.transforms import QuantileNormal

    markers = missing_values(name)
    fits = {}
    for size in reservoir_sizes:
        t = TableTransformer(missing_values=markers)
        scan(open_source(source), t, seed=0, val_fraction=0.1, sample_rows=size)
        fits[f"reservoir {size // 1000}k"] = t
    rows = []
    for col, transform in zip(t.schema_.columns, t.transforms_):
        if not isinstance(transform, QuantileNormal):
            continue
        data = column(col.name)
        values = t._values(col, t.prepare(data)[col.name])
        row = {"table": name, "column": col.name, "kind": col.kind, "rows": int(len(values))}
        for label, fitted in fits.items():
            i = fitted.schema_.names.index(col.name)
            row[label] = cdf_error(fitted.transforms_[i], values)
        if full is not None:
            memory = TableTransformer(missing_values=markers).fit(full)
            i = memory.schema_.names.index(col.name)
            row["in memory"] = cdf_error(memory.transforms_[i], values)
        rows.append(row)
    return rows


# -- 2. the generated table --------------------------------------------------------------
def write_big_table(target: Path, rows: int, chunk: int = 500_000, seed: int = 0) -> None:
    """Adult resampled with noise: rows drawn with replacement, numeric columns jittered
    (ages and hours by +-1-2, fnlwgt and non-zero capital by ~5 % lognormal noise)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    adult = load("adult")
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        part = adult.iloc[rng.integers(0, len(adult), n)].reset_index(drop=True)
        part["age"] = np.clip(part["age"] + rng.integers(-2, 3, n), 17, 90)
        part["hours-per-week"] = np.clip(part["hours-per-week"] + rng.integers(-1, 2, n), 1, 99)
        part["fnlwgt"] = np.round(part["fnlwgt"] * np.exp(rng.normal(0, 0.05, n))).astype("int64")
        for c in ("capital-gain", "capital-loss"):
            noisy = np.round(part[c] * np.exp(rng.normal(0, 0.05, n))).astype("int64")
            part[c] = np.where(part[c] > 0, noisy, 0)
        table = pa.Table.from_pandas(part, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(target, table.schema)
        writer.write_table(table, row_group_size=131_072)
    writer.close()


CHILD = """
import json, resource, sys, time, warnings
import torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
import ppvae
from ppvae.data import streaming
timing = {}
scan = streaming.scan
def timed_scan(*a, **k):
    t = time.perf_counter(); out = scan(*a, **k); timing["scan_s"] = time.perf_counter() - t
    return out
streaming.scan = timed_scan
start = time.perf_counter()
vae = ppvae.TabularVAE(epochs=1, patience=None, verbose=False, missing_values=["?"])
vae.fit(sys.argv[1])
total = time.perf_counter() - start
timing.update(fit_s=total, epoch_s=total - timing["scan_s"],
              peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              val_loss=float(vae.history_["val_loss"].iloc[-1]))
print("RESULT " + json.dumps(timing))
"""


def stream_fit(data: Path) -> dict:
    out = subprocess.run(
        [PYTHON, "-c", CHILD, str(data)], env=ENV, capture_output=True, text=True, check=False
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode or not line:
        raise RuntimeError(f"streaming fit of {data} failed:\n{out.stderr[-3000:]}")
    return json.loads(line[0][len("RESULT ") :])


# -- 3. torchrun -------------------------------------------------------------------------
def torchrun_fit(procs: int, epochs: int, seed: int, folder: Path) -> dict:
    model = folder / f"adult-{procs}p-s{seed}"
    cmd = [TORCHRUN, "--nproc-per-node", str(procs), "-m", "ppvae", "fit", str(path("adult"))]
    cmd += ["-o", str(model), "--epochs", str(epochs), "--seed", str(seed), "-q", "--force"]
    cmd += ["--missing-values", "?", "--set", "patience=null"]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    fitted = re.search(r"columns in ([0-9.]+) s", out.stderr)
    if out.returncode or not fitted:
        raise RuntimeError(f"torchrun {procs} failed:\n{out.stderr[-3000:]}")
    return {"model": model, "wall_s": wall, "fit_s": float(fitted.group(1))}


def fidelity(model: Path, real: pd.DataFrame) -> dict:
    from metrics import quality

    import ppvae

    vae = ppvae.load(model)
    synth = vae.sample(len(real), seed=0)
    history = pd.read_csv(model / "history.csv")
    return {"epochs": len(history), **quality(real, synth)}


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table of ``frame`` (numbers rounded to 4 significant digits)."""
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in frame.values]
    head = [" | ".join(map(str, frame.columns)), " | ".join("---" for _ in frame.columns)]
    return "\n".join(f"| {line} |" for line in head + [" | ".join(c) for c in cells])


def write(records: list[dict]) -> None:
    """scale.csv and scale.md from the records so far (rewritten after every part)."""
    frame = pd.DataFrame(records)
    frame.to_csv(OUT / "scale.csv", index=False)
    lines = [
        "# Scale: streaming, sketch error, data-parallel (issue 15)",
        "",
        f"`nice -n 10 python bench/scale.py {' '.join(sys.argv[1:])}`, {date.today()}, "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        "torch one thread per process. Raw rows: scale.csv.",
        "",
    ]
    parts = set(frame["part"])
    if "stream" in parts:
        s = frame[frame.part == "stream"][["rows", "scan_s", "epoch_s", "peak_rss_mb", "val_loss"]]
        s = s.assign(us_per_row=1e6 * s.epoch_s / s.rows)
        lines += ["## Streaming one epoch (Parquet, default model, batch 500)", ""]
        lines += [markdown(s), ""]
    if "sketch" in parts:
        k = frame[frame.part == "sketch"].dropna(axis=1, how="all")
        keep = [c for c in k.columns if c not in ("part",)]
        lines += ["## Quantile sketch: max absolute CDF error", ""]
        lines += [markdown(k[keep]), ""]
    if "torchrun" in parts:
        t = frame[frame.part == "torchrun"]
        cols = ["procs", "seed", "epochs", "fit_s", "s_per_epoch", "rows_per_s"]
        cols += ["column_shapes", "column_pair_trends"]
        lines += ["## torchrun on Adult (gloo, one thread per process)", ""]
        lines += [markdown(t[[c for c in cols if c in t.columns]]), ""]
    (OUT / "scale.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--skip-torchrun", action="store_true")
    parser.add_argument("--skip-sketch", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ppvae-bench-scale-") as tmp:
        folder = Path(tmp)
        if not args.skip_sketch:
            for name in ("adult", "default", "diamonds", "shoppers"):
                df = pd.read_csv(path(name))
                src = folder / f"{name}.parquet"
                df.to_parquet(src, row_group_size=8192)
                for row in sketch_errors(name, src, lambda c, df=df: df[[c]], full=df):
                    records.append({"part": "sketch", **row})
                print(f"sketch {name} done", flush=True)
            write(records)
        if not args.skip_torchrun:
            real = load("adult")
            for procs, seed in [(1, 0), (2, 0), (1, 1)]:
                run = torchrun_fit(procs, args.epochs, seed, folder)
                result = {"part": "torchrun", "procs": procs, "seed": seed, **run}
                result.update(fidelity(result.pop("model"), real))
                result["s_per_epoch"] = result["fit_s"] / result["epochs"]
                result["rows_per_s"] = len(real) * 0.9 / result["s_per_epoch"]
                print(result, flush=True)
                records.append(result)
                write(records)
        if not args.skip_stream:
            import pyarrow.parquet as pq

            for n in args.rows:
                data = folder / f"adult-{n}.parquet"
                t = time.perf_counter()
                write_big_table(data, n)
                print(f"wrote {n} rows in {time.perf_counter() - t:.0f} s", flush=True)
                result = {"part": "stream", "rows": n, **stream_fit(data)}
                print(result, flush=True)
                records.append(result)
                write(records)
                if n == max(args.rows) and not args.skip_sketch:
                    column = lambda c, p=data: pq.read_table(p, columns=[c]).to_pandas()  # noqa: E731
                    for row in sketch_errors("adult", data, column, reservoir_sizes=(100_000,)):
                        records.append({"part": "sketch", **row, "table": data.stem})
                    write(records)
                data.unlink()
    print((OUT / "scale.md").read_text())


if __name__ == "__main__":
    main()
