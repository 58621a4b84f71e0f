r"""Model comparison by held-out expected log predictive density (ELPD).

For rows :math:`x_1..x_n` that no model saw in training, each model's pointwise predictive
density is the importance-weighted estimate (Burda et al. 2016) with K guide draws,

.. math::  \widehat{\mathrm{lpd}}_i = \log \frac1K \sum_{k=1}^K w_{ik},\qquad
           w_{ik} = \frac{p(x_i, z_k)}{q(z_k \mid x_i)},\quad z_k \sim q(z \mid x_i),

and :math:`\widehat{\mathrm{elpd}} = \sum_i \widehat{\mathrm{lpd}}_i` with standard error
:math:`\sqrt{n\,\mathrm{Var}_i(\widehat{\mathrm{lpd}}_i)}`. Models are ranked by elpd;
``elpd_diff`` is the best model's elpd minus this one's (0 for the best) and ``dse`` its
standard error from the per-row differences, :math:`\sqrt{n\,\mathrm{Var}_i(d_i)}`: pairing
the rows removes the between-row variation that both models share (Vehtari et al. 2017).
``weight`` is the pseudo-BMA+ weight (Yao et al. 2018): the softmax of the elpds, averaged
over Bayesian-bootstrap reweightings of the rows. ``p_better`` is the share of row
bootstraps in which the best model's mean lpd beats this model's: the statistic to read
across refits of one spec with different seeds (fits of the same rows, so R-hat across
blocks of rows would measure nothing).

Reliability: the estimate of a row's lpd rests on its K importance weights. ``pareto_k``
is the shape of a generalized Pareto fitted to their upper tail (PSIS, Vehtari et al. 2024);
above 0.7 the weights have too heavy a tail for K draws to be trusted (the lpd is then
biased low): use more particles or read that model's elpd as a lower bound. With fewer
than 25 particles there is no tail to fit and k is NaN.

This is not PSIS-LOO: z is a per-row (local) latent, so draws of it cannot stand in for
leaving a row out. The held-out rows do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyro
import torch

from ppvae import arviz_compat
from ppvae.evaluation import particle_log_weights

K_THRESHOLD = 0.7
NUM_BOOTSTRAP = 1000


@dataclass
class Comparison:
    """Models ranked by held-out elpd.

    table: one row per model, best first: ``rank``, ``elpd``, ``se``, ``elpd_diff``, ``dse``,
        ``weight`` (pseudo-BMA+), ``p_better`` (share of row bootstraps where the best model
        wins; 1.0 is a clear difference, near 0.5 none), ``elpd_per_row`` (mean lpd, nats),
        ``k_high`` (rows with Pareto k > 0.7), ``k_max``.
    pointwise: lpd per held-out row and model ``[n, models]``.
    pareto_k: Pareto k per held-out row and model ``[n, models]``.
    bootstrap: mean lpd per row-bootstrap replicate and model ``[B, models]``.
    """

    table: pd.DataFrame
    pointwise: pd.DataFrame
    pareto_k: pd.DataFrame
    bootstrap: pd.DataFrame
    num_particles: int

    @property
    def best(self) -> str:
        return str(self.table.index[0])

    @property
    def n_rows(self) -> int:
        return len(self.pointwise)

    def summary(self) -> pd.DataFrame:
        return self.table

    def unreliable_rows(self, threshold: float = K_THRESHOLD) -> pd.DataFrame:
        """Held-out rows (index of ``heldout_df``) where some model's Pareto k > threshold."""
        return self.pareto_k[(self.pareto_k > threshold).any(axis=1)]

    def to_inference_data(self):
        """The row bootstrap as ArviZ groups: ``posterior["elpd_per_row"]`` [chain=model,
        draw=replicate] (and ``model`` as coordinate of chain), for ``az.plot_rank`` /
        ``az.plot_forest``: rank plots are flat where the models cannot be told apart."""
        values = self.bootstrap.to_numpy().T  # [model, B]
        ds = arviz_compat.dataset(
            {"elpd_per_row": values},
            {"elpd_per_row": ("chain", "draw")},
            {"chain": np.asarray([str(m) for m in self.bootstrap.columns])},
        )
        return arviz_compat.build({"posterior": ds})


def _named(models: Any) -> dict[str, Any]:
    from ppvae.diagnostics.seeds import SeedFits

    if isinstance(models, SeedFits):
        return {f"seed {s}": m for s, m in zip(models.seeds, models.models)}
    if isinstance(models, Mapping):
        return {str(k): v for k, v in models.items()}
    if isinstance(models, Sequence) and not isinstance(models, str):
        return {f"model {i}": m for i, m in enumerate(models)}
    raise TypeError(
        "models must be a dict {name: fitted TabularVAE}, a list of fitted models or the "
        f"SeedFits of ppvae.fit_seeds, got {type(models).__name__}"
    )


