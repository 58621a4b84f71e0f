"""ArviZ 0.x (``InferenceData``) and ArviZ >= 1 (``xarray.DataTree``) behind one interface.

ppvae supports both: Python 3.10/3.11 resolve ArviZ 0.23 (ArviZ 1.x needs Python >= 3.12)
and Python 3.12/3.13 resolve 1.x. Groups are built as plain ``xarray.Dataset`` objects
(xarray is the common ground of both) and assembled by :func:`build`.

Sample dims of draws from the guide q(z | x) (:data:`GUIDE_SAMPLE_DIMS`):

- ArviZ >= 1: ``("sample",)``, the convention of ArviZ's own SVI converters
  (``arviz_base`` ``SVIAdapter``, ``from_numpyro_svi``): independent draws, not a chain. Pass
  ``sample_dims=["sample"]`` to ArviZ functions (``az.summary(..., kind="stats")``,
  ``az.plot_dist``, ``az.plot_prior_posterior``; :func:`plot_ppc` for the predictive check).
- ArviZ 0.x: ``("chain", "draw")`` with one chain: 0.x has no SVI converter and its
  functions require chain and draw. R-hat and ESS of independent draws say nothing about
  convergence; use ``az.summary(..., kind="stats")``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import numpy as np

ARVIZ_MAJOR = int(version("arviz").split(".")[0])
GUIDE_SAMPLE_DIMS: tuple[str, ...] = ("sample",) if ARVIZ_MAJOR >= 1 else ("chain", "draw")


def guide_draws(array: np.ndarray) -> np.ndarray:
    """Draws ``[S, ...]`` with the leading axes of :data:`GUIDE_SAMPLE_DIMS`."""
    array = np.asarray(array)
    return array if len(GUIDE_SAMPLE_DIMS) == 1 else array[None]


def dataset(
    variables: Mapping[str, np.ndarray],
    dims: Mapping[str, tuple[str, ...]],
    coords: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
):
    """An ``xarray.Dataset`` of ``variables`` with the given ``dims`` per variable; integer
    coordinates for every dim not in ``coords``; ``attrs[name]`` set on each variable."""
    import xarray as xr

    coords = dict(coords or {})
    data_vars = {}
    for name, values in variables.items():
        values = np.asarray(values)
        var_dims = tuple(dims[name])
        for dim, size in zip(var_dims, values.shape):
            coords.setdefault(dim, np.arange(size))
        data_vars[name] = xr.Variable(var_dims, values, attrs=dict((attrs or {}).get(name, {})))
    used = {d for v in data_vars.values() for d in v.dims}
    return xr.Dataset(data_vars, coords={k: v for k, v in coords.items() if k in used})


def build(groups: Mapping[str, Any]):
    """ArviZ's container of ``groups`` (name -> Dataset): ``InferenceData`` (0.x) or
    ``DataTree`` (>= 1). Groups outside ArviZ's schema (``training``) are kept as they are."""
    groups = {k: v for k, v in groups.items() if v is not None}
    if ARVIZ_MAJOR >= 1:
        import xarray as xr

        return xr.DataTree.from_dict(dict(groups))
    import arviz as az

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*group is not defined in the InferenceData")
        return az.InferenceData(**groups)


MIN_TAIL_PARTICLES = 25  # PSIS fits the largest min(K/5, 3 sqrt(K)) weights: at least 5


def pareto_k(log_weights: np.ndarray) -> np.ndarray:
    """Pareto shape k of the upper tail of each row's importance weights ``[n, K] -> [n]``
    (PSIS, Vehtari et al. 2024, via ArviZ). k < 0.5: the weights have finite variance; above
    0.7 the estimate is unreliable: more particles or a better guide are needed. NaN where
    no tail can be fitted: fewer than 25 particles, or a row whose tail weights are equal."""
    log_weights = np.asarray(log_weights, dtype=float)
    if log_weights.shape[-1] < MIN_TAIL_PARTICLES:
        return np.full(log_weights.shape[:-1], np.nan)
    try:
        return _pareto_k(log_weights)
    except ValueError:  # arviz_stats refuses a tail of equal values: find the rows one by one
        out = np.full(log_weights.shape[:-1], np.nan)
        for i, row in enumerate(log_weights):
            try:
                out[i] = _pareto_k(row[None])[0]
            except ValueError:
                pass
        return out


def _pareto_k(log_weights: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if ARVIZ_MAJOR >= 1:
            from arviz_stats.base import array_stats

            # arviz_stats' psislw takes log-likelihoods: the log ratios are their negatives
            _, k = array_stats.psislw(-log_weights, r_eff=1, axis=-1)
        else:
            import arviz as az

            _, k = az.psislw(log_weights, reff=1.0)
    return np.asarray(k, dtype=float)


def plot_ppc(data, var_names: list[str] | None = None, num_samples: int | None = None, **kwargs):
    """ArviZ's posterior predictive plot of ``data`` on either ArviZ: ``az.plot_ppc`` (0.x) or
    ``az.plot_ppc_dist`` (>= 1). arviz-plots 1.3 stacks the sample dims into a new dim named
    ``sample``, which fails when the draws' dim is itself ``sample`` (ArviZ's SVI convention),
    so the dim is renamed ``draw`` for the plot."""
    import arviz as az

    if ARVIZ_MAJOR < 1:
        return az.plot_ppc(data, var_names=var_names, num_pp_samples=num_samples, **kwargs)
    renamed = data.map_over_datasets(
        lambda ds: ds.rename({"sample": "draw"}) if "sample" in ds.dims else ds
    )
    return az.plot_ppc_dist(
        renamed, var_names=var_names, sample_dims=["draw"], num_samples=num_samples, **kwargs
    )
