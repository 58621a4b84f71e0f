"""Small tables and ID-like columns (issue 18): does the default model collapse?

Each case: a shared table subsampled to 500, 1,000 or 2,000 rows (``random_state=0``), with
or without two added identifier columns (a made-up unique ``name`` and a unique integer
``row_id``), split 80/20 (seeded). ppvae's default spec and TVAE at its defaults are fitted on
the same training rows (TVAE without the ID columns, which it would one-hot encode: the
easier table for it) and scored on the held-out rows, the ID columns left out of every score:

- ``active_units``: of the default model (``vae.health_``), and whether its health check passed;
- ``ml_efficacy``: gradient boosting trained on synthetic rows, scored on real held-out rows
  (ROC AUC / R^2), the mean over ``DRAWS`` synthetic draws of as many rows as the training
  split (seeds 0, 1, ...; their standard deviation is ``ml_efficacy_sd``: one draw of 400 rows
  varies by about 0.04), next to ``ml_efficacy_real`` (trained on the real training rows, the
  same classifier and test rows). The test rows are the subsample's held-out 20 % and
  ``WIDE`` = 5,000 real rows of the full table outside the subsample (seeded): the 20 % alone
  are 100–400 rows, whose ROC AUC varies by about 0.05 on its own. The scores on the 20 % alone
  are kept as ``*_split``. TVAE is scored the same way (the mean over ``DRAWS`` draws of one
  fit);
- ``column_pair_trends`` / ``column_shapes`` (sdmetrics) against the training rows;
- for the ID columns: generated values unique, in the input's format (every value's shape
  is a training shape, ``ppvae.data.identifiers.shape_of``), none equal to a training value.

Cases are appended to ``bench/results/small_tables.csv`` as they finish and skipped when
already there, so an interrupted run resumes; ``small_tables.md`` is rewritten each time.
``--seeds`` refits the default model with other seeds (the spread across training seeds is
reported next to the checks, which use seed 0); ``--tvae-from`` reuses the TVAE scores of an
earlier CSV instead of refitting TVAE (one fit and one draw per table and size).

    nice -n 10 python bench/small_tables.py                      # every case
    nice -n 10 python bench/small_tables.py --tables adult --rows 500
    nice -n 10 python bench/small_tables.py --rows 500 --ids no --seeds 1 2   # seed spread
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import ml_efficacy, quality  # noqa: E402
from run import CTGANAdapter  # noqa: E402
from tables import DATASETS, SHARED  # noqa: E402

import ppvae  # noqa: E402
from ppvae.data.identifiers import shape_of  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CSV, MD = RESULTS / "small_tables.csv", RESULTS / "small_tables.md"
TABLES = ("adult", "default", "diamonds", "shoppers")
ROWS = (500, 1000, 2000)
IDS = ("name", "row_id")
KEY = ["table", "rows", "ids", "seed"]
DRAWS = 5
COLUMNS = [
    *KEY, "active_units", "health_ok", "id_warnings", "epochs", "fit_s", "ml_efficacy",
    "ml_efficacy_sd", "column_shapes", "column_pair_trends", "ml_efficacy_real", "ids_unique", "ids_in_format",
    "ids_fresh", "tvae_ml_efficacy", "tvae_column_pair_trends", "measured",
    "ml_efficacy_split", "ml_efficacy_real_split", "tvae_ml_efficacy_split",
]  # fmt: skip
TVAE_COLUMNS = ("tvae_ml_efficacy", "tvae_ml_efficacy_split", "tvae_column_pair_trends")
WIDE = 5000  # real rows outside the subsample added to the efficacy test rows
FIRST = ["Ada", "Bram", "Chen", "Dalia", "Emeka", "Freya", "Goran", "Hiro", "Ines", "Jonas"]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ber", "don", "gar", "son"]


def add_ids(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``df`` with a unique made-up ``name`` ("Freya Tolosa") and a unique integer ``row_id``."""
    rng = np.random.default_rng(seed)
    names: set[str] = set()
    while len(names) < len(df):
        last = "".join(rng.choice(SYLLABLES, rng.integers(2, 4))).title()
        names.add(f"{rng.choice(FIRST)} {last}")
    out = df.copy()
    out["name"] = rng.permutation(sorted(names))
    out["row_id"] = 10_000 + rng.permutation(len(df))
    return out


