"""Continuous slots chained given z and the levels (ppvae.chained_continuous): exact checks."""

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae
from ppvae.chained_continuous import (
    COMPONENTS,
    OFFSETS,
    ChainedContinuousColumns,
    SlotChain,
    truncated_draw,
)
from ppvae.networks import MIN_SCALE
from ppvae.normal_mixture import NormalMixture

WIDTH, CARDINALITIES, RANK = 4, (2, 3), 3


def chained(batch: int = 5, mask: torch.Tensor | None = None, trained: bool = True):
    chain = SlotChain(WIDTH, CARDINALITIES, RANK)
    if trained:
        with torch.no_grad():
            chain.loc_readout.normal_()
            chain.scale_readout.normal_(0, 0.3)
            chain.logit_readout.normal_()
            chain.loc_offset.normal_()
    x_cat = torch.stack([torch.randint(k, (batch,)) for k in CARDINALITIES], -1)
    context = chain.level_context(x_cat, None)
    loc, raw_scale = torch.randn(batch, WIDTH), torch.randn(batch, WIDTH)
    return ChainedContinuousColumns(loc, raw_scale, chain, context, mask), x_cat


def by_hand(fn: ChainedContinuousColumns, x_cat, value) -> torch.Tensor:
    """Per-slot log-densities written out slot by slot from the module docstring."""
    chain = fn.chain
    levels = (
        chain.level_embedding[x_cat[:, 0]] + chain.level_embedding[CARDINALITIES[0] + x_cat[:, 1]]
    )
    parts, before = [], torch.zeros_like(levels)
    for j in range(WIDTH):
        h = torch.tanh(levels + before)
        density = 0.0
        weights = torch.softmax(h @ chain.logit_readout[j].T + chain.logit_bias[j], -1)
        for k in range(COMPONENTS):
            loc = fn.loc[:, j] + h @ chain.loc_readout[j, k] + chain.loc_offset[j, k]
            raw = fn.raw_scale[:, j] + h @ chain.scale_readout[j, k] + chain.scale_offset[j, k]
            scale = torch.nn.functional.softplus(raw) + MIN_SCALE
            normal = torch.distributions.Normal(loc, scale)
            density = density + weights[:, k] * normal.log_prob(value[:, j]).exp()
        parts.append(density.log())
        before = before + value[:, j : j + 1] * chain.slot_embedding[j]
    return torch.stack(parts, -1)


def test_an_untrained_chain_has_no_dependence():
    fn, _ = chained(trained=False)
    value = fn.sample()
    scale = torch.nn.functional.softplus(fn.raw_scale) + MIN_SCALE
    alone = NormalMixture(
        torch.zeros(*value.shape, COMPONENTS),
        fn.loc.unsqueeze(-1) + OFFSETS,
        scale.unsqueeze(-1).expand(*value.shape, COMPONENTS),
    )
    torch.testing.assert_close(fn.slot_log_prob(value), alone.log_prob(value))


def test_a_chain_saved_with_one_normal_per_slot_loads_as_that_normal():
    fn, x_cat = chained()
    one = SlotChain(WIDTH, CARDINALITIES, RANK)
    state = {
        k: v[:, 0] if k in ("loc_readout", "scale_readout") else v
        for k, v in fn.chain.state_dict().items()
        if k not in ("logit_readout", "loc_offset", "scale_offset", "logit_bias")
    }
    one.load_state_dict(state)
    value = torch.randn(5, WIDTH)
    old = ChainedContinuousColumns(fn.loc, fn.raw_scale, one, fn.level_context)
    with torch.no_grad():
        levels = one.level_context(x_cat, None)
        before = torch.zeros_like(levels)
        for j in range(WIDTH):  # the single Normal of the chain as it was
            h = torch.tanh(levels + before)
            loc = fn.loc[:, j] + h @ state["loc_readout"][j]
            raw = fn.raw_scale[:, j] + h @ state["scale_readout"][j]
            normal = torch.distributions.Normal(loc, torch.nn.functional.softplus(raw) + MIN_SCALE)
            torch.testing.assert_close(old.slot_log_prob(value)[:, j], normal.log_prob(value[:, j]))
            before = before + value[:, j : j + 1] * one.slot_embedding[j]


def test_density_is_the_chain_rule():
    fn, x_cat = chained()
    value = torch.randn(5, WIDTH)
    with torch.no_grad():
        torch.testing.assert_close(fn.slot_log_prob(value), by_hand(fn, x_cat, value))
        for j in range(WIDTH):  # the sampler's one-slot conditional is the same density
            torch.testing.assert_close(
                fn.slot(value, j).log_prob(value[:, j]), fn.slot_log_prob(value)[:, j]
            )
    assert fn.log_prob(value).shape == (5,)


