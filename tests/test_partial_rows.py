"""Partial rows: masked-input training, importance resampling over z, sample(given=), impute."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import pytest
import torch

import ppvae
from ppvae.data import DataError
from ppvae.imputation import imputation_intervals, point_estimate
from ppvae.input_masking import hide_cells, observe_columns
from ppvae.model import TabularModel, num_rows_of
from ppvae.params import ParameterError
from ppvae.partial_rows import from_mapping
from ppvae.posterior_resampling import effective_sample_size, particle_cloud
from ppvae.proposal_training import guide_only_parameters, proposal_epochs


def table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = x + rng.normal(scale=0.3, size=n)
    w[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 50, size=n),
            "c": np.where(x > 0.5, "hi", np.where(x < -0.5, "lo", "mid")),
            "w": w,
        }
    )


@pytest.fixture(scope="module")
def vae() -> ppvae.TabularVAE:
    # the standard-normal prior pinned (a 300-row table would otherwise sample through the
    # small-table aggregate prior): the SIR weight test checks log p(z) against N(0, I);
    # continuous slots independent given z: the weight tests check the Normal formulas
    # (the chained slots' partial rows: tests/test_chained_continuous.py)
    options = dict(latent_dim=2, hidden=(16,), epochs=3, seed=0, verbose=False)
    independent = {"name": "tabular", "chain_continuous": False}
    return ppvae.TabularVAE(prior="standard_normal", model=independent, **options).fit(table())


# -- masked-input training -------------------------------------------------------------
def test_observe_columns_hides_every_slot_of_a_column_including_missingness(vae):
    data = vae.transformer_.transform(table(5))
    observed = torch.ones(5, 4, dtype=torch.bool)
    observed[0, 3] = False  # w: value and missingness indicator
    observed[1, 2] = False  # c
    out = observe_columns(vae.layout_, data, observed)
    cont = list(vae.layout_.cont_names)
    assert not out.cont_mask[0, cont.index("w")] and out.cont_mask[0, cont.index("x")]
    assert not out.miss_mask[0, 0] and out.miss_mask[1, 0]
    assert not out.cat_mask[1, list(vae.layout_.cat_names).index("c")]
    features = vae.layout_.features(out)
    assert features.shape == (5, vae.layout_.input_dim)
    assert torch.equal(out.x_cont, data.x_cont)  # values kept, only masks change


def test_hide_cells_rate_zero_hides_nothing_and_half_hides_about_half(vae):
    data = vae.transformer_.transform(table(2000))
    none = hide_cells(vae.layout_, data, 0.0)
    assert torch.equal(none.cat_mask, data.cat_mask)
    torch.manual_seed(0)
    half = hide_cells(vae.layout_, data, 0.25)
    hidden = 1.0 - half.cat_mask.float().mean().item()
    assert abs(hidden - 0.25) < 0.03


def test_the_proposal_phase_trains_the_encoder_only_and_keeps_the_model():
    """Unconditional samples are identical with and without masked training (same seed)."""
    options = dict(latent_dim=2, hidden=(8,), epochs=3, seed=0, verbose=False)
    plain = ppvae.TabularVAE(input_mask_rate=0.0, **options).fit(table(80))
    masked = ppvae.TabularVAE(input_mask_rate=0.25, **options).fit(table(80))
    pd.testing.assert_frame_equal(plain.sample(50, seed=1), masked.sample(50, seed=1))
    for (name, a), b in zip(plain.model_.state_dict().items(), masked.model_.state_dict().values()):
        assert torch.equal(a, b) == (not name.startswith("encoder")), name


def test_guide_only_parameters_are_the_encoder(vae):
    data = vae.transformer_.transform(table(20)).with_features(vae.layout_)
    found = {id(p) for p in guide_only_parameters(vae.model_, data)}
    assert found == {id(p) for p in vae.model_.encoder.parameters()}


def test_proposal_epochs_bounds():
    assert proposal_epochs(4) == 5 and proposal_epochs(100) == 25 and proposal_epochs(1000) == 50


@pytest.mark.parametrize("bad", [-0.1, 0.6, "0.2", True, float("nan")])
def test_input_mask_rate_is_validated(bad):
    with pytest.raises(ParameterError, match="input_mask_rate"):
        ppvae.TabularVAE(input_mask_rate=bad, epochs=1).fit(table(40))


def test_input_mask_rate_is_saved_with_the_model(tmp_path):
    fitted = ppvae.TabularVAE(
        input_mask_rate=0.1, latent_dim=2, hidden=(8,), epochs=1, verbose=False
    ).fit(table(60))
    loaded = ppvae.load(fitted.save(tmp_path / "m"))
    assert loaded.input_mask_rate == 0.1


# -- importance weights -----------------------------------------------------------------
def test_effective_sample_size_formula():
    lw = torch.log(torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0], [3.0, 1.0, 0.0, 0.0]]))
    expected = torch.tensor([4.0, 1.0, 16.0 / 10.0])
    assert torch.allclose(effective_sample_size(lw), expected)


def scale_floor(vae) -> float:
    """The normal family's scale floor (0.1 on a small table, ``ppvae.budget``)."""
    return next(g for g in vae.model_.slot_groups if g.name == "x_cont").family.min_scale


