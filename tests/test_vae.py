"""End-to-end behaviour of the TabularVAE facade on real rows (Adult)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae
from ppvae.model import TabularModel
from ppvae.persistence import write_checksums
from ppvae.vae import NotFittedError

FAST = dict(
    epochs=3, batch_size=256, hidden=(64, 64), latent_dim=4, verbose=False, missing_values=["?"]
)


@pytest.fixture(scope="module")
def fitted(adult_small):
    return ppvae.TabularVAE(**FAST).fit(adult_small)


def test_fit_returns_self_and_learned_state(adult_small):
    vae = ppvae.TabularVAE(**FAST)
    assert vae.fit(adult_small) is vae
    assert list(vae.history_.columns[:3]) == ["epoch", "train_loss", "val_loss"]
    assert len(vae.history_) == 3 and np.isfinite(vae.history_["val_loss"]).all()
    assert {"step", "epoch", "loss", "recon", "kl"} <= set(vae.step_history_.columns)


def test_sample_matches_columns_dtypes_levels_and_ranges(fitted, adult_small):
    real = adult_small.replace("?", np.nan)
    synth = fitted.sample(3000, seed=1)
    assert list(synth.columns) == list(adult_small.columns)
    assert (synth.dtypes == adult_small.dtypes).all()
    for col in real.columns:
        if real[col].dtype == object:
            assert set(synth[col].dropna()) <= set(real[col].dropna())
        else:
            assert synth[col].min() >= real[col].min() and synth[col].max() <= real[col].max()
    assert synth["age"].dtype == np.int64


def test_categories_are_sampled_not_argmaxed(fitted):
    synth = fitted.sample(4000, seed=2)
    # argmax decoding of a 4-d latent model gives only a handful of distinct rows
    assert synth["occupation"].nunique() > 8 and synth["native-country"].nunique() > 3


def test_same_seed_same_samples_and_global_rng_untouched(fitted):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = fitted.sample(500, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    pd.testing.assert_frame_equal(a, fitted.sample(500, seed=7))
    assert not a.equals(fitted.sample(500, seed=8))


def test_same_seed_same_fit(adult_small):
    a = ppvae.TabularVAE(**{**FAST, "epochs": 1}).fit(adult_small).sample(200, seed=0)
    b = ppvae.TabularVAE(**{**FAST, "epochs": 1}).fit(adult_small).sample(200, seed=0)
    pd.testing.assert_frame_equal(a, b)


def test_large_samples_are_chunked_and_complete(fitted, adult_small):
    """100,000 rows span several sampling chunks; every row is decoded and in range.
    (Sampling speed is measured by bench/speed.py, not here.)"""
    out = fitted.sample(100_000, seed=0)
    assert len(out) == 100_000
    assert out["age"].between(adult_small["age"].min(), adult_small["age"].max()).all()
    assert out["income"].notna().all()


@pytest.mark.parametrize("n", [0, -3, 2.5, "10", True])
def test_sample_rejects_bad_n(fitted, n):
    with pytest.raises(ValueError, match="n must be a positive number of rows"):
        fitted.sample(n)


def test_unfitted_model_says_so():
    with pytest.raises(NotFittedError, match="call fit"):
        ppvae.TabularVAE().sample(3)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"latent_dim": 0}, "latent_dim must be a positive integer"),
        ({"epochs": 1.5}, 'epochs must be "auto" .* or a positive integer'),
        ({"lr": -1}, "lr must be a positive learning rate"),
        ({"hidden": (0,)}, "hidden must be a list"),
        ({"val_fraction": 1.0}, "val_fraction must be in"),
        ({"prior": "nope"}, "unknown prior 'nope'"),
        ({"objective": {"name": "elbo", "bogus": 1}}, "does not take option"),
    ],
)
def test_bad_parameters_are_named(adult_small, params, message):
    with pytest.raises(ValueError, match=message):
        ppvae.TabularVAE(**{**FAST, **params}).fit(adult_small)


def test_evaluation_methods(fitted, adult_small):
    rows = adult_small.head(50)
    loc, scale = fitted.encode(rows)
    assert loc.shape == (50, 4) and (scale > 0).all()
    cols = fitted.column_log_likelihood(rows, num_samples=2)
    assert list(cols.columns) == list(adult_small.columns) and np.isfinite(cols.values).all()
    rec = fitted.reconstruct(rows, seed=0)
    assert rec.shape == rows.shape


def test_unseen_columns_at_transform_time(fitted, adult_small):
    with pytest.raises(ValueError, match="extra"):
        fitted.encode(adult_small.assign(extra=1))


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "m")
    loaded = ppvae.load(path)
    pd.testing.assert_frame_equal(loaded.sample(300, seed=4), fitted.sample(300, seed=4))
    assert loaded.history_.shape == fitted.history_.shape
    with pytest.raises(FileExistsError, match="force=True"):
        fitted.save(path)
    fitted.save(path, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left behind


def test_a_saved_model_spells_out_its_chain_options_and_loads_after_the_defaults_change(
    fitted, adult_small, tmp_path, monkeypatch
):
    path = fitted.save(tmp_path / "m")
    spec = json.loads((path / "ppvae.json").read_text())["params"]["model"]
    assert spec == {
        "name": "tabular",
        "chain_rank": 32,
        "chain_point_masses": True,
        "chain_continuous": True,  # "auto"
    }
    defaults = TabularModel.__init__.__defaults__  # (latent_dim, ..., chain_point_masses)
    monkeypatch.setattr(TabularModel.__init__, "__defaults__", (*defaults[:-3], 0, False, False))
    loaded = ppvae.load(path)
    pd.testing.assert_frame_equal(loaded.sample(300, seed=4), fitted.sample(300, seed=4))
    monkeypatch.undo()
    # saved before a model spelled out its chain options (rank 16, point masses out of the
    # chain, as they were then): still so
    old = ppvae.TabularVAE(
        **{**FAST, "epochs": 1},
        model={"name": "tabular", "chain_rank": 16, "chain_point_masses": False},
    ).fit(adult_small)
    for missing in (["chain_point_masses"], ["chain_rank", "chain_point_masses"]):
        path = old.save(tmp_path / "old", force=True)
        meta = json.loads((path / "ppvae.json").read_text())
        for key in missing:
            del meta["params"]["model"][key]
        (path / "ppvae.json").write_text(json.dumps(meta))
        write_checksums(path)
        loaded = ppvae.load(path)
        assert loaded.model_.chain_options["chain_rank"] == 16
        assert loaded.model_.chain_options["chain_point_masses"] is False
        pd.testing.assert_frame_equal(loaded.sample(300, seed=4), old.sample(300, seed=4))


def test_load_rejects_foreign_or_corrupted_directories(fitted, tmp_path):
    from ppvae.persistence import ModelFormatError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="missing"):
        ppvae.load(tmp_path / "empty")
    with pytest.raises(ModelFormatError, match="not a directory"):
        ppvae.load(tmp_path / "nothing")
    path = fitted.save(tmp_path / "m")
    (path / "ppvae.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="corrupted"):
        ppvae.load(path)
    path = fitted.save(tmp_path / "m2")
    (path / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(ModelFormatError, match="could not be loaded"):
        ppvae.load(path)
    path = fitted.save(tmp_path / "m3")
    meta = (path / "ppvae.json").read_text().replace('"format_version": 1', '"format_version": 99')
    (path / "ppvae.json").write_text(meta)
    with pytest.raises(ModelFormatError, match="upgrade ppvae"):
        ppvae.load(path)


def test_weights_file_holds_tensors_only(fitted, tmp_path):
    path = fitted.save(tmp_path / "m")
    state = torch.load(path / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_from_spec_shipped_and_dict(adult_small):
    vae = ppvae.TabularVAE.from_spec("default", epochs=1, verbose=False)
    assert vae.latent_dim == 16 and vae.epochs == 1
    assert ppvae.TabularVAE.from_spec("models/default.yaml").prior == "auto"
    with pytest.raises(ValueError, match="did you mean 'latent_dim'"):
        ppvae.TabularVAE.from_spec({"latent_dims": 3})


def test_custom_model_plugs_in(adult_small, tmp_path):
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "conditional_vae", Path(__file__).resolve().parents[1] / "models" / "conditional_vae.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["conditional_vae"] = module
    spec.loader.exec_module(module)
    vae = ppvae.TabularVAE(**FAST, model={"name": "conditional", "label": "income"}).fit(
        adult_small
    )
    synth = vae.sample(400, seed=0)
    assert set(synth["income"]) <= set(adult_small["income"])
    loaded = ppvae.load(vae.save(tmp_path / "cvae"))
    pd.testing.assert_frame_equal(loaded.sample(100, seed=1), vae.sample(100, seed=1))


def test_sample_with_a_condition_decodes_the_given_codes(fitted):
    far = torch.full((300, 4), 3.0)
    near = torch.zeros(300, 4)
    a = fitted.sample(300, seed=0, condition={"z": far})
    pd.testing.assert_frame_equal(a, fitted.sample(300, seed=0, condition={"z": far}))
    b = fitted.sample(300, seed=0, condition={"z": near})
    assert not a.equals(b)
    with pytest.raises(ValueError, match="must have n = 300 rows"):
        fitted.sample(300, condition={"z": torch.zeros(5, 4)})