@torch.no_grad()
def pointwise_elpd(
    vae, df: pd.DataFrame, num_particles: int = 100, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``(lpd [n], pareto_k [n])`` of ``vae`` on ``df`` (module docstring)."""
    table = vae._table(df)
    with vae._rng(seed), pyro.validation_enabled(False):
        lw = particle_log_weights(vae.model_.model, vae.model_.guide, table, num_particles)
    lw = lw.double().cpu()
    lpd = (torch.logsumexp(lw, dim=-1) - math.log(num_particles)).numpy()
    return lpd, arviz_compat.pareto_k(lw.numpy())


def _pseudo_bma_plus(pointwise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pseudo-BMA+ weights ``[models]`` from pointwise lpd ``[n, models]`` (Yao et al. 2018)."""
    n = pointwise.shape[0]
    alpha = rng.dirichlet(np.ones(n), size=NUM_BOOTSTRAP)  # [B, n]
    z = n * alpha @ pointwise  # [B, models]
    z -= z.max(axis=1, keepdims=True)
    w = np.exp(z)
    return (w / w.sum(axis=1, keepdims=True)).mean(0)


def compare(
    models: Any,
    heldout_df: pd.DataFrame,
    num_particles: int = 100,
    max_rows: int | None = None,
    seed: int = 0,
) -> Comparison:
    """Rank fitted ``models`` by held-out elpd on ``heldout_df`` (module docstring).

    ``models``: ``{name: fitted TabularVAE}``, a list, or ``ppvae.fit_seeds(...)``.
    ``heldout_df``: rows none of the models was trained on (required: the training rows
    would reward memorising them). Rows with a category level some model never saw are left
    out (that model gives the level zero probability); ``max_rows`` subsamples the rest.
    """
    named = _named(models)
    if len(named) < 2:
        raise ValueError("compare needs at least two fitted models")
    if not isinstance(heldout_df, pd.DataFrame) or heldout_df.empty:
        raise ValueError("heldout_df must be a non-empty DataFrame of rows the models never saw")
    for name, vae in named.items():
        if not getattr(vae, "__sklearn_is_fitted__", lambda: False)():
            raise ValueError(f"model {name!r} is not fitted: call fit(df) or ppvae.load first")
    rows = heldout_df
    for vae in named.values():
        rows = rows[vae.transformer_.known_rows(rows)]
    if rows.empty:
        raise ValueError(
            "no held-out row has only category levels that every model saw in training"
        )
    if max_rows is not None and len(rows) > max_rows:
        rows = rows.sample(max_rows, random_state=seed)
    lpd, ks = {}, {}
    for name, vae in named.items():
        lpd[name], ks[name] = pointwise_elpd(vae, rows, num_particles, seed)
    pointwise = pd.DataFrame(lpd, index=rows.index)
    pareto_k = pd.DataFrame(ks, index=rows.index)
    values, n = pointwise.to_numpy(), len(rows)
    rng = np.random.default_rng(seed)
    elpd = values.sum(0)
    order = np.argsort(-elpd, kind="stable")
    best = values[:, order[0]]
    diffs = best[:, None] - values  # [n, models]
    boot_idx = rng.integers(0, n, size=(NUM_BOOTSTRAP, n))
    boot_means = np.stack([values[i].mean(0) for i in boot_idx])  # [B, models]
    table = pd.DataFrame(
        {
            "elpd": elpd,
            "se": np.sqrt(n * values.var(0, ddof=1)) if n > 1 else np.nan,
            "elpd_diff": diffs.sum(0),
            "dse": np.sqrt(n * diffs.var(0, ddof=1)) if n > 1 else np.nan,
            "weight": _pseudo_bma_plus(values, rng),
            "p_better": (boot_means[:, [order[0]]] > boot_means).mean(0),
            "elpd_per_row": values.mean(0),
            "k_high": (pareto_k.to_numpy() > K_THRESHOLD).sum(0),
            "k_max": pareto_k.to_numpy().max(0),
        },
        index=pd.Index(list(named), name="model"),
    ).iloc[order]
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.loc[table.index[0], ["dse", "p_better"]] = [0.0, np.nan]
    return Comparison(
        table=table,
        pointwise=pointwise,
        pareto_k=pareto_k,
        bootstrap=pd.DataFrame(boot_means, columns=list(named)),
        num_particles=num_particles,
    )