def test_a_masked_slot_adds_no_density_and_no_context():
    mask = torch.tensor([[False, True, True, True]]).expand(5, WIDTH)
    fn, _ = chained(mask=mask)
    value = torch.randn(5, WIDTH)
    parts = fn.slot_log_prob(value)
    assert torch.all(parts[:, 0] == 0)
    other = value.clone()
    other[:, 0] = other[:, 0] + 3.0  # the hidden value does not matter
    torch.testing.assert_close(fn.slot_log_prob(other), parts)


def test_a_filler_slot_adds_no_context():
    # slot 0 is read only in rows whose first level is 1 (a point-mass column's "elsewhere")
    chain = SlotChain(WIDTH, CARDINALITIES, RANK, gates=((0, 1), (-1, -1), (-1, -1), (-1, -1)))
    with torch.no_grad():
        chain.loc_readout.normal_()
        chain.slot_embedding.mul_(5)
    x_cat = torch.tensor([[0, 2], [1, 2]])
    gate = chain.gate(x_cat)
    assert gate.tolist() == [[0, 1, 1, 1], [1, 1, 1, 1]]
    loc, raw_scale = torch.zeros(2, WIDTH), torch.zeros(2, WIDTH)
    fn = ChainedContinuousColumns(
        loc, raw_scale, chain, chain.level_context(x_cat, None), gate=gate
    )
    value, other = torch.randn(2, WIDTH), torch.randn(2, WIDTH)
    other[:, 1:] = value[:, 1:]  # only the first slot differs
    with torch.no_grad():
        moved = (fn.slot_log_prob(other) - fn.slot_log_prob(value))[:, 1:].abs().sum(-1)
        assert moved[0] == 0 and moved[1] > 0  # filler read by no later slot; a value is
        for j in range(WIDTH):  # the sampler reads the slots as the density does
            torch.testing.assert_close(
                fn.slot(value, j).log_prob(value[:, j]), fn.slot_log_prob(value)[:, j]
            )
        assert torch.equal(fn.given_levels(x_cat.flip(0)).gate, gate.flip(0))
    assert SlotChain(WIDTH, CARDINALITIES, RANK).gate(x_cat) is None  # no gates: all read


def test_point_mass_columns_gate_their_slot_and_the_gates_are_saved(tmp_path):
    rng = np.random.default_rng(3)
    spend = np.where(rng.random(800) < 0.4, 0.0, rng.lognormal(3, 1, 800).round(2))
    df = pd.DataFrame({"g": rng.choice(["p", "q"], 800), "spend": spend, "x": rng.normal(size=800)})
    vae = ppvae.TabularVAE(epochs=2, verbose=False, seed=0, hidden=(8,)).fit(df)
    layout = vae.layout_
    spend_cat = layout.cat_names.index("spend")
    assert layout.cont_gates == ((spend_cat, 1), (-1, -1))  # levels: 0, elsewhere
    assert type(layout).from_dict(layout.to_dict()) == layout
    old = {k: v for k, v in layout.to_dict().items() if k != "cont_gates"}
    assert type(layout).from_dict(old).cont_gates == ()  # saved before gates: all read
    vae.save(tmp_path / "m")
    again = ppvae.load(tmp_path / "m")
    assert again.layout_ == layout
    pd.testing.assert_frame_equal(again.sample(50, seed=1), vae.sample(50, seed=1))


def test_samples_follow_the_chain():
    torch.manual_seed(0)
    fn, _ = chained(batch=1)
    n = 40_000
    draws = fn.sample((n,))[:, 0]
    # slot 1 given slot 0 is a mixture read from tanh(c + y_0 e_0): its CDF at the drawn
    # value (probability integral transform) is uniform on [0, 1]
    with torch.no_grad():
        u = fn.slot(draws, 1).cdf(draws[:, 1])
    assert abs(float(u.mean()) - 0.5) < 4 * (1 / 12 / n) ** 0.5
    assert abs(float(u.std()) - (1 / 12) ** 0.5) < 0.005
    fixed = torch.zeros(n, WIDTH, dtype=torch.bool)
    fixed[:, 0] = True
    given = torch.full((n, WIDTH), 1.5)
    out = fn.expand((n,)).complete(given, fixed, {2: (0.0, 0.5)})[0]
    assert torch.all(out[:, 0] == 1.5)
    assert torch.all((out[:, 2] >= 0) & (out[:, 2] <= 0.5))
    with torch.no_grad():
        expected = fn.slot(given[:1], 1).mean
    assert abs(float(out[:, 1].mean() - expected)) < 4 * float(out[:, 1].std()) / n**0.5