def case_rows(table: str, rows: int, ids: bool) -> tuple[pd.DataFrame, ...]:
    """The case's training rows (80 % of the subsample), its held-out 20 % and the wide test
    rows: that 20 % and ``WIDE`` real rows of the full table outside the subsample."""
    ds = DATASETS[table]
    df = pd.read_csv(SHARED / f"{table}.csv")
    for c in df.columns:
        if ds.missing_values and df[c].dtype == object:
            df[c] = df[c].mask(df[c].isin(ds.missing_values))
    sub = df.sample(rows, random_state=0)
    outside = df.drop(sub.index).sample(WIDE, random_state=1)
    df = sub.reset_index(drop=True)
    if ids:
        df = add_ids(df)
    train = df.sample(frac=0.8, random_state=0)
    test = df.drop(train.index).reset_index(drop=True)
    wide = pd.concat([test[list(outside.columns)], outside], ignore_index=True)
    return train.reset_index(drop=True), test, wide


def id_checks(train: pd.DataFrame, synth: pd.DataFrame) -> dict[str, bool]:
    name, key = synth["name"], synth["row_id"]
    return {
        "ids_unique": bool(name.is_unique and key.is_unique),
        "ids_in_format": bool(
            set(name.map(shape_of)) <= set(train["name"].map(shape_of))
            and pd.api.types.is_integer_dtype(key.dtype)
        ),
        "ids_fresh": not (set(name) & set(train["name"]) or set(key) & set(train["row_id"])),
    }


_TVAE_CACHE: dict[tuple[str, int], dict[str, float]] = {}


def tvae_scores(table: str, rows: int, done: pd.DataFrame) -> dict[str, float]:
    """TVAE on the case's rows without ID columns (shared by the with/without-ID cases and
    the seeds; read from ``done`` or ``--tvae-from`` when there)."""
    key = (table, rows)
    done = pd.concat([d for d in (done, TVAE_FROM) if len(d)]) if len(TVAE_FROM) else done
    prior = done[(done.table == table) & (done.rows == rows)] if len(done) else done
    if key not in _TVAE_CACHE and len(prior):
        row = prior.iloc[0]
        _TVAE_CACHE[key] = {k: row[k] for k in TVAE_COLUMNS}
    if key not in _TVAE_CACHE:
        ds = DATASETS[table]
        train, test, wide = case_rows(table, rows, ids=False)
        model = CTGANAdapter("tvae", QUICK.get("epochs")).fit(train)
        draws = [model.sample(len(train), seed=s) for s in range(DRAWS)]
        _TVAE_CACHE[key] = {
            "tvae_ml_efficacy": float(
                np.mean([ml_efficacy(d, wide, ds.target, ds.task) for d in draws])
            ),
            "tvae_ml_efficacy_split": ml_efficacy(draws[0], test, ds.target, ds.task),
            "tvae_column_pair_trends": quality(train, draws[0])["column_pair_trends"],
        }
    return _TVAE_CACHE[key]


def tvae_spread(tables: list[str], rows_list: list[int], seeds: list[int]) -> None:
    """TVAE refitted with training seeds ``seeds`` on the rows of each table and size (no ID
    columns), each fit scored by the mean ML efficacy of ``DRAWS`` draws; appended to
    ``small_tables_tvae_spread.csv`` (resumable)."""
    from ctgan import TVAE

    path = CSV.with_name("small_tables_tvae_spread.csv")
    done = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["table", "rows", "seed"])
    for rows in rows_list:
        for table in tables:
            for seed in seeds:
                if len(done[(done.table == table) & (done.rows == rows) & (done.seed == seed)]):
                    continue
                ds = DATASETS[table]
                train, _, wide = case_rows(table, rows, ids=False)
                model = TVAE(**({} if not QUICK else {"epochs": QUICK["epochs"]}))
                model.set_random_state(seed)
                discrete = [c for c in train.columns if train[c].dtype in (object, bool)]
                model.fit(train, discrete_columns=discrete)
                efficacy = []
                for draw in range(DRAWS):
                    model.set_random_state(draw)
                    synth = model.sample(len(train))
                    efficacy.append(ml_efficacy(synth, wide, ds.target, ds.task))
                row = {"table": table, "rows": rows, "seed": seed}
                row |= {"tvae_ml_efficacy": float(np.mean(efficacy))}
                row |= {"tvae_ml_efficacy_sd": float(np.std(efficacy))}
                print(row, flush=True)
                pd.DataFrame([row]).to_csv(path, mode="a", header=not path.is_file(), index=False)
                done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)


QUICK: dict = {}  # --quick: two epochs for both models (a smoke test of the script)
TVAE_FROM = pd.DataFrame()  # --tvae-from: an earlier small_tables.csv


