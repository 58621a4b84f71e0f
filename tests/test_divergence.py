"""Divergence: a non-finite loss or an exploding epoch rolls back to the last good state with
a lower learning rate, a bounded number of times; a model that ends far above its best loss
is never saved silently."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae.vae
from ppvae.cli import main
from ppvae.objectives import ELBO
from ppvae.training import (
    EXPLOSION_FACTOR,
    MAX_RECOVERIES,
    DivergenceWarning,
    TrainingError,
    _explosion_threshold,
    final_divergence,
    train,
)
from ppvae.vae import TabularVAE

# 120 rows: 12 held out, 108 trained in 4 minibatches of 32 per epoch
STEPS_PER_EPOCH = 4  # 108 training rows in batches of 32


def small_table(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.gamma(2.0, size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
        }
    )


def options(**changes) -> dict:
    # independent categorical slots: every parameter of p(x | z) is in `module.decoder`, which
    # the corruption below scales
    model = {"name": "tabular", "chain_rank": 0}
    base = dict(latent_dim=2, hidden=(8,), epochs=4, batch_size=32, patience=None, model=model)
    return {**base, "verbose": False, **changes}


class NaNLoss(ELBO):
    """The plain ELBO, but the loss reads NaN at the steps in ``nan_steps`` (the first time
    each is reached, or always with ``every_time``); records the module's state whenever
    step ``watch`` starts."""

    def __init__(self, nan_steps=(), every_time=False, watch=None):
        super().__init__()
        self.nan_steps, self.every_time, self.watch = set(nan_steps), every_time, watch
        self.seen: set[int] = set()
        self.watched: list[dict[str, torch.Tensor]] = []

    def loss_and_grads(self, model, guide, *args, **kwargs):
        if self.step == self.watch:
            self.watched.append({k: v.clone() for k, v in guide.__self__.state_dict().items()})
        loss = super().loss_and_grads(model, guide, *args, **kwargs)
        if self.step in self.nan_steps and (self.every_time or self.step not in self.seen):
            self.seen.add(self.step)
            return math.nan
        return loss


def test_thresholds_follow_their_formulas():
    assert _explosion_threshold(20.0) == 20.0 + EXPLOSION_FACTOR * 20.0
    assert _explosion_threshold(-0.5) == -0.5 + EXPLOSION_FACTOR * 1.0
    history = pd.DataFrame({"train_loss": [90.0, 7.0, 8.0], "val_loss": [60.0, 4.0, 44.5]})
    assert final_divergence(history, 1, "val_loss") is None
    assert "epoch 2" in final_divergence(history, 2, "val_loss")  # 44.5 > 4 + 10 * 4
    assert final_divergence(history.assign(val_loss=[6.0, 4.0, 44.0]), 2, "val_loss") is None
    assert final_divergence(history.assign(val_loss=[-0.5, -3, 7.5]), 2, "val_loss") is None
    assert final_divergence(history.assign(val_loss=[0.0, -0.5, 9.6]), 2, "val_loss")
    assert final_divergence(history.assign(val_loss=[6.0, 4.0, math.nan]), 2, "val_loss")
    assert final_divergence(history, 2, "train_loss") is None  # 8 <= 7 + 70
    assert final_divergence(history, 2, "absent") is None


def test_a_nan_loss_rolls_back_to_the_last_epoch_and_lowers_the_learning_rate():
    objective = NaNLoss(nan_steps={STEPS_PER_EPOCH + 1}, watch=STEPS_PER_EPOCH)
    with pytest.warns(DivergenceWarning, match=r"nan at step 5.*from 0\.001 to 0\.0001"):
        vae = TabularVAE(**options(objective=objective)).fit(small_table())
    assert vae.history_["epoch"].tolist() == [0, 1, 2, 3]
    assert vae.history_["lr"].tolist() == pytest.approx([1e-3, 1e-4, 1e-4, 1e-4])
    assert vae.history_["recoveries"].tolist() == [0, 1, 1, 1]
    assert vae.step_history_["step"].tolist() == list(range(4 * STEPS_PER_EPOCH))
    # the retried epoch 1 starts from exactly the state epoch 0 ended with
    first, retry = vae.objective_.watched
    for name, value in first.items():
        torch.testing.assert_close(retry[name], value, rtol=0, atol=0)


def test_a_loss_that_stays_nan_stops_with_a_clear_error():
    objective = NaNLoss(nan_steps={1}, every_time=True)
    with (
        pytest.warns(DivergenceWarning) as record,
        pytest.raises(TrainingError, match=r"after 3 rollbacks.*lower learning rate \(lr"),
    ):
        TabularVAE(**options(objective=objective)).fit(small_table())
    messages = [str(w.message) for w in record]
    assert len(messages) == MAX_RECOVERIES
    assert all(f"recovery {k} of {MAX_RECOVERIES}" in m for k, m in enumerate(messages, 1))


def corrupt_decoder_after(epoch: int, factor: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multiply the decoder's weights by ``factor`` once ``epoch`` has ended (a sudden jump
    of the parameters, as a too large step makes)."""

    def patched(module, *args, **kwargs):
        def hook(done: int, row: dict) -> None:
            if done == epoch:
                with torch.no_grad():
                    for p in module.decoder.parameters():
                        p.mul_(factor)

        return train(module, *args, on_epoch_end=hook, **kwargs)

    monkeypatch.setattr(ppvae.vae, "train", patched)


