"""A shared check every registered prior must pass, in the spirit of scikit-learn's
``check_estimator``. Run it on your own prior::

    from ppvae.priors.conformance import check_prior
    check_prior(MyPrior)          # raises AssertionError naming the failed property

It builds the prior in 2-D at its random initialisation (bound to a tiny stand-in model, so
priors that use the encoder work too; priors with ``fit`` are fitted to a two-cluster
sample first), and checks:

1. shapes: ``forward()`` has ``batch_shape == ()`` and ``event_shape == (2,)``;
2. normalisation: :math:`\\int p(z)\\,dz`, by the midpoint rule on a fine grid over
   ``[-10, 10]^2``, is 1 within 0.02;
3. samples agree with ``log_prob``: the mean and covariance of ``num_draws`` prior samples
   match the moments of the density ``exp(log_prob)`` on that grid (tolerance 0.05 plus
   five Monte Carlo standard errors);
4. ``config()`` rebuilds the prior through the registry, and ``state_dict`` round-trips to
   the same ``log_prob``;
5. every parameter is finite.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import nn

from ppvae.networks import Encoder
from ppvae.priors.base import Prior, priors

DIM = 2
INPUT_DIM = 5
GRID_HALF_WIDTH = 10.0
GRID_POINTS = 1000


def stand_in_model(latent_dim: int = DIM) -> nn.Module:
    """The smallest thing a prior can bind to: an encoder, a layout and a latent size."""
    model = nn.Module()
    model.encoder = Encoder(INPUT_DIM, (8,), latent_dim)
    model.layout = SimpleNamespace(input_dim=INPUT_DIM)
    model.latent_dim = latent_dim
    return model


def build_for_check(factory: Callable[..., Prior], seed: int = 0) -> tuple[Prior, nn.Module]:
    torch.manual_seed(seed)
    prior = factory(latent_dim=DIM)
    model = stand_in_model()
    prior.bind(model)
    model.prior = prior
    if hasattr(prior, "fit"):  # a prior fitted to data: fit it to a two-cluster sample
        centres = torch.tensor([[-1.5, 0.5], [1.5, -0.5]])
        prior.fit(centres[torch.randint(0, 2, (4000,))] + 0.6 * torch.randn(4000, DIM))
    return prior, model


@torch.no_grad()
def check_prior(factory: Callable[..., Prior], num_draws: int = 200_000, seed: int = 0) -> None:
    """Assert the properties listed in the module docstring for ``factory`` (a class or a
    function taking ``latent_dim=``)."""
    prior, _ = build_for_check(factory, seed)
    name = getattr(factory, "registry_name", getattr(factory, "__name__", "prior"))
    d = prior()
    assert d.batch_shape == torch.Size(), (
        f"{name}: batch_shape must be (), got {tuple(d.batch_shape)}"
    )
    assert d.event_shape == torch.Size([DIM]), (
        f"{name}: event_shape must be ({DIM},), got {tuple(d.event_shape)}"
    )
    for pname, p in list(prior.named_parameters()) + list(prior.named_buffers()):
        if p.is_floating_point():
            assert torch.isfinite(p).all(), f"{name}: parameter {pname} is not finite"

    torch.manual_seed(seed + 1)
    samples = d.sample((num_draws,))
    assert samples.shape == (num_draws, DIM), f"{name}: sample((n,)) must have shape (n, {DIM})"
    lp = d.log_prob(samples[:10])
    assert lp.shape == (10,) and torch.isfinite(lp).all(), (
        f"{name}: log_prob must be finite with shape (n,)"
    )

    step = 2 * GRID_HALF_WIDTH / GRID_POINTS
    axis = torch.linspace(-GRID_HALF_WIDTH + step / 2, GRID_HALF_WIDTH - step / 2, GRID_POINTS)
    grid = torch.cartesian_prod(axis, axis)
    density = torch.cat([d.log_prob(chunk).exp() for chunk in grid.split(100_000)]) * step**2
    total = density.sum().item()
    assert abs(total - 1.0) < 0.02, f"{name}: log_prob integrates to {total:.4f}, not 1"

    g_mean = (density[:, None] * grid).sum(0) / total
    centred = grid - g_mean
    g_cov = (density[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(0) / total
    s_mean, s_cov = samples.mean(0), torch.cov(samples.T)
    se = (torch.diagonal(s_cov).sqrt().max() / num_draws**0.5).item()
    tol = 0.05 + 5 * se
    assert (s_mean - g_mean).abs().max() < tol, (
        f"{name}: sample mean {s_mean.tolist()} disagrees with log_prob's {g_mean.tolist()}"
    )
    assert (s_cov - g_cov).abs().max() < 2 * tol * max(1.0, torch.diagonal(s_cov).max().item()), (
        f"{name}: sample covariance {s_cov.tolist()} disagrees with log_prob's {g_cov.tolist()}"
    )

    rebuilt = priors.build(prior.config(), latent_dim=DIM)
    rebuilt.bind(stand_in_model())
    if hasattr(prior, "_encoder") and prior._encoder:
        rebuilt._encoder[:] = prior._encoder
    rebuilt.load_state_dict(prior.state_dict())
    torch.testing.assert_close(
        rebuilt().log_prob(samples[:100]),
        d.log_prob(samples[:100]),
        msg=f"{name}: config()/state_dict round trip changed log_prob",
    )
