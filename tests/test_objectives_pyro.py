"""Objectives are Pyro ELBOs: exact agreement with ``Trace_ELBO`` (continuous and discrete
latents), any ``pyro.infer.ELBO`` accepted, per-fit clones, GECO's explicit hook."""

import pyro
import pyro.infer
import pytest
import torch

import ppvae
from ppvae.objectives import ELBO, GECO, IWAE, PyroELBO, objectives
from ppvae.objectives.conformance import DiscreteLatent, LinearGaussian, sample_data


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def grads_of(objective, pair, data, seed=0):
    pair.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = objective.loss_and_grads(pair.model, pair.guide, data)
    return loss, {k: p.grad.clone() for k, p in pair.named_parameters()}


@pytest.mark.parametrize("pair_type", [LinearGaussian, DiscreteLatent])
def test_plain_objective_equals_trace_elbo_in_loss_and_gradients(pair_type, float64):
    """Under one seed: the same guide draw, so the same loss and the same surrogate
    gradient, score-function terms of the discrete latent included."""
    pair, data = pair_type(), sample_data(64)
    ours, our_grads = grads_of(ELBO(analytic_kl=False), pair, data)
    theirs, their_grads = grads_of(pyro.infer.Trace_ELBO(), pair, data)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-6)
    for name, grad in their_grads.items():
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-6, atol=1e-6)
    if pair_type is DiscreteLatent:  # the guide is trained by the score function alone
        assert our_grads["enc.weight"].abs().sum() > 0


def test_analytic_kl_equals_trace_mean_field_elbo(float64):
    pair, data = LinearGaussian(), sample_data(64)
    ours, our_grads = grads_of(ELBO(), pair, data)
    theirs, their_grads = grads_of(pyro.infer.TraceMeanField_ELBO(), pair, data)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-6)
    for name, grad in their_grads.items():
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-6, atol=1e-6)


def test_beta_is_the_elbo_with_scaled_latent_sites(float64):
    """beta is Pyro's poutine.scale on the latent sites: Trace_ELBO of the scaled pair."""
    from ppvae.objectives.scaling import scale_latents

    pair, data = DiscreteLatent(), sample_data(64)
    beta = objectives.build({"name": "beta", "beta": 0.3})
    beta.analytic_kl = False
    ours, our_grads = grads_of(beta, pair, data)
    model, guide = scale_latents(pair.model, 0.3), scale_latents(pair.guide, 0.3)
    pair.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    theirs = pyro.infer.Trace_ELBO().loss_and_grads(model, guide, data)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-6)
    for name, p in pair.named_parameters():
        torch.testing.assert_close(our_grads[name], p.grad, rtol=1e-6, atol=1e-6)


def test_iwae_score_function_gradient_is_unbiased(float64):
    """K = 2 particles of a binary latent: the exact expected gradient of the IWAE bound by
    enumerating the four particle pairs, against the mean of the estimator."""
    pair, data = DiscreteLatent(), sample_data(4)
    x = data.x_cont

    def exact_bound():
        prior = torch.distributions.Bernoulli(logits=pair.prior_logit)
        q = torch.distributions.Bernoulli(logits=pair.enc(x).squeeze(-1))  # [n]
        total = 0.0
        for z1 in (0.0, 1.0):
            for z2 in (0.0, 1.0):
                lws, lq = [], 0.0
                for z in (z1, z2):
                    zz = torch.full((len(x),), z)
                    lik = torch.distributions.Normal(pair.mu[zz.long()], 1.0).log_prob(x).sum(-1)
                    lws.append(lik + prior.log_prob(zz) - q.log_prob(zz))
                    lq = lq + q.log_prob(zz)
                bound = torch.logsumexp(torch.stack(lws), 0) - torch.log(torch.tensor(2.0))
                total = total + (lq.exp() * bound).sum()
        return total

    pair.zero_grad()
    (-exact_bound()).backward()
    exact = pair.enc.weight.grad.clone()
    iwae, draws = IWAE(num_particles=2), []
    torch.manual_seed(0)
    for _ in range(1000):
        pair.zero_grad()
        iwae.loss_and_grads(pair.model, pair.guide, data)
        draws.append(pair.enc.weight.grad.clone())
    draws = torch.stack(draws)
    mean, se = draws.mean(0), draws.std(0) / len(draws) ** 0.5
    assert ((mean - exact).abs() < 4 * se + 1e-3).all(), (mean, exact, se)


@pytest.mark.parametrize(
    "elbo", [pyro.infer.Trace_ELBO(), pyro.infer.TraceMeanField_ELBO(num_particles=2)]
)
def test_any_pyro_elbo_is_accepted_and_persists(elbo, adult_small, tmp_path):
    built = objectives.build(elbo)
    assert isinstance(built, PyroELBO) and built.elbo is not elbo
    rebuilt = objectives.build(built.config())
    assert type(rebuilt.elbo) is type(elbo) and rebuilt.config() == built.config()
    vae = ppvae.TabularVAE(
        epochs=2,
        batch_size=500,
        hidden=(16,),
        latent_dim=2,
        verbose=False,
        missing_values=["?"],
        objective=elbo,
    ).fit(adult_small.head(600))
    losses = vae.history_["train_loss"]
    assert losses.notna().all() and losses.iloc[-1] < losses.iloc[0]
    loaded = ppvae.load(vae.save(tmp_path / "m"))
    assert loaded.objective_.config() == built.config()


def test_pyro_elbo_by_name_rejects_what_is_not_an_elbo():
    with pytest.raises(ValueError, match="not an ELBO class of pyro.infer"):
        objectives.build({"name": "pyro", "elbo": "SVI"})


def test_objective_instances_are_cloned_per_fit(adult_small):
    """One GECO instance, two fits: each fit starts from lambda_init and the instance
    passed in keeps its initial state."""
    geco = GECO(tolerance=5.0, lambda_init=2.0, lambda_lr=0.05)
    fits = [
        ppvae.TabularVAE(
            epochs=2,
            batch_size=500,
            hidden=(16,),
            latent_dim=2,
            verbose=False,
            missing_values=["?"],
            objective=geco,
        ).fit(adult_small.head(600))
        for _ in range(2)
    ]
    assert geco.lam == 2.0 and geco.c_ma is None
    for vae in fits:
        assert vae.objective_ is not geco
        assert vae.step_history_["lambda"].iloc[0] != 2.0  # moved after the first step...
    first = [vae.step_history_["lambda"].iloc[0] for vae in fits]
    assert first[0] == pytest.approx(first[1])  # ...from the same start in both fits


def test_geco_updates_only_in_after_step():
    pair, data = LinearGaussian(), sample_data(32)
    geco = GECO(tolerance=1.0)
    geco.loss_and_grads(pair.model, pair.guide, data)
    geco.loss(pair.model, pair.guide, data)
    assert geco.c_ma is None and geco.lam == 1.0
    geco.after_step()
    assert geco.c_ma == pytest.approx(geco.metrics["recon"]) and geco.lam != 1.0
