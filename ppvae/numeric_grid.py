"""The recording grid of a numeric column (prices to 2 decimals, counts to whole numbers) and
the share of synthetic values that fall off it: a giveaway a detector on binned values can
miss, and a person spots at a glance."""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_DECIMALS = 6


def _on_grid(values: np.ndarray, decimals: int) -> np.ndarray:
    scaled = values * 10.0**decimals
    return np.isclose(scaled, np.round(scaled), rtol=1e-9, atol=1e-6)


def grid_decimals(values: pd.Series) -> int | None:
    """The fewest decimals (0 to 6) that every non-missing value is written with, or None
    (values finer than 6 decimals: a continuous column)."""
    x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    for d in range(MAX_DECIMALS + 1):
        if _on_grid(x, d).all():
            return d
    return None


def off_grid_share(real: pd.Series, synthetic: pd.Series) -> tuple[int | None, float]:
    """(decimals of ``real``'s grid, share of non-missing ``synthetic`` values off that grid);
    the share is NaN when ``real`` has no grid."""
    d = grid_decimals(real)
    x = pd.to_numeric(synthetic, errors="coerce").dropna().to_numpy(float)
    if d is None or len(x) == 0:
        return d, float("nan")
    return d, float(1.0 - _on_grid(x, d).mean())
