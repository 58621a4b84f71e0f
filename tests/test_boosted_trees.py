"""The detector's boosted oblivious trees: exact bookkeeping, and convergence to a known log
density ratio."""

from __future__ import annotations

import math

import torch

from ppvae.boosted_trees import ObliviousTrees, fit_trees, quantile_thresholds


def test_untrained_trees_return_the_bias_and_fitting_starts_from_the_log_odds():
    x = torch.randn(40, 3)
    assert torch.equal(ObliviousTrees(5, 2)(x), torch.zeros(40))
    y = (torch.arange(40) < 10).float()  # a quarter positive
    model = fit_trees(x, y, trees=4, depth=2, grow=0)
    assert math.isclose(float(model.bias), math.log(0.25 / 0.75), rel_tol=1e-6)
    assert model.grown == 0 and torch.allclose(model(x), model.bias.expand(40))


def test_thresholds_fall_between_distinct_values():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [3.0, 1.0]])
    cuts = quantile_thresholds(x, bins=4)
    assert cuts[0, :2].tolist() == [0.5, 2.0] and torch.isinf(cuts[0, 2])
    assert torch.isinf(cuts[1]).all()  # a constant column offers no split


def test_one_split_separates_a_separable_feature_with_newton_leaves():
    """One tree of depth one on x > 0.5: each leaf holds the Newton step -lr G / (H + l2)
    from the bias (here 0: balanced classes, p = 1/2, g = p - y, h = 1/4)."""
    x = torch.tensor([[0.0, 7.0], [0.0, 3.0], [1.0, 5.0], [1.0, 4.0]])
    y = torch.tensor([0.0, 0.0, 1.0, 1.0])
    model = fit_trees(x, y, trees=1, depth=1, learning_rate=1.0, l2=0.5)
    assert model.features[0, 0] == 0 and model.thresholds[0, 0] == 0.5
    # left leaf: G = 2 * 0.5 = 1, H = 2 * 0.25 = 0.5 -> -1 / (0.5 + 0.5) = -1
    assert torch.allclose(model.leaves[0], torch.tensor([-1.0, 1.0]))
    assert torch.allclose(model(x), torch.tensor([-1.0, -1.0, 1.0, 1.0]))


def test_logit_converges_to_the_log_density_ratio():
    """Real N(0, 1) against synthetic N(1, 1), balanced: the Bayes logit of "synthetic" is
    log N(x; 1, 1) / N(x; 0, 1) = x - 1/2. On [-1, 2] (most of the mass) within 0.1 on
    average and 0.3 everywhere (a step function of 31 quantile thresholds)."""
    g = torch.Generator().manual_seed(0)
    n = 20_000
    x = torch.cat([torch.randn(n, 1, generator=g), 1 + torch.randn(n, 1, generator=g)])
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    order = torch.randperm(2 * n, generator=g)
    held, kept = order[: n // 2], order[n // 2 :]
    model = fit_trees(x[kept], y[kept], learning_rate=0.1, validation=(x[held], y[held]))
    assert model.grown > 0
    grid = torch.linspace(-1, 2, 31)[:, None]
    error = (model(grid) - (grid[:, 0] - 0.5)).abs()
    assert error.mean() < 0.1 and error.max() < 0.3


def test_almost_no_tree_is_kept_when_the_labels_are_noise():
    """With labels independent of x, a tree beats the bias on held-out rows only by chance:
    a handful of the 300 are kept (a real difference keeps hundreds, as above), and they move
    no logit by more than 1 (a density ratio within e)."""
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(4000, 3, generator=g)
        y = (torch.rand(4000, generator=g) < 0.5).float()
        model = fit_trees(x[:3000], y[:3000], validation=(x[3000:], y[3000:]))
        assert model.grown <= 10
        assert (model(x[3000:]) - model.bias).abs().max() < 1


def test_state_dict_round_trip_keeps_the_shape_and_the_logits():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(500, 4, generator=g)
    y = (x[:, 0] + 0.3 * torch.randn(500, generator=g) > 0).float()
    model = fit_trees(x, y, trees=7, depth=3)
    state = {f"detector.{k}": v for k, v in model.state_dict().items()}
    copy = ObliviousTrees.from_state_dict(state, "detector.")
    assert copy.features.shape == (7, 3) and torch.equal(copy(x), model(x))
