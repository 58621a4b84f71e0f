"""The chained slots' mixture of Normals (ppvae.normal_mixture): truncated draws."""

import torch

from ppvae.normal_mixture import NormalMixture


def mixture(n: int) -> NormalMixture:
    logits = torch.tensor([0.0, 1.0]).expand(n, 2)
    loc = torch.tensor([-1.0, 2.0]).expand(n, 2)
    scale = torch.tensor([0.5, 1.0]).expand(n, 2)
    return NormalMixture(logits, loc, scale)


def test_truncated_draws_follow_the_truncated_density():
    torch.manual_seed(0)
    n, lo, hi = 200_000, -1.5, 1.0
    y = mixture(n).truncated_sample(lo, hi)
    assert float(y.min()) >= lo and float(y.max()) <= hi
    grid = torch.linspace(lo, hi, 20_001)
    density = mixture(len(grid)).log_prob(grid).exp()
    density = density / torch.trapezoid(density, grid)
    mean = float(torch.trapezoid(grid * density, grid))
    below = float(torch.trapezoid(density * (grid <= 0.0), grid))  # P(Y <= 0 | range)
    sd = float(y.std())
    assert abs(float(y.mean()) - mean) < 4 * sd / n**0.5
    assert abs(float((y <= 0.0).float().mean()) - below) < 4 * (below * (1 - below) / n) ** 0.5


def test_a_range_no_component_reaches_still_draws_inside_it():
    # in float32 every component's CDF is 1 above 9: no mass, the nearest component's edge
    y = mixture(10).truncated_sample(9.0, float("inf"))
    assert torch.all((y >= 9.0) & (y <= 10.0))  # the quantile transform's range ends at 10
