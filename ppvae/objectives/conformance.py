"""A shared check every registered objective must pass (as scikit-learn's ``check_estimator``).

    from ppvae.objectives.conformance import check_objective
    check_objective(MyObjective)

It runs the objective on a small linear-Gaussian model/guide pair written in plain Pyro
(:class:`LinearGaussian`, 1-D latent) and checks that

1. it is a :class:`pyro.infer.ELBO`; ``differentiable_loss`` is a finite scalar and
   ``loss_and_grads`` fills every parameter's gradient with finite values;
2. ``metrics`` is a dict of floats after a step (possibly empty); ``loss_and_grads`` leaves
   ``state_dict()`` unchanged (state changes only in ``after_step()``, which runs);
3. ``config()`` rebuilds an equal objective through the registry, and ``state_dict`` is
   JSON-able and round-trips;
4. :class:`pyro.infer.SVI` with ``loss=objective`` takes steps with finite losses and
   changes the parameters;
5. a discrete latent (:class:`DiscreteLatent`, a Bernoulli without ``rsample``) gets a
   finite, non-zero score-function gradient for its guide;
6. it is right without a closed-form KL: under a prior written as a one-component mixture
   (the same N(0, I), but no registered KL) the Monte Carlo mean of the loss equals its mean
   under the closed-form prior, within five standard errors. (The latent is 1-D so that
   objectives defined per latent dimension, such as free bits, mean the same under both.)
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import pyro.infer
import pyro.optim
import torch
from torch import nn

from ppvae.data.layout import TensorTable
from ppvae.objectives.base import Objective, objectives


class LinearGaussian(nn.Module):
    """x = W z + b + N(0, s^2 I) in 2-D, z ~ N(0, I) in ``latent_dim`` (1 or 2) dimensions,
    with an affine diagonal-Gaussian guide. ``mixture_prior``: the same N(0, I) prior written
    as a one-component ``MixtureSameFamily``, which has no closed-form KL."""

    def __init__(self, latent_dim: int = 1, mixture_prior: bool = False):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[1.0, 0.1], [-0.5, 0.05]])[:, :latent_dim])
        self.b = nn.Parameter(torch.zeros(2))
        self.log_s = nn.Parameter(torch.tensor(-0.5))
        self.enc = nn.Linear(2, 2 * latent_dim)
        self.latent_dim, self.mixture_prior = latent_dim, mixture_prior

    def prior(self) -> dist.Distribution:
        d = self.latent_dim
        if not self.mixture_prior:
            return dist.Normal(torch.zeros(d), torch.ones(d)).to_event(1)
        return dist.MixtureSameFamily(
            dist.Categorical(logits=torch.zeros(1)),
            dist.Normal(torch.zeros(1, d), torch.ones(1, d)).to_event(1),
        )

    def model(self, data: TensorTable | None = None, num_rows: int | None = None):
        pyro.module("lg", self)
        n = len(data) if data is not None else num_rows
        with pyro.plate("rows", n):
            z = pyro.sample("z", self.prior())
            loc = z @ self.w.T + self.b
            pyro.sample(
                "x_cont",
                dist.Normal(loc, self.log_s.exp()).to_event(1),
                obs=None if data is None else data.x_cont,
            )

    def guide(self, data: TensorTable | None = None, num_rows: int | None = None):
        pyro.module("lg", self)
        loc, raw = self.enc(data.x_cont).chunk(2, -1)
        with pyro.plate("rows", len(data)):
            pyro.sample("z", dist.Normal(loc, nn.functional.softplus(raw) + 1e-3).to_event(1))


class DiscreteLatent(nn.Module):
    """x ~ N(mu_z, I) in 2-D with a binary latent z ~ Bernoulli(sigmoid(a)); the guide is
    q(z | x) = Bernoulli(sigmoid(enc(x))): no ``rsample``, so only score-function gradients
    reach ``enc``."""

    def __init__(self):
        super().__init__()
        self.prior_logit = nn.Parameter(torch.tensor(0.3))
        self.mu = nn.Parameter(torch.tensor([[-1.0, -0.5], [1.0, 0.5]]))
        self.enc = nn.Linear(2, 1)

    def model(self, data: TensorTable | None = None, num_rows: int | None = None):
        pyro.module("dl", self)
        n = len(data) if data is not None else num_rows
        with pyro.plate("rows", n):
            z = pyro.sample("z", dist.Bernoulli(logits=self.prior_logit.expand(n)))
            pyro.sample(
                "x_cont",
                dist.Normal(self.mu[z.long()], 1.0).to_event(1),
                obs=None if data is None else data.x_cont,
            )

    def guide(self, data: TensorTable | None = None, num_rows: int | None = None):
        pyro.module("dl", self)
        with pyro.plate("rows", len(data)):
            pyro.sample("z", dist.Bernoulli(logits=self.enc(data.x_cont).squeeze(-1)))


def table(x: torch.Tensor) -> TensorTable:
    n = x.shape[0]
    return TensorTable(
        x_cont=x,
        cont_mask=torch.ones_like(x, dtype=torch.bool),
        x_cat=torch.zeros(n, 0, dtype=torch.long),
        cat_mask=torch.zeros(n, 0, dtype=torch.bool),
        x_miss=torch.zeros(n, 0),
    )


def sample_data(n: int = 64, seed: int = 0) -> TensorTable:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, generator=g)
    return table(z @ torch.tensor([[1.0, -0.5]]) + 0.6 * torch.randn(n, 2, generator=g))


def check_objective(factory: Callable[..., Objective], num_draws: int = 400) -> None:
    """Run the checks of the module docstring; raises AssertionError naming the failure.
    Runs in a scope of Pyro's param store, so the caller's parameters are left alone."""
    with pyro.get_param_store().scope():
        _check_objective(factory, num_draws)


def _check_objective(factory: Callable[..., Objective], num_draws: int) -> None:
    name = getattr(factory, "registry_name", getattr(factory, "__name__", "objective"))
    data = sample_data()
    torch.manual_seed(0)
    pair = LinearGaussian()
    objective = factory()
    assert isinstance(objective, pyro.infer.ELBO), f"{name}: an objective must be a pyro.infer.ELBO"
    objective.set_progress(5, 10)
    loss = objective.differentiable_loss(pair.model, pair.guide, data)
    assert loss.dim() == 0 and torch.isfinite(loss), (
        f"{name}: the loss must be a finite scalar, got {loss}"
    )
    state_before = json.dumps(objective.state_dict(), sort_keys=True)
    value = objective.loss_and_grads(pair.model, pair.guide, data)
    assert json.dumps(objective.state_dict(), sort_keys=True) == state_before, (
        f"{name}: loss_and_grads changed the objective's state; update it in after_step()"
    )
    assert isinstance(value, float), f"{name}: loss_and_grads must return a float"
    for pname, p in pair.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), (
            f"{name}: no finite gradient for {pname}"
        )
    assert isinstance(objective.metrics, dict) and all(
        isinstance(v, float) for v in objective.metrics.values()
    ), f"{name}: metrics must be a dict of floats"
    objective.after_step()

    rebuilt = objectives.build(objective.config())
    assert type(rebuilt) is type(objective) and rebuilt.config() == objective.config(), (
        f"{name}: config() does not round-trip"
    )
    state = json.loads(json.dumps(objective.state_dict()))
    rebuilt.load_state_dict(state)
    assert rebuilt.state_dict() == objective.state_dict(), f"{name}: state_dict does not round-trip"

    with pyro.get_param_store().scope():
        _check_svi(objectives.build(objective.config()), name, data)
    with pyro.get_param_store().scope():
        _check_discrete_latent(objectives.build(objective.config()), name, data)

    closed, mixture = LinearGaussian(), LinearGaussian(mixture_prior=True)
    mixture.load_state_dict(closed.state_dict())
    means = []
    for pair in (closed, mixture):
        obj = objectives.build(objective.config())
        obj.load_state_dict(state)
        obj.set_progress(5, 10)
        torch.manual_seed(1)
        with torch.no_grad():
            draws = torch.tensor(
                [
                    float(obj.differentiable_loss(pair.model, pair.guide, data))
                    for _ in range(num_draws)
                ]
            )
        means.append((draws.mean().item(), draws.std().item() / num_draws**0.5))
    (a, sa), (b, sb) = means
    assert abs(a - b) < 5 * (sa**2 + sb**2) ** 0.5 + 1e-4 * abs(a), (
        f"{name}: mean loss {b:.4f} without a closed-form KL differs from {a:.4f} with one"
    )


def _check_svi(objective: Objective, name: str, data: TensorTable, steps: int = 3) -> None:
    pair = LinearGaussian()
    before = {k: v.detach().clone() for k, v in pair.state_dict().items()}
    svi = pyro.infer.SVI(pair.model, pair.guide, pyro.optim.Adam({"lr": 0.05}), loss=objective)
    for step in range(steps):
        objective.set_progress(step, steps)
        loss = svi.step(data)
        objective.after_step()
        assert isinstance(loss, float) and torch.isfinite(torch.tensor(loss)), (
            f"{name}: SVI step {step} gave the loss {loss!r}"
        )
    changed = [k for k, v in pair.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, f"{name}: pyro.infer.SVI(..., loss=objective) did not change any parameter"


def _check_discrete_latent(objective: Objective, name: str, data: TensorTable) -> None:
    pair = DiscreteLatent()
    objective.set_progress(5, 10)
    objective.loss_and_grads(pair.model, pair.guide, data)
    grad = pair.enc.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, (
        f"{name}: a discrete latent's guide got no score-function gradient ({grad})"
    )
