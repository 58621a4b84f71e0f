"""The proposal phase: the encoder learns partial rows by the forward KL to the fitted one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

import ppvae
from ppvae.input_masking import hide_cells
from ppvae.proposal_training import fit_proposal, forward_kl_loss, latent_values


@pytest.fixture(scope="module")
def vae() -> ppvae.TabularVAE:
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})  # independent
    options = dict(latent_dim=2, hidden=(16,), epochs=5, seed=0, verbose=False)
    return ppvae.TabularVAE(prior="standard_normal", **options).fit(df)


def test_the_loss_is_minus_log_q_of_the_teachers_draws_on_the_partial_rows(vae):
    data = vae._table(pd.DataFrame({"a": [0.1, -1.0, 2.0], "b": [0.5, 0.0, -0.3]}))
    torch.manual_seed(0)
    partial = hide_cells(vae.layout_, data, 0.5)
    targets = latent_values(poutine.trace(vae.model_.guide).get_trace(data))
    loc, scale = vae.model_.encoder(vae.layout_.features(partial))
    expected = -dist.Normal(loc, scale).log_prob(targets["z"]).sum()
    assert forward_kl_loss(vae.model_, partial, targets).item() == pytest.approx(expected.item())


def test_the_phase_trains_the_encoder_and_leaves_the_model(vae):
    module = vae.model_
    before = {k: v.clone() for k, v in module.state_dict().items()}
    data = vae._table(pd.DataFrame({"a": np.linspace(-2, 2, 64), "b": np.zeros(64)}))
    losses = fit_proposal(module, data, 0.25, epochs=2, batch_size=32, lr=1e-3)
    after = module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert len(losses) == 2 and changed and all(k.startswith("encoder.") for k in changed)
    module.load_state_dict(before)
