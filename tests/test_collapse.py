"""Identifier columns, the post-fit health check and the small-table defaults (issue 18)."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import ppvae
from ppvae.data import TableTransformer
from ppvae.data.identifiers import Identifier, identifier_reason, shape_of
from ppvae.diagnostics.health import Health, cramers_v, strongest_pairs

FAST = dict(hidden=(64,), latent_dim=4, verbose=False)


def people(n: int, seed: int = 0) -> pd.DataFrame:
    """A small table with a strong dependence (b follows a, y is a's sign) and three ID columns."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    first = np.array(["Anna", "Bob", "Carla", "Dmitri", "Eve"])
    return pd.DataFrame(
        {
            "a": a,
            "b": a + 0.2 * rng.normal(size=n),
            "y": np.where(a > 0, "yes", "no"),
            "name": [f"{first[i % 5]} Smith{i}" for i in range(n)],
            "ticket": [f"A/5 {21171 + 7 * i}" for i in range(n)],
            "key": 1 + rng.permutation(n),
        }
    )


def test_identifier_rules_scale_with_rows():
    assert "500 distinct text values" in identifier_reason(pd.Series([f"u{i}" for i in range(500)]))
    assert identifier_reason(pd.Series([f"u{i}" for i in range(19)])) is None  # too few rows
    assert identifier_reason(pd.Series([f"u{i % 400}" for i in range(500)])) is None  # 80 %
    assert "row key" in identifier_reason(pd.Series(np.arange(100) + 7))
    split_key = pd.Series(np.random.default_rng(0).permutation(500)[:400])  # a train split
    assert "row key" in identifier_reason(split_key)
    spread = pd.Series(np.arange(100) * 13)  # unique integers, not consecutive: a number
    assert identifier_reason(spread) is None
    assert identifier_reason(pd.Series(np.linspace(0, 1, 100))) is None  # unique floats
    assert identifier_reason(pd.Series(["x"] * 100)) is None


def test_a_500_value_id_column_warns_with_the_override():
    # issue 19 item 16: the old threshold was over 1,000 values whatever the number of rows
    df = people(500)[["a", "name"]]
    with pytest.warns(UserWarning, match=r"'name' looks like an identifier.*kinds=\{'name'"):
        tr = TableTransformer().fit(df)
    assert tr.schema_["name"].kind == "identifier" and tr.layout_.cat_names == ()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a declared kind: no message
        declared = TableTransformer(kinds={"name": "categorical"}).fit(df)
    assert declared.layout_.cat_cardinalities == (500,)


def test_shapes():
    assert shape_of("A/5 21171") == "A1|\\/|91|\\ |95"
    assert shape_of("Braund, Owen") == "A1|a5|\\,|\\ |A1|a3"


def test_generated_identifiers_are_fresh_unique_and_in_format():
    df = people(300)
    with pytest.warns(UserWarning, match="identifier"):
        tr = TableTransformer().fit(df)
    back = tr.inverse_transform(tr.transform(df))
    for col in ("name", "ticket", "key"):
        assert back[col].is_unique and not set(back[col]) & set(df[col])
    assert set(back["name"].map(shape_of)) <= set(df["name"].map(shape_of))
    assert back["ticket"].str.fullmatch(r"[A-Z]/\d \d{5}").all()
    assert back["key"].dtype == df["key"].dtype and back["key"].min() == df["key"].max() + 1


def test_identifier_state_is_json_and_reproducible():
    values = np.array([f"Smith{i}" for i in range(50)], dtype=object)
    t = Identifier().fit(values, np.random.default_rng(0))
    state = json.loads(json.dumps(t.to_dict()))
    assert not any("Smith" in str(v) for v in state["hashes"])  # only hashes are stored
    loaded = Identifier.from_dict(state)
    a = loaded.generate(20, np.random.default_rng(1))
    assert list(a) == list(t.generate(20, np.random.default_rng(1)))


def test_identifier_never_returns_a_training_value_even_when_the_format_is_tight():
    values = np.array(
        [f"{i:02d}" for i in range(90)], dtype=object
    )  # 90 of the 99 two-digit values
    t = Identifier().fit(values, np.random.default_rng(0))
    fresh = t.generate(30, np.random.default_rng(0))
    assert len(set(fresh)) == 30 and not set(fresh) & set(values)


def test_cramers_v_limits():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 5000)
    assert cramers_v(a, a) == pytest.approx(1.0, abs=1e-3)
    assert cramers_v(a, rng.integers(0, 3, 5000)) < 0.03
    assert cramers_v(a, np.zeros(5000)) == 0.0


def test_strongest_pairs_compare_real_and_sampled():
    df = people(1000)[["a", "b", "y"]]
    rng = np.random.default_rng(1)
    independent = pd.DataFrame({c: rng.permutation(df[c].to_numpy()) for c in df.columns})
    pairs = strongest_pairs(df, independent)
    assert {p[:2] for p in pairs} == {("a", "b"), ("a", "y"), ("b", "y")} and pairs[0][2] > 0.8
    assert all(p[3] < 0.1 for p in pairs)
    assert Health(3, 4, pairs).lost_dependence and not Health(3, 4, pairs).collapsed
    assert (
        Health(0, 4, pairs).collapsed and "no active latent unit" in Health(0, 4, pairs).message()
    )
    assert Health(0, 4, []).ok  # nothing to carry: independent columns need no z


def test_collapsed_fit_warns_and_is_recorded():
    df = people(400)
    with pytest.warns(UserWarning) as record:
        vae = ppvae.TabularVAE(**FAST, epochs=30, objective={"name": "beta", "beta": 50.0}).fit(df)
    messages = [str(w.message) for w in record]
    assert any("looks collapsed" in m and "free_bits" in m for m in messages)
    assert vae.health_.collapsed and not vae.health_.ok


def test_healthy_fit_keeps_dependence_and_generates_ids(tmp_path):
    df = people(400)
    with pytest.warns(UserWarning) as record:
        vae = ppvae.TabularVAE(**FAST, epochs=60).fit(df)
    assert not any("looks collapsed" in str(w.message) for w in record)
    assert vae.health_.ok and vae.health_.active_units >= 1
    assert "healthy" in str(vae.health_)
    synth = vae.sample(300, seed=0)
    assert synth["name"].is_unique and not set(synth["name"]) & set(df["name"])
    loaded = ppvae.load(vae.save(tmp_path / "model"))  # the identifier transform is saved
    again = loaded.sample(300, seed=0)
    pd.testing.assert_frame_equal(again, synth)


def test_report_prints_a_readable_summary():
    df = people(300)[["a", "b", "y"]]
    vae = ppvae.TabularVAE(**FAST, epochs=40).fit(df)
    text = str(ppvae.diagnose(vae, df, max_rows=200))
    assert text.startswith("ppvae diagnostics") and "active units" in text
    assert "array(" not in text and "tensor(" not in text and len(text.splitlines()) < 20
