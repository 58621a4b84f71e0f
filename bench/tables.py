"""The benchmark tables, shared by every bench script: where they live, their
missing-value markers and targets, the one 80/20 train/holdout split, and the common
set-up (threads, ppvae options) so that every result is measured the same way.

    from tables import load, split, setup, ppvae_options
    setup()
    df = load("adult")
    train, holdout = split(df, seen_levels=True)
    vae = ppvae.TabularVAE(**ppvae_options("adult", epochs=50)).fit(train)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from metrics import seen_levels_only

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
#: Torch threads for every measurement (the machine the results were measured on).
THREADS = 2
#: Share of rows in the training part of the split; the rest is the holdout.
TRAIN_FRACTION = 0.8


@dataclass(frozen=True)
class Dataset:
    name: str
    target: str
    task: str  # "binary" or "regression"
    missing_values: tuple = ()


DATASETS = {
    "adult": Dataset("adult", "income", "binary", ("?",)),
    "default": Dataset("default", "label", "binary"),
    "shoppers": Dataset("shoppers", "Revenue", "binary"),
    "diamonds": Dataset("diamonds", "price", "regression"),
}


def setup() -> None:
    """The measurement set-up every bench script starts with."""
    torch.set_num_threads(THREADS)


def path(name: str) -> Path:
    """The CSV of a shared table."""
    return SHARED / f"{name}.csv"


def missing_values(name: str) -> list[str]:
    """The table's markers of a missing value (Adult writes '?')."""
    return list(DATASETS[name].missing_values)


def load(name: str, rows: int | None = None, markers_as_nan: bool = False) -> pd.DataFrame:
    """A shared table as shipped; ``rows``: a seeded subsample; ``markers_as_nan``: its
    missing-value markers replaced by NaN (for contenders that do not take markers)."""
    df = pd.read_csv(path(name))
    markers = missing_values(name)
    if markers_as_nan and markers:
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].mask(df[c].isin(markers))
    if rows:
        df = df.sample(min(rows, len(df)), random_state=0).reset_index(drop=True)
    return df


def split(
    df: pd.DataFrame, seen_levels: bool = False, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The 80/20 ``(train, holdout)`` split (seeded, fresh indices); ``seen_levels``: holdout
    rows with a category level absent from train are dropped (models cannot score them)."""
    train = df.sample(frac=TRAIN_FRACTION, random_state=seed)
    holdout = df.drop(train.index)
    if seen_levels:
        holdout = seen_levels_only(holdout, train)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def ppvae_options(name: str, **overrides: Any) -> dict[str, Any]:
    """TabularVAE keyword arguments for a shared table: its markers, no progress bar."""
    return {"missing_values": missing_values(name), "verbose": False, **overrides}