def run_case(table: str, rows: int, ids: bool, seed: int, done: pd.DataFrame) -> dict:
    ds = DATASETS[table]
    train, test, wide = case_rows(table, rows, ids)
    start = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae = ppvae.TabularVAE.from_spec("default", verbose=False, seed=seed, **QUICK).fit(train)
    fit_s = time.time() - start
    modelled = [c for c in train.columns if c not in IDS]
    draws = [vae.sample(len(train), seed=s) for s in range(DRAWS)]
    efficacy = [ml_efficacy(d[modelled], wide, ds.target, ds.task) for d in draws]
    synth = draws[0]
    row = {
        "table": table,
        "rows": rows,
        "ids": ids,
        "seed": seed,
        "active_units": vae.health_.active_units,
        "health_ok": vae.health_.ok,
        "id_warnings": sum("looks like an identifier" in str(w.message) for w in caught),
        "epochs": len(vae.history_),
        "fit_s": round(fit_s, 1),
        **quality(train[modelled], synth[modelled]),
        "ml_efficacy": float(np.mean(efficacy)),
        "ml_efficacy_sd": float(np.std(efficacy)),
        "ml_efficacy_real": ml_efficacy(train[modelled], wide, ds.target, ds.task),
        "ml_efficacy_split": float(
            np.mean([ml_efficacy(d[modelled], test[modelled], ds.target, ds.task) for d in draws])
        ),
        "ml_efficacy_real_split": ml_efficacy(train[modelled], test[modelled], ds.target, ds.task),
    }
    if ids:
        row.update(id_checks(train, synth))
    row.update(tvae_scores(table, rows, done))
    row["measured"] = date.today().isoformat()
    return row


def seed_spread(results: pd.DataFrame) -> list[str]:
    """Markdown lines: per table and size fitted with several seeds (no ID columns), the
    efficacy gap's mean and range across training seeds."""
    r = results[~results.ids.astype(bool)].copy()
    r["gap"] = r["ml_efficacy_real"] - r["ml_efficacy"]
    spread = r.groupby(["table", "rows"]).gap.agg(["count", "mean", "min", "max", "std"])
    spread = spread[spread["count"] > 1]
    if not len(spread):
        return []
    lines = [
        "Seed spread: the efficacy gap (train-on-real minus train-on-synthetic) of the default "
        "model fitted with training seeds 0, 1, ... on the same rows (no ID columns):",
        "",
        "| table | rows | seeds | mean gap | min | max | sd |",
        "|---|---|---|---|---|---|---|",
    ]
    for (table, rows), g in spread.iterrows():
        lines.append(
            f"| {table} | {rows} | {int(g['count'])} | {g['mean']:.3f} | {g['min']:.3f} | "
            f"{g['max']:.3f} | {g['std']:.3f} |"
        )
    return [*lines, ""]


