"""The training budget ``"auto"`` picks by table size, and a number given wins (issue 18)."""

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae
from ppvae.budget import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_PATIENCE,
    LARGE_TABLE_EPOCHS,
    MIN_BATCH,
    SMALL_TABLE_PATIENCE,
    batch_size_for,
    epochs_for,
    ex_post_prior_for,
    objective_for,
    patience_for,
    refit_objective,
    training_prior,
)
from ppvae.params import ParameterError, check_params
from ppvae.priors.aggregate import AggregatePrior


@pytest.mark.parametrize(
    ("rows", "batch"),
    [(100, 32), (320, 32), (321, 33), (400, 40), (1_600, 160), (4_999, 500), (5_000, 500)],
)
def test_auto_batch_is_a_tenth_of_a_small_table_and_500_from_5000_rows(rows, batch):
    assert batch_size_for(rows) == batch_size_for(rows, "auto") == batch
    assert (MIN_BATCH, DEFAULT_BATCH) == (32, 500)


@pytest.mark.parametrize(("rows", "patience"), [(400, 50), (4_999, 50), (5_000, 20)])
def test_auto_patience_is_50_below_5000_rows(rows, patience):
    assert patience_for(rows) == patience
    assert (SMALL_TABLE_PATIENCE, DEFAULT_PATIENCE) == (50, 20)


@pytest.mark.parametrize(("rows", "epochs"), [(400, 200), (4_999, 200), (5_000, 140)])
def test_auto_epochs_are_at_most_140_from_5000_rows(rows, epochs):
    assert epochs_for(rows) == epochs_for(rows, "auto") == epochs
    assert (DEFAULT_EPOCHS, LARGE_TABLE_EPOCHS) == (200, 140)


def test_a_number_given_is_used_as_given():
    assert batch_size_for(400, 500) == 500 and batch_size_for(100_000, 64) == 64
    assert patience_for(400, 20) == 20 and patience_for(400, None) is None
    assert epochs_for(100_000, 300) == 300 and epochs_for(400, 5) == 5


def test_auto_is_the_default_and_get_params_returns_what_was_passed():
    assert ppvae.TabularVAE().get_params()["batch_size"] == "auto"
    assert ppvae.TabularVAE().get_params()["epochs"] == "auto"
    assert ppvae.TabularVAE.from_spec("default").get_params()["epochs"] == "auto"
    assert ppvae.TabularVAE.from_spec("default").get_params()["patience"] == "auto"
    params = ppvae.TabularVAE(batch_size=500, patience=20).get_params()
    assert (params["batch_size"], params["patience"]) == (500, 20)


def test_auto_is_validated_with_the_numbers():
    check_params({"batch_size": "auto", "patience": "auto", "epochs": "auto"})
    with pytest.raises(ParameterError, match='epochs must be "auto"'):
        check_params({"epochs": "many"})
    check_params({"patience": None})
    with pytest.raises(ParameterError, match=r'batch_size must be "auto".*got .?automatic'):
        check_params({"batch_size": "automatic"})
    with pytest.raises(ParameterError, match="patience must be"):
        check_params({"patience": 0})


def test_an_explicit_batch_size_wins_on_a_small_table():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["x", "y"], 200)})
    small = dict(hidden=(8,), latent_dim=2, epochs=1, verbose=False)
    given = ppvae.TabularVAE(**small, batch_size=100, patience=7).fit(df)
    auto = ppvae.TabularVAE(**small).fit(df)
    # 180 training rows: 2 steps of the given 100 rows, 6 steps of the automatic 32
    assert len(given.step_history_) == 2 and len(auto.step_history_) == 6


def test_auto_prior_samples_a_small_table_through_its_aggregate_posterior():
    assert ex_post_prior_for(4_999, "auto") == {"name": "aggregate", "components": 3}
    assert ex_post_prior_for(5_000, "auto") == {"name": "aggregate", "components": 10}
    assert ex_post_prior_for(400, "standard_normal") is None
    assert ex_post_prior_for(99, "auto") is None and ex_post_prior_for(100, "auto") is not None
    assert training_prior("auto") == "standard_normal" and training_prior("vamp") == "vamp"


