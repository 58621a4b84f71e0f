"""Schema inference, reversible transforms and the bad-input cases of the data layer."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae
from ppvae.data import DataError, TableTransformer, infer_schema
from ppvae.data.transforms import ModeSpecific, QuantileNormal


def mixed_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "count": rng.poisson(30, size=n).astype("int64"),
            "code": rng.integers(0, 4, size=n),
            "color": rng.choice(["red", "green", "blue"], size=n),
            "flag": rng.random(n) < 0.3,
            "when": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 1000, size=n), unit="D"),
            "level": pd.Categorical(
                rng.choice(["lo", "hi"], size=n), categories=["lo", "hi", "unused"]
            ),
            "gappy": np.where(rng.random(n) < 0.2, np.nan, rng.gamma(2.0, size=n)),
        }
    )


def test_inferred_kinds():
    schema = infer_schema(mixed_frame())
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "x": "continuous",
        "count": "integer",
        "code": "categorical",
        "color": "categorical",
        "flag": "boolean",
        "when": "datetime",
        "level": "categorical",
        "gappy": "continuous",
    }
    assert schema["gappy"].has_missing and not schema["x"].has_missing


@pytest.mark.parametrize("continuous", ["quantile", "mode_specific"])
def test_round_trip_is_exact_for_discrete_and_close_for_continuous(continuous):
    df = mixed_frame()
    tr = TableTransformer(continuous=continuous).fit(df)
    back = tr.inverse_transform(tr.transform(df))
    assert list(back.columns) == list(df.columns)
    assert (back.dtypes == df.dtypes).all()
    for col in ("code", "color", "flag", "level"):
        assert back[col].tolist() == df[col].tolist()
    assert (back["count"] - df["count"]).abs().max() <= 1
    tol = 0.05 if continuous == "quantile" else 1e-6
    np.testing.assert_allclose(back["x"], df["x"], atol=tol * df["x"].std() * 4)
    pd.testing.assert_series_equal(back["gappy"].isna(), df["gappy"].isna())
    assert (back["when"] - df["when"]).abs().max() <= pd.Timedelta(days=5)


def test_layout_groups_and_missingness_slot():
    df = mixed_frame()
    tr = TableTransformer().fit(df)
    layout, table = tr.layout_, tr.transform(df)
    assert layout.cont_names == ("x", "count", "when", "gappy")
    assert layout.cat_names == ("code", "color", "flag", "level")
    assert layout.cat_cardinalities == (4, 3, 2, 2)
    assert layout.miss_names == ("gappy",)
    assert table.x_miss[:, 0].bool().tolist() == df["gappy"].isna().tolist()
    assert not table.cont_mask[df["gappy"].isna().to_numpy(), 3].any()
    assert table.features is None and layout.features(table).shape == (300, layout.input_dim)


def test_quantile_transform_gives_standard_normal_and_keeps_spikes():
    rng = np.random.default_rng(1)
    values = np.where(rng.random(20000) < 0.9, 0.0, rng.lognormal(8, 1, 20000))  # capital-gain like
    t = QuantileNormal().fit(values, rng)
    y, _ = t.forward(values, rng)
    assert abs(y.mean()) < 0.03 and abs(y.std() - 1) < 0.03
    back = t.inverse(np.random.default_rng(2).normal(size=(20000, 1)), None)
    assert abs((back == 0).mean() - 0.9) < 0.01
    assert back.max() <= values.max() and back.min() >= 0


def test_quantile_transform_keeps_a_long_tail():
    """Standard normal scores mapped back give a long tail's top 0.1 % its shape: the median
    of the values above the 0.999 quantile as in the data (evenly spaced knots alone spread
    them evenly up to the maximum), and values up to the largest ones."""
    rng = np.random.default_rng(0)
    values = rng.lognormal(0, 1.5, 100_000)
    t = QuantileNormal().fit(values, rng)
    back = t.inverse(np.random.default_rng(1).normal(size=(1_000_000, 1)), None)
    high = np.quantile(values, 0.999)
    assert np.median(back[back > high]) == pytest.approx(np.median(values[values > high]), rel=0.1)
    assert (back > high).mean() == pytest.approx(0.001, rel=0.1)
    assert back.max() > np.sort(values)[-20]


def test_mode_specific_finds_modes():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(-5, 0.5, 3000), rng.normal(5, 1, 3000)])
    t = ModeSpecific(max_modes=5).fit(values, rng)
    # every component sits on one of the two modes, and each mode gets half the weight
    near = np.abs(t.means[:, None] - np.array([-5.0, 5.0])) < 1.5
    assert near.any(axis=1).all()
    np.testing.assert_allclose(
        [t.weights[near[:, 0]].sum(), t.weights[near[:, 1]].sum()], [0.5, 0.5], atol=0.02
    )


def test_missing_rate_is_reproduced_from_missingness_slot():
    df = mixed_frame(1000)
    tr = TableTransformer().fit(df)
    table = tr.transform(df)
    table.x_miss = torch.bernoulli(torch.full_like(table.x_miss, 0.35))
    assert abs(tr.inverse_transform(table)["gappy"].isna().mean() - 0.35) < 0.04


def test_serialisation_round_trip_gives_identical_transform():
    df = mixed_frame()
    for continuous in ("quantile", "mode_specific"):
        tr = TableTransformer(continuous=continuous, missing_values=["?"]).fit(df)
        clone = TableTransformer.from_dict(json.loads(json.dumps(tr.to_dict())))
        a, b = tr.transform(df), clone.transform(df)
        assert torch.equal(a.x_cont, b.x_cont) and torch.equal(a.x_cat, b.x_cat)
        assert clone.layout_ == tr.layout_


def test_missing_markers_become_nan_and_numeric_columns_stay_numeric():
    df = pd.DataFrame({"a": ["1", "?", "3", "4"] * 10, "b": ["x", "?", "y", "x"] * 10})
    tr = TableTransformer(missing_values=["?"]).fit(df)
    kinds = {c.name: c.kind for c in tr.schema_.columns}
    assert kinds["b"] == "categorical" and tr.schema_["b"].has_missing
    back = tr.inverse_transform(tr.transform(df))
    assert back["b"].isna().sum() == 10


def test_adult_round_trip_is_exact(adult):
    """(Transform speed is measured by bench/speed.py, not here.)"""
    tr = TableTransformer(missing_values=["?"]).fit(adult)
    back = tr.inverse_transform(tr.transform(adult))
    for col in adult.columns:
        if adult[col].dtype == object:
            assert back[col].fillna("?").tolist() == adult[col].tolist()
    assert (back["age"] - adult["age"]).abs().max() <= 1


# -- bad input --------------------------------------------------------------------------


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        TableTransformer().fit([[1, 2]])


@pytest.mark.parametrize(
    "df, message", [(pd.DataFrame(), "no columns"), (pd.DataFrame({"a": []}), "no rows")]
)
def test_empty_frames(df, message):
    with pytest.raises(DataError, match=message):
        TableTransformer().fit(df)


def test_all_nan_column_is_named():
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "void": [np.nan] * 3})
    with pytest.raises(DataError, match="column 'void' is entirely missing: drop it"):
        TableTransformer().fit(df)


def test_inf_is_named():
    df = pd.DataFrame({"v": [1.0, np.inf, 3.0]})
    with pytest.raises(DataError, match="column 'v' contains inf"):
        TableTransformer().fit(df)


def test_duplicate_column_names():
    df = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"])
    with pytest.raises(DataError, match=r"duplicate column name\(s\) \['a'\]"):
        TableTransformer().fit(df)


def test_unicode_column_names_round_trip():
    df = pd.DataFrame({"größe": np.linspace(0, 1, 50), "城市": ["北京", "上海"] * 25})
    tr = TableTransformer().fit(df)
    back = tr.inverse_transform(tr.transform(df))
    assert list(back.columns) == ["größe", "城市"] and back["城市"].tolist() == df["城市"].tolist()


def test_mixed_type_object_column_is_modelled_as_strings():
    df = pd.DataFrame({"m": ["1", 2, None, "x"] * 20})
    tr = TableTransformer().fit(df)
    assert tr.schema_["m"].kind == "categorical" and tr.schema_["m"].mixed_types
    back = tr.inverse_transform(tr.transform(df))
    assert (
        back["m"].tolist() == ["1", "2", None, "x"] * 20
        or back["m"].fillna("<na>").tolist() == ["1", "2", "<na>", "x"] * 20
    )


def test_id_like_column_warns_with_the_fix():
    df = pd.DataFrame({"id": [f"user{i}" for i in range(3000)], "v": np.arange(3000.0)})
    with pytest.warns(UserWarning, match=r"looks like an identifier.*df.drop\(columns=\['id'\]\)"):
        TableTransformer().fit(df)


def test_unseen_and_missing_columns_and_levels():
    df = pd.DataFrame({"a": [1.5, 2.5, 3.5] * 5, "b": ["x", "y", "z"] * 5})
    tr = TableTransformer().fit(df)
    with pytest.raises(DataError, match=r"unseen column\(s\) \['c'\]"):
        tr.transform(df.assign(c=1))
    with pytest.raises(DataError, match=r"missing column\(s\) \['b'\]"):
        tr.transform(df[["a"]])
    with pytest.raises(
        DataError, match="column 'b' has value\\(s\\) not seen when fitting: \\['w'\\]"
    ):
        tr.transform(pd.DataFrame({"a": [1.0], "b": ["w"]}))


def test_kinds_override_and_its_errors():
    df = pd.DataFrame({"zip": [10115, 20095, 80331] * 10, "v": np.arange(30.0)})
    assert (
        TableTransformer(kinds={"zip": "categorical"}).fit(df).schema_["zip"].kind == "categorical"
    )
    with pytest.raises(DataError, match="not in the table"):
        TableTransformer(kinds={"nope": "categorical"}).fit(df)
    with pytest.raises(DataError, match="is not a column kind"):
        TableTransformer(kinds={"zip": "weird"}).fit(df)
    with pytest.raises(DataError, match="declared continuous but holds non-numeric"):
        TableTransformer(kinds={"s": "continuous"}).fit(pd.DataFrame({"s": ["a", "b"]}))


def test_constant_column_and_single_row_fit_and_sample():
    df = pd.DataFrame({"const": [7.0] * 40, "c": ["k"] * 40, "v": np.linspace(0, 1, 40)})
    vae = ppvae.TabularVAE(epochs=2, hidden=(16,), latent_dim=2, verbose=False).fit(df)
    synth = vae.sample(50, seed=0)
    assert (synth["const"] == 7.0).all() and (synth["c"] == "k").all()
    with pytest.warns(UserWarning, match="only 1 row"):
        one = ppvae.TabularVAE(epochs=2, hidden=(8,), latent_dim=2, verbose=False).fit(df.head(1))
    assert one.sample(3, seed=0).shape == (3, 3)


def test_known_rows_marks_unseen_levels():
    train = pd.DataFrame({"c": ["a", "b", "a", "b"], "x": [1.5, 2.25, 3.75, 4.5]})
    test = pd.DataFrame({"c": ["a", "z", None, "b"], "x": [1.5, 2.0, 3.0, 9.25]})
    tr = TableTransformer().fit(train)
    known = tr.known_rows(test)
    assert known.tolist() == [True, False, False, True]  # NaN was never seen in "c"
    tr.transform(test[known])
    with pytest.raises(DataError, match="known_rows"):
        tr.transform(test)
