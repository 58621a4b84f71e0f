import pandas as pd
import pyro
import pytest
import torch

import ppvae
from ppvae.priors import AggregatePrior, Flow, StandardNormal, priors
from ppvae.priors.conformance import check_prior

FAST = dict(
    epochs=2, batch_size=200, hidden=(32,), latent_dim=3, verbose=False, missing_values=["?"]
)


@pytest.mark.parametrize("name", priors.names())
def test_every_registered_prior_conforms(name):
    check_prior(priors.get(name), num_draws=100_000)


class _OffsetNormal(pyro.distributions.Normal):
    def log_prob(self, value):
        return super().log_prob(value) + 0.1  # integrates to e^0.2 in 2-D


class _Unnormalised(StandardNormal):
    def forward(self):
        return _OffsetNormal(torch.zeros(self.latent_dim), 1.0).to_event(1)


class _WrongSampler(StandardNormal):
    def forward(self):
        d = super().forward()
        d.sample = lambda shape=(): 2 * torch.randn(*shape, self.latent_dim)
        return d


def test_conformance_catches_broken_priors():
    with pytest.raises(AssertionError, match="integrates to 1.22"):
        check_prior(_Unnormalised, num_draws=20_000)
    with pytest.raises(AssertionError, match="sample covariance"):
        check_prior(_WrongSampler, num_draws=20_000)


def fitted_with(prior, df):
    return ppvae.TabularVAE(**FAST, prior=prior).fit(df)


@pytest.mark.parametrize(
    "spec, attrs",
    [
        ({"name": "mixture", "components": 4}, ["loc", "log_scale", "logits"]),
        ({"name": "vamp", "components": 8}, ["pseudo_inputs"]),
    ],
)
def test_prior_parameters_move_during_training(adult_small, spec, attrs):
    from ppvae.model import TabularModel
    from ppvae.objectives import ELBO
    from ppvae.training import train

    tr = ppvae.TableTransformer(missing_values=["?"]).fit(adult_small)
    data = tr.transform(adult_small).with_features(tr.layout_)
    module = TabularModel(tr.layout_, latent_dim=3, hidden=(32,), prior=spec)
    if hasattr(module.prior, "init_from"):
        module.prior.init_from(data.features)
    before = {a: getattr(module.prior, a).detach().clone() for a in attrs}
    train(
        module,
        ELBO(),
        data,
        None,
        epochs=1,
        batch_size=200,
        lr=1e-2,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    for a in attrs:
        assert not torch.allclose(before[a], getattr(module.prior, a)), (
            f"{spec['name']}.{a} did not move"
        )
    assert not list(pyro.get_param_store().keys()), "parameters are the module's own"


def test_flow_parameters_are_trained(adult_small):
    prior = Flow(latent_dim=3, kind="affine_autoregressive", layers=2, hidden=16)
    vae = ppvae.TabularVAE(**{**FAST, "epochs": 1}, prior=prior)
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    vae.fit(adult_small)
    after = vae.model_.prior.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("transforms"))


def test_prior_built_without_latent_dim_takes_the_models():
    prior = Flow(kind="spline_coupling", layers=2)
    assert prior.latent_dim is None
    vae = ppvae.TabularVAE(**FAST, prior=prior)
    layout = ppvae.TableTransformer().fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]})).layout_
    module = vae._build_module(layout)
    assert module.prior.latent_dim == 3
    with pytest.raises(ValueError, match="built for latent_dim=5"):
        ppvae.TabularVAE(**FAST, prior=Flow(latent_dim=5))._build_module(layout)


def test_aggregate_fit_recovers_a_known_mixture():
    torch.manual_seed(0)
    centres = torch.tensor([[-3.0, 1.0], [2.0, -2.0]])
    z = centres[torch.randint(0, 2, (6000,))] + 0.5 * torch.randn(6000, 2)
    prior = AggregatePrior(latent_dim=2, components=2).fit(z)
    order = prior.means[:, 0].argsort()
    torch.testing.assert_close(prior.means[order], centres, atol=0.1, rtol=0)
    torch.testing.assert_close(prior.weights, torch.tensor([0.5, 0.5]), atol=0.03, rtol=0)


def test_refit_prior_aggregate_and_save_load(adult_small, tmp_path):
    vae = fitted_with("standard_normal", adult_small)
    with pytest.raises(ValueError, match="data=df"):
        vae.refit_prior("aggregate", components=5)
    vae.refit_prior("aggregate", data=adult_small, components=5)
    assert isinstance(vae.model_.prior, AggregatePrior) and bool(vae.model_.prior.fitted)
    synth = vae.sample(200, seed=0)
    loaded = ppvae.load(vae.save(tmp_path / "m"))
    assert isinstance(loaded.model_.prior, AggregatePrior)
    pd.testing.assert_frame_equal(loaded.sample(200, seed=0), synth)


@pytest.mark.parametrize("name", ["mixture", "vamp", "flow", "aggregate"])
def test_spec_file_and_python_object_give_the_same_model(name, adult_small):
    from ppvae.objectives import ELBO
    from ppvae.spec import load_spec

    spec = load_spec(name)
    a = ppvae.TabularVAE.from_spec(name, epochs=1, verbose=False)
    b = ppvae.TabularVAE(**{**spec, "epochs": 1, "verbose": False})
    table = ppvae.TableTransformer(missing_values=["?"]).fit(adult_small)
    layout = table.layout_
    data = table.transform(adult_small.head(64)).with_features(layout)
    losses, names = [], []
    for vae in (a, b):
        torch.manual_seed(0)
        module = vae._build_module(layout)
        names.append(sorted(module.state_dict()))
        torch.manual_seed(1)
        losses.append(ELBO().loss(module.model, module.guide, data))
    assert names[0] == names[1]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_saved_models_keep_their_prior(adult_small, tmp_path):
    for spec in (
        {"name": "mixture", "components": 3},
        {"name": "vamp", "components": 4},
        {"name": "flow", "layers": 1},
    ):
        vae = fitted_with(spec, adult_small)
        loaded = ppvae.load(vae.save(tmp_path / spec["name"]))
        pd.testing.assert_frame_equal(loaded.sample(100, seed=3), vae.sample(100, seed=3))


def test_aggregate_spec_is_fitted_after_training(adult_small):
    vae = ppvae.TabularVAE.from_spec("aggregate", **{**FAST, "latent_dim": 16})
    vae.fit(adult_small)
    prior = vae.model_.prior
    assert bool(prior.fitted) and not torch.allclose(prior.means, torch.zeros_like(prior.means))
