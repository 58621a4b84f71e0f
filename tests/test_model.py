import math

import pyro
import torch
from pyro import poutine

from ppvae.data.layout import Layout, TensorTable
from ppvae.model import TabularModel
from ppvae.objectives import ELBO
from ppvae.training import train

LAYOUT = Layout(
    columns=("a", "b", "c", "d"),
    cont_names=("a", "b"),
    cat_names=("c", "d"),
    cat_cardinalities=(3, 2),
    miss_names=("b",),
)


def table(n: int, seed: int = 0) -> TensorTable:
    g = torch.Generator().manual_seed(seed)
    miss = (torch.rand(n, 1, generator=g) < 0.3).float()
    c = torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), n, replacement=True, generator=g)
    d = (torch.rand(n, generator=g) < 0.8).long()
    a = torch.randn(n, generator=g) + 2.0 * (c == 0)
    return TensorTable(
        x_cont=torch.stack([a, torch.randn(n, generator=g) * (1 - miss[:, 0])], -1),
        cont_mask=torch.stack([torch.ones(n, dtype=torch.bool), miss[:, 0] == 0], -1),
        x_cat=torch.stack([c, d], -1),
        cat_mask=torch.ones(n, 2, dtype=torch.bool),
        x_miss=miss,
    )


def test_model_and_guide_share_sites_with_expected_shapes():
    module = TabularModel(LAYOUT, latent_dim=3, hidden=(8,))
    data = table(5)
    guide_trace = poutine.trace(module.guide).get_trace(data)
    model_trace = poutine.trace(poutine.replay(module.model, trace=guide_trace)).get_trace(data)
    assert guide_trace.nodes["z"]["value"].shape == (5, 3)
    observed = {
        k for k, s in model_trace.nodes.items() if s["type"] == "sample" and s["is_observed"]
    }
    assert observed == {"x_cont", "x_cat", "x_miss"}
    assert model_trace.nodes["x_cont"]["fn"].event_shape == (2,)
    assert model_trace.nodes["x_cat"]["fn"].event_shape == (2,)
    assert model_trace.nodes["x_miss"]["fn"].event_shape == (1,)
    generated = poutine.trace(module.model).get_trace(None, num_rows=7)
    assert generated.nodes["x_cat"]["value"].shape == (7, 2)
    assert not generated.nodes["x_cat"]["is_observed"]


def test_elbo_equals_hand_computed_value():
    module = TabularModel(LAYOUT, latent_dim=2, hidden=(4,))
    data = table(6).with_features(LAYOUT)
    pyro.set_rng_seed(3)
    loss = ELBO().differentiable_loss(module.model, module.guide, data)
    pyro.set_rng_seed(3)
    loc, scale = module.encoder(data.features)
    z = loc + scale * torch.randn_like(loc)
    cont, logits, miss = module.decoder(z)
    sd = torch.nn.functional.softplus(cont[..., 1]) + 1e-3
    lp = (torch.distributions.Normal(cont[..., 0], sd).log_prob(data.x_cont) * data.cont_mask).sum()
    lp = lp + torch.log_softmax(logits[:, :3], -1).gather(-1, data.x_cat[:, :1]).sum()
    lp = lp + torch.log_softmax(logits[:, 3:], -1).gather(-1, data.x_cat[:, 1:]).sum()
    lp = lp + torch.distributions.Bernoulli(logits=miss).log_prob(data.x_miss).sum()
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(loc, scale), torch.distributions.Normal(0.0, 1.0)
    ).sum()
    torch.testing.assert_close(loss, kl - lp)


def test_training_recovers_known_marginals():
    """Categorical rates (0.6/0.3/0.1, 0.8) and the 30% missing rate, within 0.03."""
    data = table(3000).with_features(LAYOUT)
    module = TabularModel(LAYOUT, latent_dim=2, hidden=(32,))
    result = train(
        module,
        ELBO(),
        data,
        data[:500],
        epochs=15,
        batch_size=200,
        lr=3e-3,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    with torch.no_grad():
        trace = poutine.trace(module.model).get_trace(None, num_rows=20000)
    cat = trace.nodes["x_cat"]["value"]
    freq = torch.bincount(cat[:, 0], minlength=3).float() / 20000
    torch.testing.assert_close(freq, torch.tensor([0.6, 0.3, 0.1]), atol=0.03, rtol=0)
    assert math.isclose(cat[:, 1].float().mean().item(), 0.8, abs_tol=0.03)
    assert math.isclose(trace.nodes["x_miss"]["value"].mean().item(), 0.3, abs_tol=0.03)
    assert len(result.steps) == 15 * 15 and {"loss", "recon", "kl"} <= set(result.steps.columns)


def test_two_models_in_one_session_train_their_own_parameters():
    data = table(400).with_features(LAYOUT)
    first = TabularModel(LAYOUT, latent_dim=2, hidden=(8,))
    train(
        first,
        ELBO(),
        data,
        None,
        epochs=1,
        batch_size=100,
        lr=1e-2,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    second = TabularModel(LAYOUT, latent_dim=2, hidden=(8,))
    before = {k: v.clone() for k, v in second.state_dict().items()}
    frozen = {k: v.clone() for k, v in first.state_dict().items()}
    train(
        second,
        ELBO(),
        data,
        None,
        epochs=1,
        batch_size=100,
        lr=1e-2,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    assert any(not torch.equal(before[k], v) for k, v in second.state_dict().items())
    assert all(torch.equal(frozen[k], v) for k, v in first.state_dict().items())
