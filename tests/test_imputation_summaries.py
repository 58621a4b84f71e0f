"""Summaries of multiple imputations: prediction intervals and the posterior predictive best
guess."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pyro import poutine

import ppvae
from ppvae.data import DataError
from ppvae.imputation import imputation_intervals, point_estimate, posterior_predictive_estimate
from ppvae.partial_rows import from_frame
from ppvae.posterior_resampling import PosteriorDraws


def long_frame(values: np.ndarray) -> pd.DataFrame:
    """``impute``'s layout for draws ``[m, rows]`` of one column ``x``."""
    m, n = values.shape
    index = pd.MultiIndex.from_arrays(
        [np.repeat(np.arange(m), n), np.tile(np.arange(n), m)], names=["imputation", "row"]
    )
    return pd.DataFrame({"x": values.reshape(-1)}, index=index)


def test_interval_bounds_sit_at_the_plotting_positions_k_over_m_plus_1():
    draws = long_frame(np.arange(1.0, 21.0)[:, None][::-1].copy())  # 20 draws: 20, 19, ..., 1
    lo, hi = imputation_intervals(draws, level=0.9)
    # position 0.05 * 21 = 1.05 -> 1 + 0.05 * (2 - 1); 0.95 * 21 = 19.95 -> 19.95
    assert lo.loc[0, "x"] == pytest.approx(1.05) and hi.loc[0, "x"] == pytest.approx(19.95)


def test_intervals_of_calibrated_draws_cover_the_level():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(21, 20_000))  # 20 draws and the truth, exchangeable
    lo, hi = imputation_intervals(long_frame(values[:20]), level=0.9)
    truth = values[20]
    covered = (lo["x"].to_numpy() <= truth) & (truth <= hi["x"].to_numpy())
    assert covered.mean() == pytest.approx(0.9, abs=0.01)  # (k-1)/(m-1) positions: 0.82


def test_too_few_draws_for_the_level_give_the_extreme_draws():
    draws = long_frame(np.array([[3.0], [1.0], [2.0]]))
    lo, hi = imputation_intervals(draws, level=0.9)
    assert lo.loc[0, "x"] == 1.0 and hi.loc[0, "x"] == 3.0


@pytest.fixture(scope="module")
def vae() -> ppvae.TabularVAE:
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    df = pd.DataFrame({"x": x, "c": np.where(x > 0.5, "hi", np.where(x < -0.5, "lo", "mid"))})
    options = dict(latent_dim=2, hidden=(16,), epochs=5, seed=0, verbose=False)
    # independent slots given z (no chain): the argmax rule is for CategoricalColumns
    model = {"name": "tabular", "chain_rank": 0}
    return ppvae.TabularVAE(prior="standard_normal", model=model, **options).fit(df)


def test_categorical_best_guess_is_the_argmax_of_the_averaged_decoder_probabilities(vae):
    rows = from_frame(vae, pd.DataFrame({"x": [np.nan] * 4, "c": [np.nan] * 4}))
    z = torch.randn(4, 7, 2, generator=torch.Generator().manual_seed(1)) * 2.0
    post = PosteriorDraws({"z": z}, torch.ones(4), torch.ones(4), torch.ones(4))
    best = posterior_predictive_estimate(vae, rows, post, decoder_draws=3)
    model = poutine.condition(vae.model_.model, data={"z": z.reshape(28, 2)})
    logits = poutine.trace(model).get_trace(None, num_rows=28).nodes["x_cat"]["fn"].logits
    probs = torch.softmax(logits, -1).reshape(4, 7, -1).mean(1)  # c is the only x_cat slot
    levels = vae.transformer_.transforms_[1].levels
    assert list(best["c"]) == [levels[i] for i in probs.argmax(-1).tolist()]


def test_numeric_best_guess_is_the_mean_of_decoder_draws_over_the_posterior(vae):
    rows = from_frame(vae, pd.DataFrame({"x": [np.nan, 0.25], "c": ["hi", np.nan]}))
    z = torch.zeros(2, 5, 2)
    z[1] = 3.0  # row 1: every draw at z = (3, 3)
    post = PosteriorDraws({"z": z}, torch.ones(2), torch.ones(2), torch.ones(2))
    torch.manual_seed(0)
    best = posterior_predictive_estimate(vae, rows, post, decoder_draws=400)
    assert best.loc[1, "x"] == 0.25 and best.loc[0, "c"] == "hi"  # given cells as given
    # the decoder's mean at z = 0 on the model's scale, through the column's inverse transform
    model = poutine.condition(vae.model_.model, data={"z": torch.zeros(1, 2)})
    fn = poutine.trace(model).get_trace(None, num_rows=1).nodes["x_cont"]["fn"]
    while hasattr(fn, "base_dist"):
        fn = fn.base_dist
    y = fn.sample((20_000,))[:, 0, 0].numpy()
    t = vae.transformer_.transforms_[0]
    expected = t.inverse(y[:, None], np.zeros((len(y), 0))).astype(float).mean()
    assert best.loc[0, "x"] == pytest.approx(expected, abs=0.1)


def test_point_estimate_needs_the_frame_from_impute():
    with pytest.raises(DataError, match="vae.impute"):
        point_estimate(long_frame(np.ones((3, 2))))


def test_summary_draws_extend_the_imputation_draws_from_the_same_weights(vae):
    from ppvae.posterior_resampling import resample_posterior

    rows = from_frame(vae, pd.DataFrame({"x": [np.nan, 0.3], "c": ["hi", np.nan]}))
    torch.manual_seed(0)
    post = resample_posterior(vae.model_, rows.table, 4, num_particles=50, summary_draws=96)
    assert post.summary["z"].shape == (2, 100, 2) and post.latents["z"].shape == (2, 4, 2)
    assert torch.equal(post.summary["z"][:, :4], post.latents["z"])
    none = resample_posterior(vae.model_, rows.table, 4, num_particles=50)
    assert none.summary is None and none.latents["z"].shape == (2, 4, 2)


def test_the_best_guess_averages_the_summary_draws_not_only_the_imputations(vae):
    rows = from_frame(vae, pd.DataFrame({"x": [np.nan], "c": ["hi"]}))
    z = torch.zeros(1, 2, 2)
    summary = torch.zeros(1, 102, 2)
    summary[0, 2:] = 3.0  # the 100 summary draws sit elsewhere than the 2 imputation draws
    post = PosteriorDraws({"z": z}, torch.ones(1), torch.ones(1), torch.ones(1), {"z": summary})
    torch.manual_seed(0)
    with_summary = posterior_predictive_estimate(vae, rows, post, decoder_draws=20)
    at_three = PosteriorDraws({"z": summary[:, 2:]}, torch.ones(1), torch.ones(1), torch.ones(1))
    without = PosteriorDraws({"z": z}, torch.ones(1), torch.ones(1), torch.ones(1))
    torch.manual_seed(0)
    far = posterior_predictive_estimate(vae, rows, at_three, decoder_draws=20)
    torch.manual_seed(0)
    near = posterior_predictive_estimate(vae, rows, without, decoder_draws=20)
    gap_far = abs(with_summary.loc[0, "x"] - far.loc[0, "x"])
    gap_near = abs(with_summary.loc[0, "x"] - near.loc[0, "x"])
    assert gap_far < gap_near
