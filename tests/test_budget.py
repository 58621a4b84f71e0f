"""The training budget ``"auto"`` picks by table size, and a number given wins (issue 18)."""

import numpy as np
import pandas as pd
import pytest

import ppvae
from ppvae.budget import (
    DEFAULT_BATCH,
    DEFAULT_PATIENCE,
    MIN_BATCH,
    SMALL_TABLE_PATIENCE,
    batch_size_for,
    patience_for,
)
from ppvae.params import ParameterError, check_params


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


def test_a_number_given_is_used_as_given():
    assert batch_size_for(400, 500) == 500 and batch_size_for(100_000, 64) == 64
    assert patience_for(400, 20) == 20 and patience_for(400, None) is None


def test_auto_is_the_default_and_get_params_returns_what_was_passed():
    assert ppvae.TabularVAE().get_params()["batch_size"] == "auto"
    assert ppvae.TabularVAE.from_spec("default").get_params()["patience"] == "auto"
    params = ppvae.TabularVAE(batch_size=500, patience=20).get_params()
    assert (params["batch_size"], params["patience"]) == (500, 20)


def test_auto_is_validated_with_the_numbers():
    check_params({"batch_size": "auto", "patience": "auto"})
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