SMALL_OBJECTIVE = {
    "name": "anneal",
    "schedule": "cyclical",
    "cycles": 4,
    "ratio": 0.5,
    "beta_max": 0.5,
}


def test_auto_objective_anneals_the_kl_weight_cyclically_up_to_half_below_5000_rows():
    assert objective_for(4_999) == SMALL_OBJECTIVE
    assert objective_for(5_000) == "elbo" and objective_for(400, "free_bits") == "free_bits"
    assert refit_objective(5_000) == {"name": "free_bits", "nats_per_dim": 0.25}
    assert refit_objective(4_999) is None and refit_objective(5_000, "elbo") is None


def table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=rows)
    return pd.DataFrame({"a": a, "b": a + rng.normal(size=rows), "c": rng.choice(["x", "y"], rows)})


def test_auto_fits_a_small_table_with_the_aggregate_prior_and_keeps_it_when_saved(tmp_path):
    small = dict(hidden=(8,), latent_dim=2, epochs=2, verbose=False)
    vae = ppvae.TabularVAE(**small).fit(table(300))
    assert isinstance(vae.model_.prior, AggregatePrior) and vae.model_.prior.components == 3
    assert bool(vae.model_.prior.fitted) and vae.get_params()["prior"] == "auto"
    assert vae.objective_.config().items() >= SMALL_OBJECTIVE.items()
    assert vae.get_params()["objective"] == "auto"
    loaded = ppvae.load(vae.save(tmp_path / "model"))
    pd.testing.assert_frame_equal(loaded.sample(50, seed=1), vae.sample(50, seed=1))
    given = ppvae.TabularVAE(**small, prior="standard_normal").fit(table(300))
    assert given.model_.prior.config()["name"] == "standard_normal"


def test_auto_trains_a_table_of_5000_rows_as_the_fixed_budget_and_samples_its_aggregate(
    tmp_path,
):
    df, small = table(5_600), dict(hidden=(8,), latent_dim=2, epochs=1, verbose=False)
    auto = ppvae.TabularVAE(**small).fit(df)  # 5,040 training rows after the 10 % split
    fixed = ppvae.TabularVAE(
        **small,
        batch_size=500,
        patience=20,
        prior="standard_normal",
        objective="elbo",
    )
    fixed.fit(df)
    pd.testing.assert_frame_equal(auto.step_history_, fixed.step_history_)
    prior = auto.model_.prior  # trained with N(0, I), sampled through a 10-component q(z)
    assert isinstance(prior, AggregatePrior) and prior.components == 10 and bool(prior.fitted)
    assert auto.get_params()["prior"] == "auto"
    loaded = ppvae.load(auto.save(tmp_path / "model"))
    assert isinstance(loaded.model_.prior, AggregatePrior)
    torch.testing.assert_close(loaded.model_.prior.means, prior.means, rtol=0, atol=0)
    pd.testing.assert_frame_equal(loaded.sample(100, seed=3), auto.sample(100, seed=3))
    pd.testing.assert_frame_equal(auto.sample(100, seed=3), auto.sample(100, seed=3))
    assert not auto.sample(100, seed=3).equals(auto.sample(100, seed=4))


@pytest.mark.parametrize(("rows", "epochs"), [(300, 3), (5_600, 2)])
def test_a_fit_runs_the_auto_epochs_of_its_table_size(monkeypatch, rows, epochs):
    monkeypatch.setattr("ppvae.budget.DEFAULT_EPOCHS", 3)
    monkeypatch.setattr("ppvae.budget.LARGE_TABLE_EPOCHS", 2)
    vae = ppvae.TabularVAE(hidden=(8,), latent_dim=2, patience=None, verbose=False)
    assert len(vae.fit(table(rows)).history_) == epochs


