"""The ``lowrank_normal`` likelihood: exact Gaussian algebra, and its use in a fitted VAE."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch.distributions import MultivariateNormal

import ppvae
from ppvae.correlated_residuals import LowRankSlotNormal
from ppvae.data.layout import Layout, TensorTable, mask_name
from ppvae.likelihoods import likelihoods
from ppvae.model import TabularModel
from ppvae.model_conformance import check_model
from ppvae.partial_rows import PartialRows, _conditional_draw


def _random(batch: int = 6, width: int = 5, rank: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    kw = dict(generator=g, dtype=torch.float64)
    loc, factor = torch.randn(batch, width, **kw), torch.randn(batch, width, rank, **kw)
    diag = torch.rand(batch, width, **kw) + 0.05
    value = torch.randn(batch, width, **kw)
    mask = torch.rand(batch, width, generator=g) > 0.4
    mask[0], mask[1] = True, False  # a fully observed row and a fully hidden one
    cov = factor @ factor.transpose(-1, -2) + torch.diag_embed(diag)
    return loc, factor, diag, value, mask, cov


def test_masked_log_prob_is_the_observed_subset_marginal():
    loc, factor, diag, value, mask, cov = _random()
    fn = LowRankSlotNormal(loc, factor, diag, mask)
    expected = []
    for b in range(len(loc)):
        s = mask[b].nonzero().squeeze(-1)
        if len(s) == 0:
            expected.append(torch.tensor(0.0, dtype=torch.float64))
            continue
        mvn = MultivariateNormal(loc[b, s], cov[b][s][:, s])
        expected.append(mvn.log_prob(value[b, s]))
    torch.testing.assert_close(fn.log_prob(value), torch.stack(expected))
    unmasked = LowRankSlotNormal(loc, factor, diag)
    torch.testing.assert_close(
        unmasked.log_prob(value), MultivariateNormal(loc, cov).log_prob(value)
    )


def test_slot_terms_follow_the_chain_rule_and_sum_to_the_joint():
    loc, factor, diag, value, mask, cov = _random(seed=1)
    fn = LowRankSlotNormal(loc, factor, diag, mask)
    terms = fn.slot_log_prob(value)
    assert terms.shape == value.shape and (terms[~mask] == 0).all()
    torch.testing.assert_close(terms.sum(-1), fn.log_prob(value))
    for b in range(len(loc)):  # term i = log p(x_i | x_j observed, j < i), by Schur complement
        for i in mask[b].nonzero().squeeze(-1).tolist():
            past = [j for j in range(i) if mask[b, j]]
            mean, var = loc[b, i], cov[b, i, i]
            if past:
                k = torch.linalg.solve(cov[b][past][:, past], cov[b, past, i])
                mean = mean + k @ (value[b, past] - loc[b, past])
                var = var - cov[b, i, past] @ k
            expected = torch.distributions.Normal(mean, var.sqrt()).log_prob(value[b, i])
            torch.testing.assert_close(terms[b, i], expected)


def test_condition_gives_the_schur_complement():
    loc, factor, diag, value, mask, cov = _random(seed=2)
    cond = LowRankSlotNormal(loc, factor, diag).condition(value, mask)
    for b in range(2, len(loc)):
        s = mask[b].nonzero().squeeze(-1)
        f = (~mask[b]).nonzero().squeeze(-1)
        if len(s) == 0 or len(f) == 0:
            continue
        k = torch.linalg.solve(cov[b][s][:, s], cov[b][s][:, f])
        mean = loc[b, f] + k.T @ (value[b, s] - loc[b, s])
        schur = cov[b][f][:, f] - cov[b][f][:, s] @ k
        got_cov = cond.cov_factor[b] @ cond.cov_factor[b].T + torch.diag(cond.cov_diag[b])
        torch.testing.assert_close(cond.loc[b, f], mean)
        torch.testing.assert_close(got_cov[f][:, f], schur)
    # nothing observed: the conditional is the distribution itself
    torch.testing.assert_close(cond.loc[1], loc[1])
    torch.testing.assert_close(cond.variance[1], LowRankSlotNormal(loc, factor, diag).variance[1])


def test_draws_have_the_covariance_and_marginals_are_univariate_normals():
    torch.manual_seed(0)
    loc, factor, diag, _, _, cov = _random(batch=2, width=3, rank=2, seed=3)
    fn = LowRankSlotNormal(loc[0], factor[0], diag[0])
    draws = fn.sample((40000,))
    assert draws.shape == (40000, 3)
    torch.testing.assert_close(draws.mean(0), loc[0], atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), cov[0], atol=0.1, rtol=0.05)
    torch.testing.assert_close(fn.marginal(1).scale, cov[0, 1, 1].sqrt())


def test_the_family_builds_a_group_of_rank_at_most_the_width():
    family = likelihoods.build({"name": "lowrank_normal", "rank": 4})
    assert family.group_params(3) == 3 * (2 + 3) and family.group_params(10) == 10 * 6
    fn = family.group_distribution(torch.randn(7, family.group_params(3)), 3, None)
    assert fn.batch_shape == (7,) and fn.event_shape == (3,) and fn.rank == 3
    assert (fn.cov_diag >= 1e-6).all()


def test_perfectly_correlated_slots_pin_each_other_in_partial_rows():
    n, k = 3, 50
    fn = LowRankSlotNormal(
        torch.zeros(n * k, 3),
        torch.tensor([[1.0], [1.0], [0.0]]).expand(n * k, 3, 1),
        torch.full((n * k, 3), 1e-6),
    )
    given = torch.tensor([[1.3, 0.0, 0.0], [0.0, -0.7, 0.0], [0.0, 0.0, 0.0]])
    fixed = torch.tensor([[True, False, False], [False, True, False], [False, False, True]])
    table = TensorTable(x_cont=given, **{mask_name("x_cont"): fixed})
    rows = PartialRows(table, pd.DataFrame(), fixed.numpy())
    out = _conditional_draw(fn, rows, n * k).reshape(n, k, 3)
    torch.testing.assert_close(out[0, :, 1], torch.full((k,), 1.3), atol=0.01, rtol=0)
    torch.testing.assert_close(out[1, :, 0], torch.full((k,), -0.7), atol=0.01, rtol=0)
    assert (out[0, :, 0] == 1.3).all() and (out[1, :, 1] == -0.7).all()
    assert out[2, :, 0].std() > 0.5  # the third row's fixed slot says nothing about slot 0
    torch.testing.assert_close(out[2, :, 0], out[2, :, 1], atol=0.01, rtol=0)
    # a range on slot 0 of row 2's draws: slot 1 follows the truncated draw
    rows.range_slots = {0: (0.5, 0.6)}
    out = _conditional_draw(fn, rows, n * k).reshape(n, k, 3)
    assert ((out[2, :, 0] >= 0.5) & (out[2, :, 0] <= 0.6)).all()
    torch.testing.assert_close(out[2, :, 1], out[2, :, 0], atol=0.01, rtol=0)


def test_a_model_with_correlated_residuals_conforms():
    layout = Layout(
        columns=("a", "b", "c"), cont_names=("a", "b"), cat_names=("c",), cat_cardinalities=(3,)
    )
    check_model(TabularModel(layout, latent_dim=2, hidden=(), likelihood="lowrank_normal"))


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = 2 * x + rng.normal(scale=0.05, size=n)
    w[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"x": x, "w": w, "u": rng.normal(size=n), "c": np.where(x > 0, "hi", "lo")})


@pytest.fixture(scope="module")
def vae() -> ppvae.TabularVAE:
    options = dict(latent_dim=2, hidden=(16,), epochs=3, seed=0, verbose=False)
    return ppvae.TabularVAE(likelihood="lowrank_normal", **options).fit(_frame())


def test_a_fitted_vae_samples_imputes_and_conditions(vae):
    rows = vae.sample(50, seed=0)
    assert len(rows) == 50 and rows[["x", "u"]].notna().all().all()
    out = vae.sample(40, given={"c": "hi", "x": (0.2, 0.9), "u": 0.5}, seed=0)
    assert (out["c"] == "hi").all() and (out["u"] == 0.5).all()
    assert out["x"].between(0.2, 0.9).all()
    df = _frame(20, seed=1)
    df.loc[[0, 1], "w"] = np.nan
    df.loc[[2], "x"] = np.nan
    done = vae.impute(df, num_imputations=3, seed=0)
    assert done[["x", "w", "u"]].notna().all().all()
    first = done.xs(0, level="imputation")
    assert first.loc[3:, "x"].equals(df.loc[3:, "x"])
    cols = vae.column_log_likelihood(df.dropna(), num_samples=2)
    assert np.isfinite(np.asarray(cols, dtype=float)).all()


def test_a_fitted_vae_round_trips_through_save_and_pickle(vae, tmp_path):
    vae.save(tmp_path / "m")
    loaded = ppvae.load(tmp_path / "m")
    assert loaded.likelihood == "lowrank_normal"
    pd.testing.assert_frame_equal(loaded.sample(20, seed=1), vae.sample(20, seed=1))
    copy = pickle.loads(pickle.dumps(vae))
    pd.testing.assert_frame_equal(copy.sample(20, seed=1), vae.sample(20, seed=1))


def test_a_range_with_a_likelihood_without_a_cdf_is_a_clear_error():
    options = dict(latent_dim=2, hidden=(8,), epochs=1, seed=0, verbose=False)
    vae = ppvae.TabularVAE(likelihood="student_t", **options).fit(_frame(100))
    with pytest.raises(ppvae.data.DataError, match="likelihood with a CDF"):
        vae.sample(5, given={"x": (0.0, 1.0)})
