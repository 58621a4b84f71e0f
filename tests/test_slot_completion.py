"""Hidden slots of chained sites completed by sequential importance sampling
(ppvae.slot_completion): the weighted completions against the exact conditionals."""

import itertools

import numpy as np
import pandas as pd
import pyro
import torch
from pyro import poutine

import ppvae
from ppvae.chained_categories import ChainedCategoricalColumns, LevelChain
from ppvae.chained_continuous import ChainedContinuousColumns, SlotChain
from ppvae.likelihoods import CategoricalGroups
from ppvae.partial_rows import from_frame
from ppvae.slot_completion import SlotCompletion

N = 200_000


def weighted(values: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    return (torch.softmax(log_w, 0) * values).sum()


@torch.no_grad()
def test_levels_before_a_fixed_one_follow_their_exact_conditional():
    cardinalities = (3, 2, 4)
    chain = LevelChain(cardinalities, rank=3)
    chain.readout.normal_(0, 2.0)
    logits = torch.randn(sum(cardinalities))
    fn = ChainedCategoricalColumns(logits, CategoricalGroups(cardinalities), chain)
    # slot 1 fixed at level 1: slots 0 and 2 hidden, slot 0 before it, slot 2 after it
    joint = torch.zeros(cardinalities)
    for levels in itertools.product(*map(range, cardinalities)):
        joint[levels] = fn.log_prob(torch.tensor(levels)).exp()
    given = joint[:, 1, :]
    value = torch.zeros(N, 3, dtype=torch.long)
    value[:, 1] = 1
    fixed = torch.tensor([False, True, False]).expand(N, 3)
    done, log_w = fn.expand((N,)).complete(value, fixed)
    torch.testing.assert_close(fn.expand((N,)).log_weight(done, fixed), log_w)  # one pass
    assert (done[:, 1] == 1).all()
    # E_q[w] = p(x_1 = 1): the weight is unbiased for the fixed slot's marginal
    assert abs(float(log_w.exp().mean()) - float(given.sum())) < 0.01
    for slot, exact in ((0, given.sum(1)), (2, given.sum(0))):
        exact = exact / exact.sum()
        for level in range(len(exact)):
            share = weighted((done[:, slot] == level).double(), log_w.double())
            assert abs(float(share) - float(exact[level])) < 0.01, (slot, level)


@torch.no_grad()
def test_a_slot_before_a_fixed_one_and_a_range_follow_their_exact_conditional():
    chain = SlotChain(2, (), rank=2)
    chain.loc_readout.normal_(0, 1.5)
    chain.scale_readout.normal_(0, 0.3)
    chain.logit_readout.normal_()  # a slot's mixture weights move with the slots before it
    chain.loc_offset.normal_()
    loc, raw_scale = torch.tensor([0.3, -0.2]), torch.tensor([0.5, -0.5])
    fn = ChainedContinuousColumns(loc, raw_scale, chain, torch.zeros(2))
    c, lo, hi = 0.4, -0.5, 1.0  # y_1 fixed at c; y_0 hidden, ranged to [lo, hi]
    grid = torch.linspace(-8, 8, 16_001, dtype=torch.float64)
    rows = torch.stack([grid, torch.full_like(grid, c)], -1).float()
    density = fn.expand((len(grid),)).log_prob(rows).double().exp()  # p(y_0) p(c | y_0)
    step = float(grid[1] - grid[0])
    value = torch.zeros(N, 2)
    value[:, 1] = c
    fixed = torch.tensor([False, True]).expand(N, 2)
    for ranges, inside in (
        ({}, torch.ones_like(grid, dtype=torch.bool)),
        ({0: (lo, hi)}, (grid >= lo) & (grid <= hi)),
    ):
        done, log_w = fn.expand((N,)).complete(value, fixed, ranges)
        torch.testing.assert_close(fn.expand((N,)).log_weight(done, fixed, ranges), log_w)
        bounds = ranges.get(0, (-10.0, 10.0))
        assert (done[:, 1] == c).all() and (
            (done[:, 0] >= bounds[0]) & (done[:, 0] <= bounds[1])
        ).all()
        mass = float(density[inside].sum()) * step  # p(y_1 = c, y_0 in range)
        assert abs(float(log_w.double().exp().mean()) / mass - 1) < 0.02
        exact_mean = float((grid * density)[inside].sum()) * step / mass
        assert abs(float(weighted(done[:, 0].double(), log_w.double())) - exact_mean) < 0.01


def test_a_complete_row_is_left_as_it_is_with_its_weight_unchanged():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {
            "a": rng.choice(["p", "q"], n),
            "b": rng.choice(["u", "v", "w"], n),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )
    vae = ppvae.TabularVAE(
        model={"name": "tabular", "chain_rank": 4, "chain_continuous": True},
        epochs=2,
        verbose=False,
        seed=0,
        prior="standard_normal",
    ).fit(df)
    chains = {g.name: g.chain for g in vae.model_.slot_groups}
    with torch.no_grad():  # links as strong as a trained model's (two epochs learn few)
        chains["x_cat"].readout.normal_()
        chains["x_cont"].loc_readout.normal_()
    for frame, changed in ((df.head(5), False), (df.head(5).assign(a=np.nan, x=np.nan), True)):
        table = from_frame(vae, frame).table
        trace = poutine.trace(vae.model_.model).get_trace(table)
        trace.compute_log_prob()
        done, change = SlotCompletion()(trace)
        assert set(done) == {"x_cat", "x_cont"}
        for site, value in done.items():
            mask = table.mask(site)
            torch.testing.assert_close(value[mask], table[site][mask].to(value.dtype))
        if changed:  # hidden cells before given ones: the sequential weight differs
            assert bool((change.abs() > 1e-3).all())
        else:  # nothing hidden: the trace's own density
            torch.testing.assert_close(change, torch.zeros_like(change), atol=1e-4, rtol=0)


@torch.no_grad()
def test_refreshed_completions_keep_the_exact_conditional_and_become_distinct():
    cardinalities = (3, 2, 4)
    chain = LevelChain(cardinalities, rank=3)
    chain.readout.normal_(0, 2.0)
    logits = torch.randn(sum(cardinalities))
    n = 20_000
    fixed = torch.tensor([False, True, False]).expand(n, 3)
    groups = CategoricalGroups(cardinalities)
    fn = ChainedCategoricalColumns(logits.expand(n, -1), groups, chain, fixed)
    value = torch.zeros(n, 3, dtype=torch.long)
    value[:, 1] = 1
    trace = poutine.trace(lambda: pyro.sample("x_cat", fn, obs=value)).get_trace()
    joint = torch.zeros(cardinalities)
    for levels in itertools.product(*map(range, cardinalities)):
        plain = ChainedCategoricalColumns(logits, groups, chain)
        joint[levels] = plain.log_prob(torch.tensor(levels)).exp()
    exact = joint[:, 1, :].sum(1) / joint[:, 1, :].sum()
    completion = SlotCompletion()
    current = {"x_cat": torch.tensor([2, 1, 3]).expand(n, 3)}  # every line one copy
    for _ in range(30):
        current, accepted = completion.refresh(trace, current)
    assert bool((current["x_cat"][:, 1] == 1).all()) and 0.05 < float(accepted.float().mean())
    share = torch.bincount(current["x_cat"][:, 0], minlength=3).double() / n
    torch.testing.assert_close(share, exact.double(), atol=0.015, rtol=0)
