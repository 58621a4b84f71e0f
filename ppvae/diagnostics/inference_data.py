"""A fitted model and a table as an ArviZ ``InferenceData``.

Groups (dims in brackets; ``chain`` is 1 — guide draws are independent samples, not a chain):

- ``posterior``: ``z`` [chain, draw, row, latent], draws from q(z | x) per row;
- ``prior``: ``z`` [chain, draw, latent], draws from p(z);
- ``posterior_predictive``: one variable per column [chain, draw, row], the rows
  reconstructed from each posterior draw, and ``generated::<column>`` [chain, draw, row],
  rows generated from the prior;
- ``log_likelihood``: one variable per column [chain, draw, row], log p(x_col | z) at each
  posterior draw, so per-column fit can be compared across models (``az.loo``/``az.compare``
  on a column's variable);
- ``observed_data``: one variable per column [row];
- ``sample_stats``: the training metrics per step (loss, recon, kl, and beta / lambda when
  the objective has them) [chain, draw=step].

Categorical columns are stored as integer level codes; their levels are in each variable's
``levels`` attribute (JSON). Numeric columns are floats (NaN where missing), datetimes as
nanoseconds since the epoch.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ppvae.data.transforms import CategoricalCodes

if TYPE_CHECKING:
    import arviz as az


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
) -> az.InferenceData:
    """``InferenceData`` of ``vae`` on the rows of ``df`` (pass a subsample for big tables)."""
    import arviz as az

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
        prior_z = vae.model_.prior().sample((num_samples,)).cpu().numpy()

    def stack(arrays: list[np.ndarray]) -> np.ndarray:
        return np.stack(arrays)[None]  # [chain=1, draw, ...]

    observed = _column_arrays(vae, df)
    row_coords = np.arange(n)
    coords = {"row": row_coords, "latent": np.arange(d)}
    dims = {"z": ["row", "latent"], **{c: ["row"] for c in columns}}
    pp = {c: stack(recon[c]) for c in columns}
    pp.update({f"generated::{c}": stack(generated[c]) for c in columns})
    dims.update({f"generated::{c}": ["row"] for c in columns})
    steps = vae.step_history_
    stats = (
        {k: steps[k].to_numpy(float)[None] for k in steps.columns if k not in ("step", "epoch")}
        if len(steps)
        else {}
    )
    idata = az.from_dict(
        posterior={"z": stack(z_draws)},
        posterior_predictive=pp,
        log_likelihood={c: stack(loglik[c]) for c in columns},
        observed_data=observed,
        sample_stats=stats,
        coords=coords,
        dims=dims,
    )
    idata.extend(
        az.from_dict(
            prior={"z": prior_z[None]}, coords={"latent": np.arange(d)}, dims={"z": ["latent"]}
        )
    )
    for c, levels in _levels(vae).items():
        for group in ("posterior_predictive", "observed_data"):
            ds = getattr(idata, group)
            ds[c].attrs["levels"] = levels
            if group == "posterior_predictive":
                ds[f"generated::{c}"].attrs["levels"] = levels
    return idata