def test_a_collapsed_auto_fit_is_refitted_once_with_free_bits(monkeypatch):
    from ppvae import vae as vae_module
    from ppvae.diagnostics.health import Health

    real, verdicts = vae_module.check_health, []

    def collapsed_first(vae, df, warn=True):
        verdicts.append(vae.step_history_.copy())
        if len(verdicts) == 1:  # the ELBO fit: no active unit, a strong pair lost
            return Health(active_units=0, latent_dim=2, pairs=[("a", "b", 0.9, 0.1)])
        return real(vae, df, warn=warn)

    monkeypatch.setattr(vae_module, "check_health", collapsed_first)
    df, small = table(5_600), dict(hidden=(8,), latent_dim=2, epochs=1, verbose=False)
    auto = ppvae.TabularVAE(**small).fit(df)
    assert auto.refitted_ and len(verdicts) == 2
    monkeypatch.setattr(vae_module, "check_health", real)
    elbo = ppvae.TabularVAE(**small, objective="elbo").fit(df)
    free_bits = ppvae.TabularVAE(**small, objective={"name": "free_bits", "nats_per_dim": 0.25})
    free_bits.fit(df)
    assert not elbo.refitted_ and not free_bits.refitted_  # a user's objective: as given
    pd.testing.assert_frame_equal(verdicts[0], elbo.step_history_)  # first the ELBO fit,
    pd.testing.assert_frame_equal(auto.step_history_, free_bits.step_history_)  # then this


def test_a_collapsed_small_or_user_objective_fit_is_not_refitted(monkeypatch):
    from ppvae import vae as vae_module
    from ppvae.diagnostics.health import Health

    def collapsed(vae, df, warn=True):
        return Health(active_units=0, latent_dim=2, pairs=[("a", "b", 0.9, 0.1)])

    monkeypatch.setattr(vae_module, "check_health", collapsed)
    small = dict(hidden=(8,), latent_dim=2, epochs=1, verbose=False)
    for vae, df in (
        (ppvae.TabularVAE(**small), table(300)),
        (ppvae.TabularVAE(**small, objective="elbo"), table(5_600)),
    ):
        with pytest.warns(UserWarning, match="looks collapsed"):
            vae.fit(df)
        assert not vae.refitted_


def test_a_fit_collapsed_after_the_watch_epochs_is_refitted_at_once(monkeypatch):
    """No active unit after WATCH_EPOCHS: the ELBO fit stops there and the free-bits refit
    follows, equal to an explicit free-bits fit; a code with active units is let through,
    and that fit is exactly the ELBO fit (the measurement uses a forked random stream)."""
    from ppvae import collapse_watch
    from ppvae import vae as vae_module
    from ppvae.diagnostics.health import Health

    real_units, seen = collapse_watch.active_units, []

    def units(answer):
        def measured(module, rows):
            seen.append(real_units(module, rows))  # measured for real, then answered
            return answer

        return measured

    def healthy(vae, df, warn=True):
        return Health(active_units=1, latent_dim=2, pairs=[("a", "b", 0.9, 0.9)])

    df = table(5_600)
    small = dict(hidden=(8,), latent_dim=2, epochs=collapse_watch.WATCH_EPOCHS + 3, verbose=False)
    monkeypatch.setattr(collapse_watch, "active_units", units(0))
    auto = ppvae.TabularVAE(**small).fit(df)
    assert auto.refitted_ and len(seen) == 1
    free_bits = ppvae.TabularVAE(**small, objective={"name": "free_bits", "nats_per_dim": 0.25})
    pd.testing.assert_frame_equal(auto.step_history_, free_bits.fit(df).step_history_)

    monkeypatch.setattr(collapse_watch, "active_units", units(1))
    monkeypatch.setattr(vae_module, "check_health", healthy)
    kept = ppvae.TabularVAE(**small).fit(df)
    assert not kept.refitted_ and len(seen) == 2
    elbo = ppvae.TabularVAE(**small, objective="elbo").fit(df)
    pd.testing.assert_frame_equal(kept.step_history_, elbo.step_history_)
    assert len(kept.history_) == len(elbo.history_) > collapse_watch.WATCH_EPOCHS