def test_sir_weights_are_log_p_of_the_observed_cells_plus_prior_minus_q(vae):
    """log w = log p(x_S | z) + log p(z) - log q(z | x_S): x given, c and w free (no term
    for w's missingness indicator)."""
    module = vae.model_
    rows = from_mapping(vae, {"x": 0.7})
    torch.manual_seed(0)
    with torch.no_grad():
        latents, lw = particle_cloud(module, rows.table, 7)
        z = latents["z"][0]  # [7, d]
        slot = vae.layout_.cont_names.index("x")
        y = rows.table.x_cont[0, slot]
        raw = module.decoder(z)[0].reshape(7, -1, 2)[:, slot]
        loc, scale = raw[:, 0], torch.nn.functional.softplus(raw[:, 1]) + scale_floor(vae)
        log_lik = dist.Normal(loc, scale).log_prob(y)
        log_prior = dist.Normal(0.0, 1.0).log_prob(z).sum(-1)
        q_loc, q_scale = module.encoder(vae.layout_.features(rows.table))
        log_q = dist.Normal(q_loc, q_scale).log_prob(z).sum(-1)
    assert torch.allclose(lw[0], log_lik + log_prior - log_q, atol=1e-4)


def test_range_conditions_add_the_log_probability_of_the_interval(vae):
    rows = from_mapping(vae, {"x": (-0.5, 0.5)})  # x has no missingness slot
    free = from_mapping(vae, {})
    ((slot, (y_lo, y_hi)),) = rows.range_slots.items()
    assert y_lo < y_hi
    torch.manual_seed(0)
    with torch.no_grad():
        from ppvae.partial_rows import _range_log_prob

        latents, lw = particle_cloud(vae.model_, rows.table, 5, _range_log_prob(vae, rows))
        torch.manual_seed(0)
        _, lw_free = particle_cloud(vae.model_, free.table, 5)
        raw = vae.model_.decoder(latents["z"][0])[0].reshape(5, -1, 2)[:, slot]
        normal = dist.Normal(raw[:, 0], torch.nn.functional.softplus(raw[:, 1]) + scale_floor(vae))
        p = normal.cdf(torch.tensor(y_hi)) - normal.cdf(torch.tensor(y_lo))
    assert torch.allclose(lw[0], lw_free[0] + torch.log(p), atol=1e-4)


def test_a_range_observes_the_missingness_indicator_as_not_missing(vae):
    """w has NaNs in training: a range on w says the cell is not missing, a free w says
    nothing (its indicator is hidden with it)."""
    ranged, free = from_mapping(vae, {"w": (0.0, 1.0)}), from_mapping(vae, {})
    assert ranged.table.miss_mask[0, 0] and ranged.table.x_miss[0, 0] == 0.0
    assert not free.table.miss_mask[0, 0]
    out = vae.sample(30, given={"w": (0.0, 1.0)}, seed=0)
    assert out["w"].between(0.0, 1.0).all()


# -- sample(given=...) ------------------------------------------------------------------
def test_given_columns_come_back_exactly_and_ranges_hold(vae):
    out = vae.sample(200, given={"c": "hi", "k": 7, "x": (0.2, 0.9)}, seed=0)
    assert len(out) == 200 and list(out.columns) == list(vae.columns_)
    assert (out["c"] == "hi").all() and (out["k"] == 7).all()
    assert out["x"].between(0.2, 0.9).all() and out["x"].nunique() > 20
    assert out["k"].dtype == np.int64
    info = out.attrs["inference"]
    assert len(info["ess"]) == 1 and 1.0 <= info["ess"][0] <= info["particles"][0]


