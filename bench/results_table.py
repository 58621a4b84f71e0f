"""Partial re-runs: merge freshly measured rows into an existing results CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def merge(
    path: Path, new: pd.DataFrame, keys: list[str], order: dict[str, list[str]]
) -> pd.DataFrame:
    """``new`` plus the rows of ``path`` (if it exists) whose ``keys`` ``new`` does not have,
    sorted by ``order`` (per key column, the values in their display order)."""
    if not path.is_file():
        return new
    old = pd.read_csv(path)
    fresh = set(map(tuple, new[keys].itertuples(index=False)))
    old = old[[tuple(k) not in fresh for k in old[keys].itertuples(index=False)]]
    merged = pd.concat([old, new], ignore_index=True)
    rank = {c: {v: i for i, v in enumerate(values)} for c, values in order.items()}
    return merged.sort_values(
        keys, key=lambda col: col.map(rank[col.name]) if col.name in rank else col
    ).reset_index(drop=True)
