"""Exact ties between numeric columns (``ppvae.data.ties``): found, encoded, sampled, saved."""

import numpy as np
import pandas as pd

import ppvae
from ppvae.data import TableTransformer
from ppvae.data.point_masses import PointMasses
from ppvae.data.ties import find_ties, tie_order

TIE_RATE = 0.3


def tied_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """``paid`` copies ``billed`` in TIE_RATE of the rows (both positive, 2 decimals); ``a``
    and ``b`` are independent counts on 0..4 that agree by chance in a fifth of the rows."""
    rng = np.random.default_rng(seed)
    billed = np.round(rng.lognormal(6, 1, n), 2)
    copied = rng.random(n) < TIE_RATE
    paid = np.where(copied, billed, np.round(billed * rng.uniform(0.05, 0.9, n), 2))
    return pd.DataFrame(
        {
            "billed": billed,
            "paid": paid,
            "a": rng.integers(0, 5, n),
            "b": rng.integers(0, 5, n),
            "kind": rng.choice(["x", "y"], n),
        }
    )


def test_a_copied_column_is_found_and_chance_agreement_is_not():
    df = tied_frame()
    columns = {c: df[c].to_numpy(float) for c in ["billed", "paid", "a", "b"]}
    ties = find_ties(columns, {}, np.random.default_rng(0))
    assert ties == [("paid", "billed")]  # a = b in ~20 % of rows, as chance predicts: no tie


def test_ties_are_counted_off_the_target_spikes():
    rng = np.random.default_rng(1)
    a = np.where(rng.random(4000) < 0.5, 0.0, rng.normal(size=4000))
    copied = (a != 0) & (rng.random(4000) < 0.1)
    b = np.where(a == 0, 0.0, np.where(copied, a, rng.normal(size=4000)))
    # off b's spike at 0, b = a in a tenth of the rows: a tie
    assert find_ties({"a": a, "b": b}, {"b": np.array([0.0])}, rng) == [("b", "a")]
    # counted on every row, the shared zeros (half the rows) are what chance predicts (1/4)
    assert find_ties({"a": a, "b": b}, {}, rng) == []


def test_a_column_may_copy_several_sources_but_the_ties_never_cycle():
    rng = np.random.default_rng(2)
    n = 3000
    bill = np.round(rng.lognormal(6, 1, n), 2)
    previous = np.round(rng.lognormal(5, 1, n), 2)
    u = rng.random(n)
    pay = np.where(u < 0.2, bill, np.where(u < 0.3, previous, np.round(rng.lognormal(4, 1, n), 2)))
    columns = {"bill": bill, "previous": previous, "pay": pay}
    ties = find_ties(columns, {}, rng)
    assert ties == [("pay", "bill"), ("pay", "previous")]  # bill <- pay would close a cycle
    assert tie_order([("c", "b"), ("b", "a")]) == ["b", "c"]
    df = pd.DataFrame(columns)
    tr = TableTransformer().fit(df)
    table = tr.transform(df)
    level = table.x_cat[:, tr.layout_.cat_names.index("pay")].numpy()
    expected = np.where(pay == bill, 1, np.where(pay == previous, 2, 0))
    assert np.array_equal(level, expected)
    back = tr.inverse_transform(table)
    assert (back.pay[level == 1] == back.bill[level == 1]).all()
    assert (back.pay[level == 2] == back.previous[level == 2]).all()


def test_tied_rows_sit_on_the_tie_level_and_decode_to_the_source():
    df = tied_frame()
    tr = TableTransformer().fit(df)
    assert tr.ties_ == [("paid", "billed")]
    t = tr.transforms_[tr.schema_.names.index("paid")]
    assert isinstance(t, PointMasses) and t.tied == 1 and len(t.spikes) == 0
    assert t.cat_cardinalities == (2,)  # elsewhere, equal to billed
    table = tr.transform(df)
    level = table.x_cat[:, tr.layout_.cat_names.index("paid")].numpy()
    assert np.array_equal(level == 1, (df.paid == df.billed).to_numpy())
    back = tr.inverse_transform(table)
    copied = (df.paid == df.billed).to_numpy()
    assert (back.paid[copied] == back.billed[copied]).all()  # the source as decoded


def test_ties_are_saved_with_the_transformer_and_old_states_load_without_them():
    tr = TableTransformer().fit(tied_frame())
    state = tr.to_dict()
    assert TableTransformer.from_dict(state).ties_ == [("paid", "billed")]
    del state["ties"]
    for t in state["transforms"]:
        t.pop("tied", None)
    old = TableTransformer.from_dict(state)
    assert old.ties_ == []
    assert old.transforms_[old.schema_.names.index("paid")].cat_cardinalities == (1,)


def test_sampled_rows_copy_the_source_as_often_as_the_training_rows(tmp_path):
    df = tied_frame()
    vae = ppvae.TabularVAE(epochs=10, verbose=False, seed=0).fit(df)
    synth = vae.sample(4000, seed=0)
    share = float((synth.paid == synth.billed).mean())
    assert abs(share - TIE_RATE) < 0.05, share  # without the tie level: 0
    loaded = ppvae.load(vae.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.sample(500, seed=1), vae.sample(500, seed=1))


def test_an_imputed_cell_can_copy_its_observed_source():
    df = tied_frame()
    vae = ppvae.TabularVAE(epochs=10, verbose=False, seed=0).fit(df)
    rows = df.head(40).copy()
    rows["paid"] = np.nan
    out = vae.impute(rows, num_imputations=5, seed=0)
    billed = np.tile(rows.billed.to_numpy(), 5)
    assert (out.paid.to_numpy() == billed).mean() > 0.1
