"""What keeps sampled rows indistinguishable: value rules between columns, finite supports
of numeric columns and recording grids, all learned at fit time and saved with the model."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri

import ppvae
from ppvae.data import TableTransformer
from ppvae.data.dependencies import ValueRules
from ppvae.data.point_masses import PointMasses
from ppvae.data.support import EmpiricalSupport, has_small_support


def dependent_frame(n: int = 1200) -> pd.DataFrame:
    """``degree`` and ``years`` one-to-one; ``job`` missing exactly when ``sector`` is;
    ``visits = 0`` forces ``duration = 0``; ``noise`` relates to nothing."""
    rng = np.random.default_rng(0)
    degree = rng.choice(["none", "school", "college", "phd"], n, p=[0.1, 0.4, 0.4, 0.1])
    years = pd.Series(degree).map({"none": 6, "school": 12, "college": 16, "phd": 21})
    sector = rng.choice(["public", "private", None], n, p=[0.3, 0.6, 0.1])
    job = np.where(sector == None, None, rng.choice(["a", "b", "c"], n))  # noqa: E711
    visits = rng.poisson(1.0, n)
    duration = np.where(visits == 0, 0.0, np.round(rng.gamma(2.0, 30.0, n) * visits, 2))
    return pd.DataFrame(
        {
            "degree": degree,
            "years": years.astype("int64"),
            "sector": sector,
            "job": job,
            "visits": visits,
            "duration": duration,
            "noise": rng.normal(size=n),
        }
    )


def test_rules_find_the_dependencies_and_nothing_else():
    df = dependent_frame()
    rules = ValueRules().fit(df, df.columns).rules
    pairs = {(a, b) for a, _, b, _ in rules}
    assert {("degree", "years"), ("years", "degree"), ("sector", "job")} <= pairs
    assert ("visits", 0, "duration", 0.0) in rules
    assert not any("noise" in (a, b) for a, _, b, _ in rules)
    # every rule holds in every training row, and a level maps to its own value
    assert ValueRules.from_dict({**ValueRules().to_dict(), "rules": rules}).violations(df) == 0
    assert ("degree", "phd", "years", 21) in rules and ("years", 6, "degree", "none") in rules


def test_a_rule_needs_more_rows_than_chance_explains():
    # b is 90 % "x": the 12 rows of level "r" all holding "x" happen by chance (0.9**12 = 0.28);
    # c is 12 % "z": the same 12 rows all holding "z" do not (0.12**12)
    df = pd.DataFrame(
        {
            "a": ["r"] * 12 + ["s"] * 88,
            "b": ["x"] * 90 + ["y"] * 10,
            "c": ["z"] * 12 + ["w"] * 88,
        }
    )
    rules = set(ValueRules().fit(df, ["a", "b", "c"]).rules)
    assert rules == {
        ("a", "r", "c", "z"),
        ("a", "s", "c", "w"),
        ("c", "z", "a", "r"),
        ("c", "w", "a", "s"),
    }


def test_apply_repairs_broken_rows_and_keeps_good_ones():
    df = dependent_frame()
    rules = ValueRules().fit(df, df.columns)
    broken = df.assign(years=np.random.default_rng(1).permutation(df["years"].to_numpy()))
    assert rules.violations(broken) > 0
    fixed = rules.apply(broken)
    assert rules.violations(fixed) == 0
    pd.testing.assert_frame_equal(rules.apply(df), df)


def test_sampled_rows_keep_every_dependency_and_it_survives_save_load(tmp_path):
    df = dependent_frame()
    vae = ppvae.TabularVAE(epochs=2, verbose=False, seed=0).fit(df)
    synth = vae.sample(3000, seed=0)
    years = synth["degree"].map({"none": 6, "school": 12, "college": 16, "phd": 21})
    assert (synth["years"] == years).all()
    assert (synth["sector"].isna() == synth["job"].isna()).all()
    assert (synth.loc[synth["visits"] == 0, "duration"] == 0).all()
    loaded = ppvae.load(vae.save(tmp_path / "m"))
    assert loaded.transformer_.rules_.rules == vae.transformer_.rules_.rules
    pd.testing.assert_frame_equal(loaded.sample(500, seed=3), vae.sample(500, seed=3))


def test_support_inverse_is_the_discrete_quantile_function():
    values = np.array([0.0] * 6 + [2.5] * 3 + [7.0])
    t = EmpiricalSupport().fit(values)
    np.testing.assert_allclose(t.cdf, [0.6, 0.9, 1.0])
    u = np.array([0.01, 0.59, 0.61, 0.9, 0.95])
    np.testing.assert_array_equal(t.inverse(ndtri(u)[:, None], None), [0.0, 0.0, 2.5, 2.5, 7.0])
    y, _ = t.forward(values, np.random.default_rng(0))
    np.testing.assert_array_equal(t.inverse(y, None), values)  # exact round trip
    state = EmpiricalSupport.from_dict(t.to_dict())
    np.testing.assert_array_equal(state.support, t.support)


def test_small_support_needs_few_values_and_enough_rows_per_value():
    assert has_small_support(np.repeat(np.arange(20.0), 10))
    assert not has_small_support(np.arange(100.0))  # one row per value: continuous
    assert not has_small_support(np.ones(50))  # a constant


@pytest.mark.parametrize("seed", [0, 1])
def test_sampled_numbers_stay_on_the_columns_grid_and_support(seed):
    rng = np.random.default_rng(seed)
    n = 800
    df = pd.DataFrame(
        {
            "price": np.round(rng.gamma(3.0, 20.0, n), 2),  # many values, 2 decimals
            "rating": rng.choice([1.5, 2.0, 3.5, 4.0, 4.5], n),  # a finite support
            "gain": np.where(rng.random(n) < 0.9, 0, rng.choice([500, 2000, 9999], n)),
        }
    )
    vae = ppvae.TabularVAE(epochs=2, verbose=False, seed=seed).fit(df)
    synth = vae.sample(2000, seed=seed)
    assert np.allclose(synth["price"], np.round(synth["price"], 2))
    assert set(synth["rating"]) <= set(df["rating"])
    assert set(synth["gain"]) <= set(df["gain"])
    assert synth["gain"].dtype == df["gain"].dtype
    assert vae.transformer_.schema_["price"].decimals == 2


def test_models_saved_before_rules_load_without_them():
    df = dependent_frame(200)
    state = TableTransformer().fit(df).to_dict()
    del state["rules"]
    old = TableTransformer.from_dict(state)
    assert old.rules_.rules == []


def test_point_masses_are_levels_and_the_rest_round_trips():
    rng = np.random.default_rng(0)
    values = np.where(rng.random(1000) < 0.7, 0.0, np.round(rng.gamma(2.0, 10.0, 1000), 1))
    values[:100] = 40.0
    t = PointMasses().fit(values, rng)
    np.testing.assert_array_equal(t.spikes, [0.0, 40.0])
    cont, cat = t.forward(values, rng)
    np.testing.assert_array_equal(cat[:, 0], np.select([values == 0, values == 40], [0, 1], 2))
    np.testing.assert_allclose(t.inverse(cont, cat), values, rtol=0.01, atol=0.06)
    np.testing.assert_array_equal(t.inverse(cont, cat)[cat[:, 0] < 2], values[cat[:, 0] < 2])
    loaded = PointMasses.from_dict(t.to_dict())
    np.testing.assert_array_equal(loaded.inverse(cont, cat), t.inverse(cont, cat))


def test_a_column_of_spikes_only_needs_no_rest():
    values = np.array([0.0] * 60 + [5.0] * 40)
    t = PointMasses().fit(values, np.random.default_rng(0))
    assert t.rest is None and t.cat_cardinalities == (3,)
    cont, cat = t.forward(values, np.random.default_rng(0))
    np.testing.assert_array_equal(t.inverse(cont, cat), values)
