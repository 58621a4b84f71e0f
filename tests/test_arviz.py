"""What ppvae returns works with ArviZ's own functions, on ArviZ 0.x and >= 1."""

from __future__ import annotations

import json

import arviz as az
import matplotlib
import numpy as np
import pytest

import ppvae
from ppvae import arviz_compat

matplotlib.use("Agg")
NEW = arviz_compat.ARVIZ_MAJOR >= 1
S = arviz_compat.GUIDE_SAMPLE_DIMS
SMALL = dict(batch_size=200, hidden=(32,), latent_dim=3, verbose=False, missing_values=["?"])


@pytest.fixture(scope="module")
def vae(adult_small):
    return ppvae.TabularVAE(**SMALL, epochs=3).fit(adult_small)


@pytest.fixture(scope="module")
def idata(vae, adult_small):
    return ppvae.to_inference_data(vae, adult_small.head(30), num_samples=4)


def sample_kwargs() -> dict:
    return {"sample_dims": list(S)} if NEW else {}


def test_groups_and_dims(idata, adult_small):
    assert S == (("sample",) if NEW else ("chain", "draw"))
    assert idata["posterior"]["z"].dims == (*S, "row", "latent")
    assert idata["posterior"]["z"].shape[-3:] == (4, 30, 3)
    assert idata["prior"]["z"].dims == idata["posterior"]["z"].dims  # lines up with posterior
    for group in ("posterior_predictive", "prior_predictive", "log_likelihood"):
        assert set(idata[group].data_vars) == set(adult_small.columns)
        assert idata[group]["age"].dims == (*S, "row")
    assert idata["observed_data"]["age"].dims == ("row",)
    assert "Private" in json.loads(idata["prior_predictive"]["workclass"].attrs["levels"])
    assert {"loss", "recon", "kl"} <= set(idata["training"].data_vars)
    assert idata["training"]["loss"].dims == ("step",)


# ArviZ 0.23's matplotlib backend calls an API that matplotlib 3.11 deprecates (ArviZ's, not ours)
@pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")
def test_summary_and_distribution_plots(idata):
    summary = az.summary(idata, var_names=["z"], kind="stats", **sample_kwargs())
    assert len(summary) == 30 * 3 and np.isfinite(summary["mean"].astype(float)).all()
    if NEW:
        az.plot_dist(idata, var_names=["z"], coords={"row": [0, 1]}, sample_dims=list(S))
        az.plot_prior_posterior(idata, var_names=["z"], coords={"row": [0]}, sample_dims=list(S))
    else:
        az.plot_posterior(idata, var_names=["z"], coords={"row": [0, 1]})
        az.plot_dist_comparison(idata, var_names=["z"], coords={"row": [0], "latent": [0]})
    arviz_compat.plot_ppc(idata, var_names=["age"], num_samples=4)
    matplotlib.pyplot.close("all")


def test_netcdf_round_trip(idata, tmp_path):
    path = tmp_path / "idata.nc"
    idata.to_netcdf(str(path))
    back = az.from_netcdf(str(path)) if not NEW else __import__("xarray").open_datatree(path)
    np.testing.assert_allclose(back["posterior"]["z"].values, idata["posterior"]["z"].values)
    assert (
        back["observed_data"]["workclass"].attrs["levels"]
        == idata["observed_data"]["workclass"].attrs["levels"]
    )


def test_pareto_k_of_importance_weights():
    rng = np.random.default_rng(0)
    light = rng.normal(0, 0.1, size=(4, 400))  # near-equal weights: k well below 0.5
    heavy = np.log(rng.pareto(1.0, size=(4, 400)) + 1)  # weights with a Pareto tail, k = 1
    k_light, k_heavy = arviz_compat.pareto_k(light), arviz_compat.pareto_k(heavy)
    assert k_light.shape == (4,) and (k_light < 0.5).all()
    assert (np.abs(k_heavy - 1.0) < 0.35).all()
    assert np.isnan(arviz_compat.pareto_k(light[:, :10])).all()  # too few weights for a tail
