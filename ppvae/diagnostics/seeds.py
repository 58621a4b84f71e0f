"""Initialization sensitivity: one spec fitted with several seeds.

:func:`fit_seeds` fits one model per seed; :func:`ppvae.compare` ranks the fits by held-out
elpd (:mod:`ppvae.diagnostics.elpd`). Across refits of the same rows the meaningful
statistic is the paired per-row difference of held-out log-likelihoods, bootstrapped over
rows (``p_better``, ``dse``), and the spread of the seeds' elpd against that standard error;
``Comparison.to_inference_data()`` gives the row bootstrap per seed for ``az.plot_rank``.
Quantities that a rotation of the latent space leaves unchanged are compared, never raw
latent coordinates.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass
class SeedFits:
    """Fitted models, one per seed."""

    seeds: list[int]
    models: list[Any]

    def __iter__(self):
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)


def fit_seeds(
    spec: str | os.PathLike | Mapping[str, Any],
    df: pd.DataFrame,
    seeds: Iterable[int] = range(5),
    **overrides: Any,
) -> SeedFits:
    """Fit the spec once per seed (``seed`` overrides the spec's)."""
    from ppvae.vae import TabularVAE

    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError("fit_seeds needs at least two seeds to compare")
    models = [TabularVAE.from_spec(spec, **{**overrides, "seed": s}).fit(df) for s in seeds]
    return SeedFits(seeds, models)