def test_given_is_seeded(vae):
    a = vae.sample(20, given={"c": "lo"}, seed=3)
    b = vae.sample(20, given={"c": "lo"}, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_given_frame_gives_one_row_per_row_with_nan_free(vae):
    given = pd.DataFrame({"c": ["hi", np.nan, "lo"], "x": [np.nan, -1.0, np.nan]}, index=[5, 6, 7])
    out = vae.sample(given=given, seed=0)
    assert list(out.index) == [5, 6, 7]
    assert out.loc[5, "c"] == "hi" and out.loc[7, "c"] == "lo" and out.loc[6, "x"] == -1.0
    assert out[["k", "x"]].notna().loc[[5, 7]].all().all()


def test_condition_on_every_column_returns_those_rows(vae):
    row = {"x": 0.1, "k": 3, "c": "mid", "w": 0.2}
    out = vae.sample(5, given=row, seed=0)
    assert (out[list(row)] == pd.Series(row)).all().all()


def test_a_rare_condition_still_returns_every_row(vae):
    out = vae.sample(50, given={"c": "hi", "x": (-2.5, -2.0)}, seed=0)
    assert len(out) == 50 and (out["c"] == "hi").all() and out["x"].between(-2.5, -2.0).all()


# -- impute -----------------------------------------------------------------------------
def test_impute_keeps_observed_cells_and_fills_the_rest(vae):
    df = table(30, seed=1)
    df.loc[[0, 1, 2], "x"] = np.nan
    df.loc[[2, 3], "c"] = np.nan
    df.iloc[4] = np.nan  # an all-missing row: unconditional draws
    out = vae.impute(df, num_imputations=4, seed=0)
    assert out.index.names == ["imputation", "row"] and len(out) == 4 * 30
    for i in range(4):
        copy = out.xs(i, level="imputation")
        assert list(copy.index) == list(df.index)
        observed = df.notna()
        pd.testing.assert_frame_equal(
            copy.where(observed).astype(object),
            df.where(observed).astype(object),
            check_names=False,
        )
        assert copy[["x", "k", "c"]].notna().all().all()
    assert len(out.attrs["inference"]["ess"]) == 30


def test_impute_keeps_an_unseen_level_without_conditioning_on_it(vae):
    df = table(6, seed=3)
    df["c"] = df["c"].astype(object)
    df.loc[0, "c"] = "new"  # a level the model never saw: kept, not conditioned on
    df.loc[[0, 1], "x"] = np.nan
    with pytest.warns(UserWarning, match=r"'c' \['new'\] in 1 row"):
        out = vae.impute(df, num_imputations=3, seed=0)
    assert (out.xs(0, level="row")["c"] == "new").all() and out["x"].notna().all()
    assert out.attrs["point_estimate"]["c"][0] == "new"
    with pytest.raises(DataError, match="'c' has value"):  # sampling given it: refused
        vae.sample(given=df.drop(columns="x").head(1))


def test_impute_fills_a_column_that_had_no_missing_values_in_training(vae):
    df = table(10, seed=2)
    df["k"] = df["k"].astype(float)
    df.loc[[1, 2], "k"] = np.nan  # k had no NaN when fitting
    out = vae.impute(df, num_imputations=3, seed=0)
    assert out["k"].notna().all()
    assert (out["k"] == out["k"].round()).all()


def test_imputation_intervals_and_point_estimate(vae):
    df = table(20, seed=3)
    df.loc[[0, 1], "x"] = np.nan
    df.loc[[0, 5], "c"] = np.nan
    draws = vae.impute(df, num_imputations=10, seed=0)
    lo, hi = imputation_intervals(draws, level=0.9)
    assert (lo["x"] <= hi["x"]).all() and (lo.loc[[0, 1], "x"] < hi.loc[[0, 1], "x"]).all()
    assert (lo.loc[2:, "x"] == df.loc[2:, "x"]).all() and (hi.loc[2:, "x"] == df.loc[2:, "x"]).all()
    best = point_estimate(draws)
    assert best.index.equals(df.index) and list(best.columns) == list(df.columns)
    assert best.loc[3, "c"] == df.loc[3, "c"] and best.loc[3, "x"] == df.loc[3, "x"]
    assert best.loc[0, "c"] in {"hi", "mid", "lo"}
    assert np.isfinite(best.loc[[0, 1], "x"]).all()


# -- bad input -------------------------------------------------------------------------
def test_unknown_column_is_named(vae):
    with pytest.raises(DataError, match="'income'"):
        vae.sample(5, given={"income": ">50K"})
    with pytest.raises(DataError, match="'income'"):
        vae.sample(given=pd.DataFrame({"income": [">50K"]}))
    with pytest.raises(DataError, match="'income'"):
        vae.impute(table(5).assign(income=1))


def test_unseen_level_is_named_with_the_known_ones(vae):
    with pytest.raises(DataError, match=r"given\['c'\] = 'top'.*'hi'"):
        vae.sample(5, given={"c": "top"})
    with pytest.warns(UserWarning, match="'c' \\['top'\\] in 5 row"):  # impute keeps it
        vae.impute(table(5).assign(c="top"))


def test_value_outside_the_observed_range_is_refused(vae):
    with pytest.raises(DataError, match=r"given\['x'\] = 99.*outside the range"):
        vae.sample(5, given={"x": 99})
    with pytest.raises(DataError, match="holds no value"):
        vae.sample(5, given={"x": (50, 60)})
    with pytest.raises(DataError, match="whole numbers"):
        vae.sample(5, given={"k": 2.5})
    with pytest.raises(DataError, match="low end"):
        vae.sample(5, given={"x": (1, 0)})


def test_conflicting_requests_are_refused(vae):
    frame = pd.DataFrame({"c": ["hi", "lo"]})
    with pytest.raises(ValueError, match="2 rows"):
        vae.sample(5, given=frame)
    with pytest.raises(ValueError, match="not both"):
        vae.sample(2, given={"c": "hi"}, condition={"z": torch.zeros(2, 2)})
    with pytest.raises(DataError, match="duplicated"):
        vae.sample(given=pd.DataFrame([["hi", "lo"]], columns=["c", "c"]))
    with pytest.raises(DataError, match="lacks column"):
        vae.impute(table(5).drop(columns=["w"]))
    with pytest.raises(DataError, match="num_imputations"):
        vae.impute(table(5), num_imputations=0)


def test_site_level_condition_rejects_names_that_are_not_sites(vae):
    with pytest.raises(ParameterError, match="'c'.*does not sample"):
        vae.sample(3, condition={"c": torch.zeros(3)})


# -- a custom model --------------------------------------------------------------------
@ppvae.models.register("laplace_latent_test")
class LaplaceLatent(TabularModel):
    """A hand-written model: Laplace p(z), the default decoder, observed via self.observe."""

    def model(self, data=None, num_rows=None):
        with pyro.plate("rows", num_rows_of(data, num_rows)):
            z = pyro.sample("z", dist.Laplace(0.0, 1.0).expand([self.latent_dim]).to_event(1))
            self.observe(self.decoder(z), data)
        return z


def test_a_custom_model_gets_conditional_sampling_and_imputation():
    vae = ppvae.TabularVAE(
        model="laplace_latent_test", latent_dim=2, hidden=(8,), epochs=2, verbose=False
    ).fit(table(100))
    out = vae.sample(10, given={"c": "lo"}, seed=0)
    assert (out["c"] == "lo").all()
    df = table(6)
    df.loc[0, "x"] = np.nan
    filled = vae.impute(df, num_imputations=2, seed=0)
    assert filled["x"].notna().all()
    assert math.isfinite(out.attrs["inference"]["ess"][0])


def test_value_rules_follow_the_given_cells():
    """A one-to-one pair learned at fit (ppvae.data.dependencies): conditioning on either
    side returns the other side's partner in every row, and the given cells unchanged."""
    rng = np.random.default_rng(0)
    level = rng.choice(["a", "b", "c"], size=600)
    df = pd.DataFrame(
        {"level": level, "code": pd.Series(level).map({"a": 1, "b": 2, "c": 3}).to_numpy()}
    )
    df["x"] = df["code"] + rng.normal(size=600)
    options = dict(latent_dim=2, hidden=(16,), epochs=2, seed=0, verbose=False)
    fitted = ppvae.TabularVAE(**options).fit(df)
    rows = fitted.sample(50, given={"level": "b"}, seed=0)
    assert (rows["level"] == "b").all() and (rows["code"] == 2).all()
    rows = fitted.sample(50, given={"code": 3}, seed=0)
    assert (rows["code"] == 3).all() and (rows["level"] == "c").all()


def test_a_range_on_a_column_with_few_values():
    """A column with a finite support (ppvae.data.support) takes ranges too: every drawn
    value lies in the range and is a value the column takes."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"n": rng.integers(0, 40, size=600), "x": rng.normal(size=600)})
    options = dict(latent_dim=2, hidden=(16,), epochs=2, seed=0, verbose=False)
    fitted = ppvae.TabularVAE(**options).fit(df)
    rows = fitted.sample(100, given={"n": (10, 20)}, seed=0)
    assert rows["n"].between(10, 20).all() and set(rows["n"]) <= set(df["n"])


def test_a_range_on_a_categorical_column_is_a_clear_error():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"n": rng.integers(0, 6, size=600), "x": rng.normal(size=600)})
    options = dict(latent_dim=2, hidden=(16,), epochs=1, seed=0, verbose=False)
    fitted = ppvae.TabularVAE(**options).fit(df)
    with pytest.raises(DataError, match="'n' is modelled as categorical"):
        fitted.sample(10, given={"n": (2, 3)}, seed=0)
