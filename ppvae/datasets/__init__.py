"""Real tables bundled with ppvae (see ``SOURCES.md`` beside this file for sources and licences).

>>> df = ppvae.datasets.load("adult")   # 32,561 rows; missing values written as "?"
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
MISSING_MARKERS = {"adult": ["?"], "shoppers": []}


def names() -> list[str]:
    """The bundled tables."""
    return sorted(p.name[: -len(".csv.gz")] for p in HERE.glob("*.csv.gz"))


def load(name: str) -> pd.DataFrame:
    """A bundled table as published (Adult keeps its ``?`` markers: pass
    ``missing_values=ppvae.datasets.MISSING_MARKERS["adult"]`` when fitting)."""
    path = HERE / f"{name}.csv.gz"
    if not path.is_file():
        raise ValueError(f"no bundled dataset {name!r}; available: {', '.join(names())}")
    return pd.read_csv(path)
