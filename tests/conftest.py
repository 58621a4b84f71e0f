"""Shared fixtures: every test starts with an empty Pyro param store and fixed seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyro
import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def fresh_pyro_state():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    np.random.seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    """The bundled UCI Adult table, as shipped (missing values written as '?')."""
    from ppvae import datasets

    return datasets.load("adult")


@pytest.fixture(scope="session")
def adult_small(adult) -> pd.DataFrame:
    """2,000 Adult rows (seeded), for fast end-to-end tests."""
    return adult.sample(2000, random_state=0).reset_index(drop=True)


def shared_table(name: str) -> pd.DataFrame:
    """A table from ../shared/data; skips the test when that folder is absent."""
    path = SHARED_DATA / f"{name}.csv"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return pd.read_csv(path)


def pytest_configure(config):
    # Test fits run a few epochs by design, and such a fit is rightly reported as collapsed by
    # the post-fit health check; tests/test_collapse.py checks that warning with pytest.warns
    # (which records it whatever this filter says).
    config.addinivalue_line("filterwarnings", "ignore:the fitted model looks collapsed:UserWarning")
