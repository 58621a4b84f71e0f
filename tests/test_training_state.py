"""The trainer holds no hidden global state: it optimises the module's own parameters plus
a user's ``pyro.param`` sites, never prunes Pyro's param store, and leaves Pyro validation
as the caller set it."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer.util import is_validation_enabled
from torch import nn

import ppvae
from ppvae.objectives import ELBO
from ppvae.objectives.conformance import LinearGaussian, sample_data
from ppvae.training import train


def fit(pair, data, **kwargs):
    return train(
        pair,
        ELBO(),
        data,
        None,
        epochs=3,
        batch_size=32,
        lr=0.05,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
        **kwargs,
    )


class LocalWithParam(LinearGaussian):
    """Module-local parameters (no pyro.module) plus one pyro.param site of its own."""

    def model(self, data=None, num_rows=None):
        noise = pyro.param("noise", torch.tensor(1.0), constraint=dist.constraints.positive)
        with pyro.plate("rows", len(data)):
            z = pyro.sample("z", self.prior())
            pyro.sample(
                "x_cont", dist.Normal(z @ self.w.T + self.b, noise).to_event(1), obs=data.x_cont
            )

    def guide(self, data=None, num_rows=None):
        loc, raw = self.enc(data.x_cont).chunk(2, -1)
        with pyro.plate("rows", len(data)):
            pyro.sample("z", dist.Normal(loc, nn.functional.softplus(raw) + 1e-3).to_event(1))


def test_trains_module_parameters_and_user_pyro_params():
    pair = LocalWithParam()
    before = {k: v.detach().clone() for k, v in pair.named_parameters()}
    fit(pair, sample_data(64))
    for name, value in pair.named_parameters():
        if name == "log_s":  # replaced by the pyro.param site "noise"
            continue
        assert not torch.equal(value.detach(), before[name]), f"{name} was not trained"
    assert pyro.param("noise").item() != pytest.approx(1.0)


def test_param_store_entries_of_the_caller_are_left_alone(adult_small):
    user_net = nn.Sequential()
    user_net.add_module("head", nn.Linear(3, 2))  # a parameter name ppvae's encoder also has
    pyro.module("encoder", user_net)  # the caller's own module, under a generic name
    pyro.param("user_scale", torch.ones(2))
    store = pyro.get_param_store()
    before = {k: (v, v.detach().clone()) for k, v in store.items()}
    ppvae.TabularVAE(
        epochs=1, batch_size=500, hidden=(16,), latent_dim=2, verbose=False, missing_values=["?"]
    ).fit(adult_small.head(600))
    after = dict(store.items())
    for name, (tensor, value) in before.items():
        assert name in after, f"ppvae deleted the caller's param {name!r}"
        assert after[name] is tensor and torch.equal(after[name].detach(), value)


class ValidationProbe(LinearGaussian):
    def __init__(self):
        super().__init__()
        self.seen = []

    def model(self, data=None, num_rows=None):
        self.seen.append(is_validation_enabled())
        return super().model(data, num_rows)


def test_pyro_validation_switch_for_training(monkeypatch):
    """Off during training by default (for speed, bench/speed.py); on with
    PPVAE_PYRO_VALIDATION=1 or validate=True; the global setting is restored after."""
    data = sample_data(64)
    monkeypatch.delenv("PPVAE_PYRO_VALIDATION", raising=False)
    default = ValidationProbe()
    fit(default, data)
    assert default.seen[1:] and not any(default.seen[1:])  # [0]: the parameter discovery
    assert is_validation_enabled()
    on = ValidationProbe()
    fit(on, data, validate=True)
    assert on.seen and all(on.seen)
    monkeypatch.setenv("PPVAE_PYRO_VALIDATION", "1")
    env = ValidationProbe()
    with pyro.validation_enabled(False):
        fit(env, data)
        assert not is_validation_enabled()
    assert env.seen[1:] and all(env.seen[1:])