def test_an_exploding_epoch_is_rolled_back(monkeypatch):
    corrupt_decoder_after(1, 5.0, monkeypatch)
    old_floor = {"name": "normal", "min_scale": 1e-3}  # a small table's 0.1 dampens the jump
    with pytest.warns(DivergenceWarning, match="at epoch 2 .the training loss exploded"):
        vae = TabularVAE(**options(likelihood=old_floor)).fit(small_table())
    assert vae.history_["recoveries"].tolist() == [0, 0, 1, 1]
    assert vae.history_["train_loss"].max() < 10 and vae.divergence_ is None


# an objective that never settles (its warm-up spans the whole fit), so training cannot fall
# back on the best epoch's parameters
UNSETTLED = {"name": "anneal", "schedule": "linear", "warmup_fraction": 1.0}


def test_a_model_that_ends_far_above_its_best_loss_is_not_saved(tmp_path, monkeypatch):
    corrupt_decoder_after(1, 3.5, monkeypatch)  # ~50x worse, not exploded: no rollback
    with pytest.warns(DivergenceWarning, match="the trained model diverged"):
        vae = TabularVAE(**options(objective=UNSETTLED)).fit(small_table())
    assert vae.history_["recoveries"].max() == 0 and "val_loss" in vae.divergence_
    with pytest.raises(TrainingError, match=r"allow_diverged=True \(CLI: --allow-diverged\)"):
        vae.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []
    assert (vae.save(tmp_path / "model", allow_diverged=True) / "weights.pt").is_file()


def test_cli_fit_refuses_to_save_a_diverged_model(tmp_path, monkeypatch, capsys):
    csv, out = tmp_path / "table.csv", tmp_path / "model"
    small_table().to_csv(csv, index=False)
    args = ["fit", str(csv), "-o", str(out), "-q", "--epochs", "4", "--set", "patience=null"]
    args += ["--set", "latent_dim=2", "--set", "hidden=[8]", "--set", "batch_size=40"]
    args += ["--set", "model={name: tabular, chain_rank: 0}"]  # as options() above
    args += ["--objective", "{name: anneal, schedule: linear, warmup_fraction: 1.0}"]
    corrupt_decoder_after(1, 3.5, monkeypatch)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "warning: the trained model diverged" in err and "--allow-diverged" in err
    assert not out.exists()
    assert main([*args, "--allow-diverged", "--force"]) == 0
    assert "warning: the trained model diverged" in capsys.readouterr().err
    assert (out / "weights.pt").is_file() and not (tmp_path / "model.ckpt").exists()


@pytest.mark.parametrize("objective", ["elbo", "geco"])
def test_an_absurd_learning_rate_recovers_or_stops_and_is_never_saved_diverged(objective, tmp_path):
    vae = TabularVAE(**options(lr=9.9, epochs=6, objective=objective))
    with pytest.warns(DivergenceWarning, match="diverged"):
        try:
            vae.fit(small_table())
        except TrainingError as exc:
            assert "lower learning rate" in str(exc)
            return
    assert vae.history_["recoveries"].max() >= 1 and vae.history_["lr"].iloc[-1] < 9.9
    if vae.divergence_ is not None:
        with pytest.raises(TrainingError, match="allow_diverged"):
            vae.save(tmp_path / "model")
    else:
        saved = ppvae.vae.TabularVAE.save(vae, tmp_path / "model")
        weights = torch.load(saved / "weights.pt", weights_only=True)
        assert all(bool(torch.isfinite(w).all()) for w in weights.values())


def test_train_reports_each_recovery_as_an_event():
    table = small_table()
    vae = TabularVAE(**options(epochs=1)).fit(table)
    data = vae._table(table)
    with pytest.warns(DivergenceWarning):
        result = train(
            vae.model_,
            NaNLoss(nan_steps={0}),
            data,
            None,
            epochs=2,
            batch_size=40,
            lr=0.01,
            patience=None,
            generator=torch.Generator().manual_seed(0),
            verbose=False,
        )
    (event,) = result.events
    assert event["epoch"] == 0 and event["step"] == 0 and "nan" in event["reason"]
    assert event["lr_before"] == 0.01 and event["lr_after"] == pytest.approx(0.001)