def tvae_spread_lines(results: pd.DataFrame) -> list[str]:
    """Markdown lines: TVAE refitted with other seeds (``--tvae-seeds``), next to the
    single-draw score the checks use and the default model's efficacy over its seeds."""
    path = CSV.with_name("small_tables_tvae_spread.csv")
    if not path.is_file():
        return []
    t = pd.read_csv(path)
    r = results[~results.ids.astype(bool)]
    lines = [
        "TVAE spread: TVAE refitted with training seeds (`--tvae-seeds`), each fit scored by "
        f"the mean ML efficacy of {DRAWS} draws, next to the one fit and one draw the checks "
        "use and the default model's efficacy (mean over its training seeds):",
        "",
        "| table | rows | TVAE (checks) | TVAE seeds | TVAE mean | TVAE min | TVAE max | "
        "ppvae seeds | ppvae mean | ppvae min | ppvae max |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (table, rows), g in t.groupby(["table", "rows"]):
        mine = r[(r.table == table) & (r.rows == rows)]
        if not len(mine):  # that case is not measured (yet)
            continue
        e = g.tvae_ml_efficacy
        lines.append(
            f"| {table} | {rows} | {mine.tvae_ml_efficacy.iloc[0]:.3f} | {len(g)} | "
            f"{e.mean():.3f} | {e.min():.3f} | {e.max():.3f} | {len(mine)} | "
            f"{mine.ml_efficacy.mean():.3f} | {mine.ml_efficacy.min():.3f} | "
            f"{mine.ml_efficacy.max():.3f} |"
        )
    return [*lines, ""]


def write_markdown(results: pd.DataFrame) -> None:
    spread = seed_spread(results) + tvae_spread_lines(results)
    r = results[results.seed == 0].sort_values(KEY).copy()
    r["efficacy_gap"] = r["ml_efficacy_real"] - r["ml_efficacy"]
    r["vs_tvae_efficacy"] = r["ml_efficacy"] - r["tvae_ml_efficacy"]
    r["vs_tvae_trends"] = r["column_pair_trends"] - r["tvae_column_pair_trends"]
    cols = [
        "table", "rows", "ids", "active_units", "health_ok", "epochs", "ml_efficacy",
        "ml_efficacy_sd", "ml_efficacy_real", "efficacy_gap", "tvae_ml_efficacy",
        "ml_efficacy_split", "ml_efficacy_real_split", "tvae_ml_efficacy_split", "column_pair_trends",
        "tvae_column_pair_trends", "column_shapes", "ids_unique", "ids_in_format", "ids_fresh",
    ]  # fmt: skip
    cols = [c for c in cols if c in r.columns]
    shown = r[cols].copy()
    for c in ("ids_unique", "ids_in_format", "ids_fresh"):  # read back as 1.0 / NaN
        if c in shown.columns:
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else str(bool(v)))

    def cell(v) -> str:
        if isinstance(v, float) and not np.isnan(v) and not float(v).is_integer():
            return f"{v:.3f}"
        return "" if isinstance(v, float) and np.isnan(v) else str(v)

    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(False)]
    n = len(r)
    checks = {
        "at least one active unit": int((r.active_units >= 1).sum()),
        "ML efficacy within 0.05 of train-on-real": int((r.efficacy_gap <= 0.05).sum()),
        "ML efficacy not below TVAE's": int((r.vs_tvae_efficacy >= 0).sum()),
        "Pair Trends at least TVAE's": int((r.vs_tvae_trends >= 0).sum()),
    }
    with_ids = r[r.ids.astype(bool)]
    if len(with_ids):
        for c in ("ids_unique", "ids_in_format", "ids_fresh"):
            checks[f"{c} (of the {len(with_ids)} cases with IDs)"] = int(
                with_ids[c].astype(bool).sum()
            )
    text = [
        "# Small tables and ID-like columns (issue 18)",
        "",
        f"Measured {', '.join(sorted(set(r.measured)))} on {platform.machine()}, 2 shared cores, "
        f"torch {torch.__version__}, by `nice -n 10 python bench/small_tables.py` "
        "(resumable; each case is one row of small_tables.csv). ppvae: the default spec; TVAE "
        "(ctgan) at its defaults on the same training rows without the ID columns. Scores leave "
        "the ID columns out; ML efficacy is ROC AUC (adult, default, shoppers) or R^2 "
        f"(diamonds) on real rows the models never saw: the subsample's held-out 20 % and {WIDE:,} "
        f"rows of the full table outside the subsample, the mean (ppvae: and sd) over {DRAWS} "
        "synthetic draws. `*_split` columns: the same scores on the held-out 20 % alone "
        "(100–400 rows; TVAE: one draw), as measured before 2026-11-29. Checks and the table: "
        "training seed 0.",
        "",
        f"{n} of {len(TABLES) * len(ROWS) * 2} cases measured. Checks (cases passing):",
        "",
        *[f"- {k}: {v}" + ("" if "(of" in k else f" of {n}") for k, v in checks.items()],
        "",
        *table,
        "",
        *spread,
    ]
    tmp = MD.with_suffix(".md.tmp")
    tmp.write_text("\n".join(text))
    tmp.replace(MD)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    p.add_argument("--rows", nargs="+", type=int, default=list(ROWS))
    p.add_argument("--ids", nargs="+", default=["no", "yes"], choices=["no", "yes"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds")
    p.add_argument("--tvae-from", type=Path, help="reuse the TVAE scores of this CSV")
    p.add_argument(
        "--tvae-seeds", nargs="+", type=int, help="only refit TVAE with these seeds (spread)"
    )
    p.add_argument("--quick", action="store_true", help="2 epochs each, results in --out")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of the CSV and Markdown")
    args = p.parse_args()
    global CSV, MD, TVAE_FROM
    CSV, MD = args.out / CSV.name, args.out / MD.name
    if args.quick:
        QUICK["epochs"] = 2
    if args.tvae_from:
        TVAE_FROM = pd.read_csv(args.tvae_from)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tvae_seeds:
        tvae_spread(args.tables, args.rows, args.tvae_seeds)
        write_markdown(pd.read_csv(CSV))
        return
    done = pd.read_csv(CSV) if CSV.is_file() else pd.DataFrame(columns=COLUMNS)
    cases = [
        (rows, table, flag == "yes", seed)
        for seed in args.seeds
        for rows in args.rows
        for table in args.tables
        for flag in args.ids
    ]
    for rows, table, ids, seed in cases:
        have = done[
            (done.table == table) & (done.rows == rows) & (done.ids == ids) & (done.seed == seed)
        ]
        if len(have):
            continue
        row = run_case(table, rows, ids, seed, done)
        print(row, flush=True)
        done = pd.concat([d for d in (done, pd.DataFrame([row])) if len(d)], ignore_index=True)
        new = not CSV.is_file()
        pd.DataFrame([row]).reindex(columns=COLUMNS).to_csv(CSV, mode="a", header=new, index=False)
        write_markdown(done)


if __name__ == "__main__":
    main()
