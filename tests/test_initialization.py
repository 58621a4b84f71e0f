"""Initialization strategies: registry, validation, effect on the weights, saving."""

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae
from ppvae.initialization import AutoencoderInit, Initialization, initializations
from ppvae.params import ParameterError, check_params
from ppvae.registry import SpecError


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    return pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + 0.1 * rng.normal(size=300),
            "c": np.where(x > 0, "hi", "lo"),
        }
    )


def fit(df, **kwargs):
    return ppvae.TabularVAE(
        latent_dim=2, hidden=(16,), epochs=2, batch_size=100, verbose=False, **kwargs
    ).fit(df)


def test_registry_builds_every_strategy_from_its_config():
    assert ppvae.initializations is initializations
    for name in initializations.names():
        strategy = initializations.build(name)
        assert isinstance(strategy, Initialization)
        rebuilt = initializations.build(strategy.config())
        assert type(rebuilt) is type(strategy) and rebuilt.config() == strategy.config()


def test_unknown_strategy_and_bad_options_are_named():
    with pytest.raises(SpecError, match="unknown initialization .pca..*autoencoder"):
        initializations.build("pca")
    with pytest.raises(ValueError, match="autoencoder: epochs must be a positive integer"):
        AutoencoderInit(epochs=0)
    with pytest.raises(ParameterError, match="init must be"):
        check_params({"init": 3})


def test_random_init_is_the_default_and_changes_nothing(table):
    default = fit(table)
    explicit = fit(table, init="random")
    assert default.init == "random"
    for a, b in zip(default.model_.parameters(), explicit.model_.parameters(), strict=True):
        assert torch.equal(a, b)


def test_autoencoder_init_trains_kl_free_before_the_objective(table):
    baseline = fit(table)
    warm = fit(table, init={"name": "autoencoder", "epochs": 3})
    # the main fit's history still has exactly `epochs` rows: the warm-up is not in it
    assert len(warm.history_) == len(baseline.history_) == 2
    same = [  # the networks' weights; a chain over one categorical slot has nothing to learn
        torch.equal(a, b)
        for net in ("encoder", "decoder")
        for a, b in zip(
            getattr(baseline.model_, net).parameters(),
            getattr(warm.model_, net).parameters(),
            strict=True,
        )
    ]
    assert same and not any(same)
    # same seed, same strategy: the same model
    again = fit(table, init={"name": "autoencoder", "epochs": 3})
    pd.testing.assert_frame_equal(warm.sample(50, seed=1), again.sample(50, seed=1))


def test_autoencoder_warmup_spends_information_in_z(table):
    """KL-free epochs leave a code that carries more than the prior allows: the KL of q(z|x)
    to the prior after the warm-up alone exceeds that of a fresh random model."""
    from ppvae.initialization import RandomInit

    vae = fit(table)
    data = vae._table(table)
    module = vae._build_module(vae.layout_)
    torch.manual_seed(0)
    fresh = module.posterior(data)[0]
    before = torch.distributions.kl_divergence(
        torch.distributions.Normal(fresh.mean, fresh.stddev),
        torch.distributions.Normal(0.0, 1.0),
    ).sum(-1)
    RandomInit()(module, data, batch_size=100, lr=1e-3, generator=torch.Generator())
    AutoencoderInit(epochs=20)(
        module, data, batch_size=100, lr=1e-2, generator=torch.Generator().manual_seed(0)
    )
    warm = module.posterior(data)[0]
    after = torch.distributions.kl_divergence(
        torch.distributions.Normal(warm.mean, warm.stddev),
        torch.distributions.Normal(0.0, 1.0),
    ).sum(-1)
    assert after.mean() > 5 * before.mean()


def test_init_is_saved_with_the_model(table, tmp_path):
    vae = fit(table, init={"name": "autoencoder", "epochs": 1})
    loaded = ppvae.load(vae.save(tmp_path / "model"))
    assert loaded.init == {"name": "autoencoder", "epochs": 1}
    assert "init" in (tmp_path / "model" / "spec.yaml").read_text()
    instance = fit(table, init=AutoencoderInit(epochs=1))
    assert ppvae.load(instance.save(tmp_path / "m2")).init == {"name": "autoencoder", "epochs": 1}
