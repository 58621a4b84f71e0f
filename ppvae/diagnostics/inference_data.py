"""A fitted model and a table as ArviZ's container: ``InferenceData`` on ArviZ 0.x, an
``xarray.DataTree`` on ArviZ >= 1 (:mod:`ppvae.arviz_compat`).

Groups (dims in brackets; ``S`` are the sample dims of guide draws, ``("sample",)`` on
ArviZ >= 1 as its SVI converters use, ``("chain", "draw")`` with one chain on 0.x):

- ``posterior``: ``z`` [S, row, latent], independent draws from q(z | x) per row;
- ``prior``: ``z`` [S, row, latent], independent draws from p(z) (a row dim like the
  posterior's, so prior and posterior line up in ``az.plot_dist_comparison`` /
  ``az.plot_prior_posterior``);
- ``posterior_predictive``: one variable per column [S, row], each row reconstructed from a
  posterior draw (z ~ q(z | x), x ~ p(x | z));
- ``prior_predictive``: one variable per column [S, row], rows generated from the prior
  (z ~ p(z), x ~ p(x | z)): what ``vae.sample`` draws;
- ``log_likelihood``: one variable per column [S, row], log p(x_col | z) at each posterior
  draw. z is a per-row (local) latent, so these are not leave-one-row-out draws: PSIS-LOO
  (``az.loo``) does not apply to them; compare models on held-out rows with
  :func:`ppvae.compare`;
- ``observed_data``: one variable per column [row];
- ``training``: the training metrics per optimisation step [step] (loss, recon, kl, and
  beta / lambda when the objective has them); steps are not draws, so this group is kept
  out of ``sample_stats``.

Categorical columns are stored as integer level codes; their levels are in each variable's
``levels`` attribute (JSON). Numeric columns are floats (NaN where missing), datetimes as
nanoseconds since the epoch. ``az.summary(idata, var_names=["z"], kind="stats")`` (plus
``sample_dims=["sample"]`` on ArviZ >= 1) summarises the draws; R-hat and ESS measure MCMC
convergence and mean nothing for independent guide draws.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ppvae import arviz_compat
from ppvae.data.transforms import CategoricalCodes

if TYPE_CHECKING:
    import arviz as az
    import xarray as xr


def _column_arrays(vae, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each column as numbers: level codes for categorical columns, floats otherwise."""
    tr = vae.transformer_
    data = tr.prepare(df)
    out = {}
    for col, t in zip(tr.schema_.columns, tr.transforms_):
        values = tr._values(col, data[col.name])
        if isinstance(t, CategoricalCodes):
            out[str(col.name)] = t.encode(values)[0]
        else:
            out[str(col.name)] = np.asarray(values, dtype=float)
    return out


def _levels(vae) -> dict[str, str]:
    tr = vae.transformer_
    return {
        str(c.name): json.dumps(
            [None if pd.isna(v) else str(v) for v in t.levels] + ([None] if t.has_nan else [])
        )
        for c, t in zip(tr.schema_.columns, tr.transforms_)
        if isinstance(t, CategoricalCodes)
    }


@torch.no_grad()
def to_inference_data(
    vae, df: pd.DataFrame, num_samples: int = 20, seed: int = 0
) -> az.InferenceData | xr.DataTree:
    """ArviZ groups of ``vae`` on the rows of ``df`` (module docstring; pass a subsample for
    big tables): ``InferenceData`` on ArviZ 0.x, ``DataTree`` on ArviZ >= 1."""
    vae._check_fitted()
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    table = vae._table(df)
    module, layout = vae.model_, vae.layout_
    n, d = len(table), vae.latent_dim
    columns = [str(c) for c in layout.columns]
    z_draws, recon, loglik, generated = (
        [],
        {c: [] for c in columns},
        {c: [] for c in columns},
        {c: [] for c in columns},
    )
    with vae._rng(seed):
        for _ in range(num_samples):
            _, z = module.posterior(table)
            z_draws.append(z.cpu().numpy())
            per_col = module.column_log_prob(table, z=z).cpu().numpy()
            for j, c in enumerate(columns):
                loglik[c].append(per_col[:, j])
            rec = _column_arrays(vae, vae._generate(n, z=z))
            gen = _column_arrays(vae, vae._generate(n))
            for c in columns:
                recon[c].append(rec[c])
                generated[c].append(gen[c])
        prior_z = vae.model_.prior().sample((num_samples, n)).cpu().numpy()

    def stack(arrays: list[np.ndarray]) -> np.ndarray:
        return arviz_compat.guide_draws(np.stack(arrays))  # [S..., ...]

    sample_dims = arviz_compat.GUIDE_SAMPLE_DIMS
    coords = {"row": np.arange(n), "latent": np.arange(d)}
    z_dims = {"z": (*sample_dims, "row", "latent")}
    col_dims = {c: (*sample_dims, "row") for c in columns}
    levels = {c: {"levels": v} for c, v in _levels(vae).items()}
    steps = vae.step_history_
    metrics = [k for k in steps.columns if k not in ("step", "epoch")] if len(steps) else []
    groups = {
        "posterior": arviz_compat.dataset({"z": stack(z_draws)}, z_dims, coords),
        "prior": arviz_compat.dataset({"z": arviz_compat.guide_draws(prior_z)}, z_dims, coords),
        "posterior_predictive": arviz_compat.dataset(
            {c: stack(recon[c]) for c in columns}, col_dims, coords, levels
        ),
        "prior_predictive": arviz_compat.dataset(
            {c: stack(generated[c]) for c in columns}, col_dims, coords, levels
        ),
        "log_likelihood": arviz_compat.dataset(
            {c: stack(loglik[c]) for c in columns}, col_dims, coords
        ),
        "observed_data": arviz_compat.dataset(
            _column_arrays(vae, df), {c: ("row",) for c in columns}, coords, levels
        ),
        "training": arviz_compat.dataset(
            {k: steps[k].to_numpy(float) for k in metrics},
            {k: ("step",) for k in metrics},
            {"step": np.arange(len(steps))},
        )
        if metrics
        else None,
    }
    return arviz_compat.build(groups)