def test_truncated_draws_stay_in_range_and_follow_the_density():
    torch.manual_seed(1)
    one = torch.distributions.Normal(torch.zeros(50_000), torch.ones(50_000))
    y = truncated_draw(one, 1.0, float("inf"))
    assert float(y.min()) >= 1.0
    # E[Y | Y > 1] for a standard normal: phi(1) / (1 - Phi(1)) = 1.5251
    assert abs(float(y.mean()) - 1.5251) < 0.01


def linked_table(n: int = 600) -> pd.DataFrame:
    """``b`` is ``a`` plus a little noise, and ``a`` is larger when ``g`` is ``"p"``."""
    rng = np.random.default_rng(0)
    g = rng.choice(["p", "q"], size=n)
    a = rng.normal(size=n) + np.where(g == "p", 2.0, -2.0)
    return pd.DataFrame({"g": g, "a": a, "b": a + 0.1 * rng.normal(size=n)})


def test_a_fit_learns_the_links_and_saves_loads_and_imputes(tmp_path):
    df = linked_table()
    vae = ppvae.TabularVAE(
        latent_dim=1,
        hidden=(16,),
        model={"name": "tabular", "chain_rank": 4, "chain_continuous": True},
        objective={"name": "beta", "beta": 20.0},  # z carries nothing: the chain must
        calibrate="none",  # the joint below is the model's own, as sample(given=...) uses it
        epochs=80,
        patience=None,
        verbose=False,
        seed=0,
    ).fit(df)
    rows = vae.sample(2000, seed=0)
    assert np.corrcoef(rows["a"], rows["b"])[0, 1] > 0.9  # independent draws: 0
    gap = rows.loc[rows["g"] == "p", "a"].mean() - rows.loc[rows["g"] == "q", "a"].mean()
    assert gap > 2.5  # real rows: 4; independent draws: 0
    given = vae.sample(500, given={"a": 1.0}, seed=1)  # later slots drawn given the value
    assert (given["a"] == 1.0).all() and abs(given["b"].mean() - 1.0) < 0.5
    # an earlier slot given a later one follows the model's own joint (its rows with b near
    # 1: a's mean 0.66 here); drawn from z alone it would be the marginal's, near 0
    before = vae.sample(1000, given={"b": 1.0}, seed=4)
    joint = vae.sample(20_000, seed=5)
    near = joint.loc[(joint["b"] - 1.0).abs() < 0.1, "a"]
    assert near.mean() > 0.4 and abs(before["a"].mean() - near.mean()) < 0.2
    ranged = vae.sample(300, given={"g": "p", "a": (0.0, 1.0)}, seed=2)
    assert ranged["a"].between(0.0, 1.0).all() and (ranged["g"] == "p").all()
    # b follows the ranged a: rows with g = p have b near 2 on average (measured 1.26 here)
    assert ranged["b"].mean() < 1.5
    vae.save(tmp_path / "m")
    again = ppvae.load(tmp_path / "m")
    pd.testing.assert_frame_equal(again.sample(100, seed=3), vae.sample(100, seed=3))


def test_a_model_saved_without_the_chain_loads_into_one_unchanged(tmp_path):
    df = linked_table(200)
    plain = ppvae.TabularVAE(
        epochs=2,
        verbose=False,
        seed=0,
        hidden=(8,),
        prior="standard_normal",
        model={"name": "tabular", "chain_continuous": False},
    ).fit(df)
    module = ppvae.TabularVAE(
        prior="standard_normal",
        epochs=2,
        verbose=False,
        seed=0,
        hidden=(8,),
        model={"name": "tabular", "chain_continuous": True},
    )._build_module(plain.layout_)
    module.load_state_dict(plain.model_.state_dict())
    chain = next(g for g in module.slot_groups if g.name == "x_cont").chain
    for readout in (chain.loc_readout, chain.scale_readout):
        assert readout.abs().sum() == 0


def test_chained_continuous_slots_need_the_normal_family():
    with pytest.raises(ValueError, match="likelihood='normal'"):
        ppvae.TabularVAE(
            likelihood="laplace",
            model={"name": "tabular", "chain_continuous": True},
            epochs=1,
            verbose=False,
        ).fit(linked_table(50))


def test_auto_chains_the_normal_family_only_and_bad_values_are_refused():
    df = linked_table(50)
    for likelihood, chained_slots in (("normal", True), ("laplace", False)):
        vae = ppvae.TabularVAE(likelihood=likelihood, epochs=1, verbose=False).fit(df)
        group = next(g for g in vae.model_.slot_groups if g.name == "x_cont")
        assert (group.chain is not None) is chained_slots
    for model in ({"chain_continuous": "yes"}, {"chain_continuous": True, "chain_rank": 0}):
        with pytest.raises(ValueError, match="chain_continuous"):
            ppvae.TabularVAE(model={"name": "tabular", **model}, epochs=1, verbose=False).fit(df)
