"""The normal family's scale floor, raised to 0.1 on small tables only (issue 18)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn.functional import softplus

import ppvae
from ppvae.budget import SMALL_TABLE_MIN_SCALE, likelihood_for
from ppvae.likelihoods import likelihoods
from ppvae.networks import MIN_SCALE
from ppvae.params import ParameterError, check_params


def table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=rows)
    return pd.DataFrame({"a": a, "b": a + rng.normal(size=rows), "c": rng.choice(["x", "y"], rows)})


def floor_of(vae: ppvae.TabularVAE) -> float:
    (group,) = [g for g in vae.model_.slot_groups if g.name == "x_cont"]
    return group.family.min_scale


def test_the_normal_family_adds_its_floor_to_the_softplus_scale():
    raw = torch.tensor([[0.3, -2.0], [1.0, -40.0]])
    for floor in (MIN_SCALE, 0.1):
        d = likelihoods.build({"name": "normal", "min_scale": floor})(raw)
        torch.testing.assert_close(d.loc, raw[:, 0])
        torch.testing.assert_close(d.scale, softplus(raw[:, 1]) + floor)
    assert likelihoods.build("normal").min_scale == MIN_SCALE == 1e-3


def test_a_small_table_gets_the_floor_only_for_the_plain_normal_family():
    assert SMALL_TABLE_MIN_SCALE == 0.1
    assert likelihood_for(4_999, "normal") == {"name": "normal", "min_scale": 0.1}
    assert likelihood_for(5_000, "normal") == "normal"
    assert likelihood_for(400, "student_t") == "student_t"
    given = {"name": "normal", "min_scale": 1e-3}
    assert likelihood_for(400, given) is given


def test_a_likelihood_spec_names_a_registered_family():
    check_params({"likelihood": {"name": "normal", "min_scale": 0.05}})
    for bad in ({"name": "gauss"}, {"min_scale": 0.1}, "gauss"):
        with pytest.raises(ParameterError, match="likelihood"):
            check_params({"likelihood": bad})


def test_a_small_fit_trains_with_the_floor_and_keeps_it_when_saved(tmp_path):
    small = dict(hidden=(8,), latent_dim=2, epochs=2, verbose=False)
    vae = ppvae.TabularVAE(**small).fit(table(300))
    assert floor_of(vae) == 0.1 and vae.get_params()["likelihood"] == "normal"
    loaded = ppvae.load(vae.save(tmp_path / "model"))
    assert floor_of(loaded) == 0.1
    pd.testing.assert_frame_equal(loaded.sample(50, seed=1), vae.sample(50, seed=1))
    given = ppvae.TabularVAE(**small, likelihood={"name": "normal", "min_scale": 1e-3})
    assert floor_of(given.fit(table(300))) == 1e-3


def test_a_table_of_5000_training_rows_trains_with_the_old_floor(tmp_path):
    df, small = table(5_600), dict(hidden=(8,), latent_dim=2, epochs=1, verbose=False)
    auto = ppvae.TabularVAE(**small).fit(df)  # 5,040 training rows after the 10 % split
    old = ppvae.TabularVAE(**small, likelihood={"name": "normal", "min_scale": 1e-3}).fit(df)
    assert floor_of(auto) == 1e-3 and auto.model_.likelihood == "normal"
    pd.testing.assert_frame_equal(auto.step_history_, old.step_history_)
    assert floor_of(ppvae.load(auto.save(tmp_path / "model"))) == 1e-3
