import math

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae
from ppvae.evaluation import importance_log_likelihood
from ppvae.objectives import ELBO, GECO, FreeBits, elbo_terms, kl_weight, objectives
from ppvae.objectives.conformance import LinearGaussian, check_objective, sample_data
from ppvae.training import train


@pytest.mark.parametrize("name", objectives.names())
def test_every_registered_objective_conforms(name):
    check_objective(objectives.get(name))


class ExactPosterior(LinearGaussian):
    """The linear-Gaussian pair with the guide set to the exact posterior p(z | x)."""

    def guide(self, data=None, num_rows=None):
        import pyro
        import pyro.distributions as dist

        w, s2 = self.w.detach(), self.log_s.exp().detach() ** 2
        precision = 1 + (w.T @ w) / s2
        var = 1 / precision
        loc = ((data.x_cont - self.b.detach()) @ w) / s2 * var
        with pyro.plate("rows", len(data)):
            pyro.sample("z", dist.Normal(loc, var.sqrt().expand_as(loc)).to_event(1))


def exact_log_marginal(pair, data):
    w, b, s2 = pair.w.detach(), pair.b.detach(), pair.log_s.exp().detach() ** 2
    cov = w @ w.T + s2 * torch.eye(2)
    return torch.distributions.MultivariateNormal(b, cov).log_prob(data.x_cont)


def test_elbo_is_exact_at_the_true_posterior():
    pair, data = ExactPosterior(), sample_data(32)
    truth = exact_log_marginal(pair, data)
    terms = elbo_terms(pair.model, pair.guide, data, analytic_kl=False)
    torch.testing.assert_close(terms.recon - terms.kl, truth, atol=1e-4, rtol=0)  # every draw
    for k in (1, 7):
        torch.testing.assert_close(
            importance_log_likelihood(pair.model, pair.guide, data, num_particles=k),
            truth,
            atol=1e-4,
            rtol=0,
        )


def test_elbo_matches_pyro_trace_elbo_in_expectation():
    from pyro.infer import Trace_ELBO

    pair, data = LinearGaussian(), sample_data(32)
    torch.manual_seed(0)
    ours = np.mean([ELBO().loss(pair.model, pair.guide, data) for _ in range(300)])
    pyros = np.mean([Trace_ELBO().loss(pair.model, pair.guide, data) for _ in range(300)])
    assert abs(ours - pyros) < 0.02 * abs(pyros)


def test_analytic_kl_choice_is_visible():
    pair, data = LinearGaussian(), sample_data(8)
    assert elbo_terms(pair.model, pair.guide, data).analytic == {"z": True}
    mix = LinearGaussian(mixture_prior=True)
    assert elbo_terms(mix.model, mix.guide, data).analytic == {"z": False}


@pytest.mark.parametrize(
    "kwargs, steps, expected",
    [
        ({"schedule": "linear", "warmup_fraction": 0.5}, [0, 25, 50, 99], [0.0, 0.5, 1.0, 1.0]),
        (
            {"schedule": "cyclical", "cycles": 4, "ratio": 0.5},
            [0, 6, 12, 25, 31, 37, 50],
            [0.0, 0.48, 0.96, 0.0, 0.48, 0.96, 0.0],
        ),
        (
            {"schedule": "cyclical", "cycles": 2, "ratio": 1.0, "beta_max": 2.0},
            [0, 25, 49, 50],
            [0.0, 1.0, 1.96, 0.0],
        ),
    ],
)
def test_annealing_schedule_values(kwargs, steps, expected):
    got = [kl_weight(s, 100, **kwargs) for s in steps]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_anneal_applies_its_weight_via_site_scaling():
    pair, data = LinearGaussian(), sample_data(16)
    anneal = objectives.build({"name": "anneal", "schedule": "linear", "warmup_fraction": 0.5})
    for step, weight in ((0, 0.0), (25, 0.5), (80, 1.0)):
        anneal.set_progress(step, 100)
        torch.manual_seed(3)
        loss = anneal.differentiable_loss(pair.model, pair.guide, data)
        torch.manual_seed(3)
        terms = elbo_terms(pair.model, pair.guide, data)
        torch.testing.assert_close(loss, -(terms.recon.sum() - weight * terms.kl.sum()))
        assert anneal.metrics["beta"] == weight


