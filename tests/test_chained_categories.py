"""Categorical slots chained given z (ppvae.chained_categories): exact against brute force."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae
from ppvae.chained_categories import ChainedCategoricalColumns, LevelChain
from ppvae.likelihoods import CategoricalColumns, CategoricalGroups
from ppvae.marginal_calibration import calibrate_categories, category_offsets

CARDINALITIES = (2, 3, 4)
STARTS = (0, 2, 5)


def chained(batch: int = 4, mask: torch.Tensor | None = None, trained: bool = True):
    chain = LevelChain(CARDINALITIES, rank=3)
    if trained:
        with torch.no_grad():
            chain.readout.normal_()
    logits = torch.randn(batch, sum(CARDINALITIES))
    return ChainedCategoricalColumns(logits, CategoricalGroups(CARDINALITIES), chain, mask)


def brute_force(fn: ChainedCategoricalColumns, row: int, value) -> torch.Tensor:
    """sum_j log softmax(l_j + u^T sum_{i<j} e_{x_i})[x_j], written out slot by slot."""
    chain, total, context = fn.chain, 0.0, torch.zeros(3)
    for j, k in enumerate(CARDINALITIES):
        s = slice(STARTS[j], STARTS[j] + k)
        logits = fn.logits[row, s] + context @ chain.readout[:, s]
        total = total + torch.log_softmax(logits, -1)[value[j]]
        context = context + chain.embedding[STARTS[j] + value[j]]
    return total


def test_an_untrained_chain_is_the_independent_model():
    fn = chained(trained=False)
    value = fn.sample()
    independent = CategoricalColumns(fn.logits, fn.groups)
    torch.testing.assert_close(fn.slot_log_prob(value), independent.slot_log_prob(value))


def test_density_is_the_chain_rule_and_sums_to_one():
    fn = chained()
    values = torch.tensor(list(itertools.product(*(range(k) for k in CARDINALITIES))))
    with torch.no_grad():
        for row in range(4):
            lp = fn.log_prob(values[:, None, :].expand(-1, 4, -1))[:, row]
            expected = torch.stack([brute_force(fn, row, v) for v in values])
            torch.testing.assert_close(lp, expected)
            torch.testing.assert_close(lp.exp().sum(), torch.tensor(1.0))


def test_a_masked_level_adds_no_density_and_no_context():
    mask = torch.tensor([[False, True, True]]).expand(4, 3)
    fn = chained(mask=mask)
    value = fn.sample()
    parts = fn.slot_log_prob(value)
    assert torch.all(parts[:, 0] == 0)
    free = ChainedCategoricalColumns(fn.logits, fn.groups, fn.chain)
    other = value.clone()
    other[:, 0] = 1 - other[:, 0]  # the hidden level does not matter
    torch.testing.assert_close(fn.slot_log_prob(other), parts)
    assert not torch.allclose(free.slot_log_prob(value)[:, 1:], parts[:, 1:])


def test_samples_follow_the_chain():
    torch.manual_seed(0)
    fn = chained(batch=1)
    draws = fn.sample((40_000,))[:, 0]
    with torch.no_grad():
        for v in [(0, 0, 0), (1, 2, 3), (0, 1, 2)]:
            hits = float((draws == torch.tensor(v)).all(-1).float().mean())
            p = float(brute_force(fn, 0, v).exp())
            assert abs(hits - p) < 4 * (p * (1 - p) / 40_000) ** 0.5 + 1e-3


def linked_table(n: int = 400) -> pd.DataFrame:
    """``b`` copies ``a`` in 95 % of rows; ``c`` is noise."""
    rng = np.random.default_rng(0)
    a = rng.choice(["p", "q", "r"], size=n)
    b = np.where(rng.random(n) < 0.95, a, rng.choice(["p", "q", "r"], size=n))
    return pd.DataFrame({"a": a, "b": b, "c": rng.normal(size=n)})


def test_a_fit_learns_the_link_and_calibrates_saves_and_loads(tmp_path):
    df = linked_table()
    vae = ppvae.TabularVAE(
        latent_dim=1,
        hidden=(16,),
        model={"name": "tabular", "chain_rank": 4},
        objective={"name": "beta", "beta": 20.0},  # z carries nothing: the chain must
        epochs=60,
        patience=None,
        verbose=False,
        seed=0,
    ).fit(df)
    rows = vae.sample(2000, seed=0)
    assert (rows["a"] == rows["b"]).mean() > 0.8  # independent draws would agree 1/3 of the time
    given = vae.sample(400, given={"a": "q"}, seed=2)  # later slots drawn given the given level
    assert (given["a"] == "q").all() and (given["b"] == "q").mean() > 0.6  # 1/3 unlinked
    before = vae.sample(400, given={"b": "r"}, seed=4)  # an earlier slot, given a later one
    assert (before["b"] == "r").all() and (before["a"] == "r").mean() > 0.6
    assert len(before.drop_duplicates()) == len(before)  # resampled copies moved apart
    gap = calibrate_categories(vae.model_, vae._table(df), draws=4000)
    assert gap is not None and gap < 1e-3
    assert category_offsets(vae.model_).abs().sum() > 0
    calibrated = vae.sample(20_000, seed=1)
    for column in ("a", "b"):  # the generated levels' frequencies are the training rows'
        gaps = calibrated[column].value_counts(normalize=True) - df[column].value_counts(
            normalize=True
        )
        assert gaps.abs().max() < 0.02, column
    vae.save(tmp_path / "m")
    again = ppvae.load(tmp_path / "m")
    pd.testing.assert_frame_equal(again.sample(100, seed=3), vae.sample(100, seed=3))


@pytest.mark.parametrize("rank", [-1, 2.5, True])
def test_chain_rank_must_be_a_non_negative_integer(rank):
    with pytest.raises(ValueError, match="chain_rank"):
        ppvae.TabularVAE(
            model={"name": "tabular", "chain_rank": rank}, epochs=1, verbose=False
        ).fit(linked_table(50))


def spiked_table(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``x`` is 0 in half the rows (a point mass) and ``y`` says so 90 % of the time."""
    rng = np.random.default_rng(seed)
    zero = rng.random(n) < 0.5
    x = np.where(zero, 0.0, rng.exponential(size=n) + 0.1).round(3)
    agree = rng.random(n) < 0.9
    y = np.where(zero == agree, "zero", "positive")
    return pd.DataFrame({"x": x, "y": y})


@pytest.mark.parametrize("point_masses", [True, False])
def test_a_point_mass_slot_in_the_chain_carries_its_link(point_masses):
    vae = ppvae.TabularVAE(
        latent_dim=1,
        hidden=(16,),
        model={"name": "tabular", "chain_rank": 4, "chain_point_masses": point_masses},
        objective={"name": "beta", "beta": 20.0},  # z carries nothing: only the chain can
        calibrate="none",
        epochs=60,
        patience=None,
        verbose=False,
        seed=0,
    ).fit(spiked_table())
    rows = vae.sample(4000, seed=0)
    agree = ((rows["x"] == 0) == (rows["y"] == "zero")).mean()
    if point_masses:  # x = 0 is a level of the chain that y reads
        assert agree > 0.8
    else:  # the point mass is decided given z only, as y is: independent
        assert abs(agree - 0.5) < 0.05
