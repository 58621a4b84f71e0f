"""ppvae.compare: models ranked by held-out elpd, with ArviZ's comparison vocabulary."""

from __future__ import annotations

import arviz as az
import matplotlib
import numpy as np
import pytest

import ppvae
from ppvae import arviz_compat

matplotlib.use("Agg")
SMALL = dict(batch_size=200, hidden=(32,), latent_dim=3, verbose=False, missing_values=["?"])


@pytest.fixture(scope="module")
def split(adult_small):
    train = adult_small.sample(1500, random_state=0)
    return train, adult_small.drop(train.index)


@pytest.fixture(scope="module")
def models(split):
    train, _ = split
    return {
        "short": ppvae.TabularVAE(**SMALL, epochs=1).fit(train),
        "long": ppvae.TabularVAE(**SMALL, epochs=12).fit(train),
    }


def test_table_matches_its_formulas(models, split):
    _, heldout = split
    result = ppvae.compare(models, heldout, num_particles=8, max_rows=300)
    table, pw = result.table, result.pointwise
    assert list(table.columns) == [
        "rank",
        "elpd",
        "se",
        "elpd_diff",
        "dse",
        "weight",
        "p_better",
        "elpd_per_row",
        "k_high",
        "k_max",
    ]
    assert pw.shape == (300, 2) and set(pw.index) <= set(heldout.index)
    # the pointwise lpd is vae.log_likelihood on the same rows, same particles and seed
    rows = heldout.loc[pw.index]
    np.testing.assert_allclose(
        pw["long"], models["long"].log_likelihood(rows, num_particles=8, seed=0), rtol=1e-5
    )
    n = len(pw)
    best, other = table.index
    np.testing.assert_allclose(table["elpd"], pw[table.index].sum())
    np.testing.assert_allclose(table["se"], np.sqrt(n * pw[table.index].var(ddof=1)))
    d = pw[best] - pw[other]
    assert table.loc[other, "elpd_diff"] == pytest.approx(d.sum())
    assert table.loc[other, "dse"] == pytest.approx(np.sqrt(n * d.var(ddof=1)))
    assert table.loc[best, "elpd_diff"] == 0 and table.loc[best, "dse"] == 0
    assert table["weight"].sum() == pytest.approx(1.0)
    assert list(table["rank"]) == [1, 2] and result.best == best
    assert (table["k_high"] == (result.pareto_k > 0.7).sum()[table.index]).all()


def test_longer_training_wins_on_heldout_rows(models, split):
    _, heldout = split
    table = ppvae.compare(models, heldout, num_particles=10).table
    assert table.index[0] == "long"
    assert table.loc["short", "elpd_diff"] > 2 * table.loc["short", "dse"]
    assert table.loc["short", "p_better"] > 0.99 and table.loc["long", "weight"] > 0.99


def test_seeds_bootstrap_and_plot_rank(split):
    train, heldout = split
    fits = ppvae.fit_seeds({**SMALL, "epochs": 2}, train, seeds=[0, 1])
    result = ppvae.compare(fits, heldout, num_particles=5, max_rows=200)
    assert set(result.table.index) == {"seed 0", "seed 1"}
    loser = result.table.index[1]
    assert 0.5 <= result.table.loc[loser, "p_better"] <= 1.0
    idata = result.to_inference_data()
    assert idata["posterior"]["elpd_per_row"].dims == ("chain", "draw")
    assert np.isfinite(az.summary(idata, kind="stats")["mean"].astype(float)).all()
    az.plot_rank(idata, var_names=["elpd_per_row"])
    matplotlib.pyplot.close("all")
    with pytest.raises(ValueError, match="at least two seeds"):
        ppvae.fit_seeds({**SMALL}, train, seeds=[0])


def test_pareto_k_flags_particles_that_are_too_few(models, split):
    _, heldout = split
    result = ppvae.compare(models, heldout, num_particles=30, max_rows=100)
    assert result.pareto_k.shape == (100, 2) and np.isfinite(result.pareto_k.to_numpy()).all()
    flagged = result.unreliable_rows()
    assert set(flagged.index) == set(result.pareto_k.index[(result.pareto_k > 0.7).any(axis=1)])
    equal = arviz_compat.pareto_k(np.zeros((2, 30)))  # no tail to fit in equal weights
    assert equal.shape == (2,)


def test_bad_input_is_named(models, split):
    _, heldout = split
    with pytest.raises(TypeError):
        ppvae.compare(models)  # held-out rows are required
    with pytest.raises(ValueError, match="at least two"):
        ppvae.compare({"a": models["long"]}, heldout)
    with pytest.raises(ValueError, match="not fitted"):
        ppvae.compare({"a": models["long"], "b": ppvae.TabularVAE()}, heldout)
    with pytest.raises(TypeError, match="dict"):
        ppvae.compare(models["long"], heldout)