def fit_small(objective, data, epochs=30, latent=(1,)):
    pair = LinearGaussian()
    result = train(
        pair,
        objective,
        data,
        None,
        epochs=epochs,
        batch_size=64,
        lr=0.02,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    return pair, result


def test_beta_zero_is_an_autoencoder_with_better_reconstruction():
    data = sample_data(512)
    _, ae = fit_small(objectives.build({"name": "beta", "beta": 0.0}), data)
    _, vae = fit_small(objectives.build({"name": "beta", "beta": 1.0}), data)
    tail = slice(-40, None)
    assert ae.steps["recon"].iloc[tail].mean() < vae.steps["recon"].iloc[tail].mean() - 0.2
    assert ae.steps["kl"].iloc[tail].mean() > vae.steps["kl"].iloc[tail].mean()


def test_free_bits_floor_stops_kl_gradient():
    """With the floor above every dimension's KL, the encoder gets only the reconstruction
    gradient: the same as with the KL weighted by zero."""
    from ppvae.objectives.scaling import scale_latents

    data = sample_data(64)
    floored, plain = LinearGaussian(), LinearGaussian()
    plain.load_state_dict(floored.state_dict())
    objective = FreeBits(nats_per_dim=100.0)
    torch.manual_seed(0)
    objective.loss_and_grads(floored.model, floored.guide, data)
    torch.manual_seed(0)
    (
        -elbo_terms(scale_latents(plain.model, 0.0), scale_latents(plain.guide, 0.0), data).elbo()
    ).backward()
    torch.testing.assert_close(floored.enc.weight.grad, plain.enc.weight.grad)
    assert objective.metrics["dims_below_floor"] == 1.0
    # below the floor nothing changes; above it, the KL gradient is back
    objective = FreeBits(nats_per_dim=0.0)
    floored.zero_grad()
    torch.manual_seed(0)
    objective.loss_and_grads(floored.model, floored.guide, data)
    assert not torch.allclose(floored.enc.weight.grad, plain.enc.weight.grad)


def test_free_bits_keeps_dimensions_above_the_floor():
    data = sample_data(512)
    floor = 0.6
    pair, result = fit_small(FreeBits(nats_per_dim=floor), data, epochs=40)
    terms = elbo_terms(pair.model, pair.guide, data, keep_per_dim=True)
    assert terms.kl_per_dim["z"].mean(0).min() > floor - 0.1


@pytest.fixture(scope="module")
def shoppers_numeric():
    df = ppvae.datasets.load("shoppers")
    return df.select_dtypes("number").sample(2000, random_state=0).reset_index(drop=True)


def test_geco_meets_its_tolerance_and_moves_lambda(shoppers_numeric):
    """On 2,000 real rows: lambda rises while C > tolerance, falls when met; C ends within 5%."""
    tr = ppvae.TableTransformer().fit(shoppers_numeric)
    data = tr.transform(shoppers_numeric).with_features(tr.layout_)
    from ppvae.model import TabularModel

    module = TabularModel(tr.layout_, latent_dim=8, hidden=(64,))
    geco = GECO(tolerance="auto", alpha=0.95, lambda_lr=0.01, warmup_fraction=0.2)
    result = train(
        module,
        geco,
        data,
        None,
        epochs=40,
        batch_size=200,
        lr=3e-3,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    steps = result.steps.dropna(subset=["constraint"])
    assert geco.tolerance is not None and len(steps) > 100
    lam, c = steps["lambda"].to_numpy(), steps["constraint"].to_numpy()
    rising = np.diff(lam)[c[1:] > 0]
    falling = np.diff(lam)[c[1:] < 0]
    assert (rising >= 0).all() and (falling <= 0).all()
    assert rising.size and falling.size
    assert geco.c_ma <= geco.tolerance * 1.05
    json_state = geco.state_dict()
    assert set(json_state) == {"lambda", "c_ma", "tolerance", "recent"}


def test_geco_state_is_saved_with_the_model(adult_small, tmp_path):
    vae = ppvae.TabularVAE(
        epochs=2,
        batch_size=200,
        hidden=(32,),
        latent_dim=3,
        verbose=False,
        missing_values=["?"],
        objective={"name": "geco", "warmup_fraction": 0.2},
    )
    vae.fit(adult_small)
    loaded = ppvae.load(vae.save(tmp_path / "m"))
    assert loaded.objective_.state_dict() == vae.objective_.state_dict()
    assert "lambda" in vae.step_history_.columns


def test_iw_log_likelihood_bounds_the_elbo_and_tightens():
    data = sample_data(256)
    pair = LinearGaussian()  # an untrained guide: far from the posterior, so the gaps show
    torch.manual_seed(0)

    def mean_estimate(k, reps):
        return np.mean(
            [
                importance_log_likelihood(pair.model, pair.guide, data, num_particles=k)
                .mean()
                .item()
                for _ in range(reps)
            ]
        )

    means = [mean_estimate(1, 200), mean_estimate(10, 40), mean_estimate(100, 10)]
    elbo = -np.mean([ELBO().loss(pair.model, pair.guide, data) for _ in range(200)]) / len(data)
    assert means[0] == pytest.approx(elbo, abs=0.15)  # K = 1 is the ELBO
    assert means[0] < means[1] < means[2] <= exact_log_marginal(pair, data).mean().item() + 0.01


def test_vae_log_likelihood_on_real_rows(adult_small):
    vae = ppvae.TabularVAE(
        epochs=2, batch_size=200, hidden=(32,), latent_dim=3, verbose=False, missing_values=["?"]
    ).fit(adult_small)
    ll10 = vae.log_likelihood(adult_small.head(100), num_particles=10)
    ll1 = vae.log_likelihood(adult_small.head(100), num_particles=1)
    assert ll10.shape == (100,) and np.isfinite(ll10).all()
    assert ll10.mean() > ll1.mean()
    with pytest.raises(ValueError, match="num_particles must be a positive integer"):
        vae.log_likelihood(adult_small.head(3), num_particles=0)


@pytest.mark.parametrize("spec", ["beta", "anneal", "free_bits", "geco", "iwae"])
def test_shipped_objective_specs_fit(spec, adult_small):
    vae = ppvae.TabularVAE.from_spec(
        spec, epochs=1, batch_size=500, hidden=(32,), verbose=False, missing_values=["?"]
    )
    vae.fit(adult_small)
    assert math.isfinite(vae.history_["val_loss"].iloc[-1])
    assert isinstance(vae.sample(10, seed=0), pd.DataFrame)


@pytest.mark.parametrize(
    "spec, first_settled_step",
    [
        ({"name": "anneal", "schedule": "linear", "warmup_fraction": 0.3}, 30),
        ({"name": "anneal", "schedule": "cyclical", "cycles": 4, "ratio": 0.5}, 88),
        ({"name": "beta", "beta": 2.0}, 0),
    ],
)
def test_settled_from_the_last_rise_of_the_schedule(spec, first_settled_step):
    objective = objectives.build(spec)
    settled = []
    for step in range(100):
        objective.set_progress(step, 100)
        settled.append(objective.settled)
    assert settled.index(True) == first_settled_step and all(settled[first_settled_step:])


def test_early_stopping_waits_for_a_settled_objective():
    """patience=1 would stop a plain ELBO fit early; a linear warm-up over the whole run
    keeps it going to the last epoch, and the validation objective is logged."""
    data, val = sample_data(256), sample_data(64)

    def fit(objective):
        return train(
            LinearGaussian(),
            objective,
            data,
            val,
            epochs=12,
            batch_size=64,
            lr=0.5,
            patience=1,
            generator=torch.Generator().manual_seed(0),
            verbose=False,
        )

    assert len(fit(objectives.build("elbo")).history) < 12
    annealed = fit(
        objectives.build({"name": "anneal", "schedule": "linear", "warmup_fraction": 1.0})
    )
    assert len(annealed.history) == 12
    assert {"val_loss", "val_objective"} <= set(annealed.history.columns)


def test_geco_is_settled_only_when_its_constraint_is_met():
    geco = objectives.build({"name": "geco", "tolerance": 10.0})
    assert not geco.settled  # no moving average yet
    geco.c_ma = 10.1
    assert geco.settled  # within 2 %
    geco.c_ma = 11.0
    assert not geco.settled
