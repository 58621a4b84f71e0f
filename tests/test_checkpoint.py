"""Checkpoints: a fit interrupted between checkpoints and resumed ends exactly where an
uninterrupted fit with the same seed ends (ELBO and GECO, in-process and a CLI process killed
with SIGKILL); checkpoints of another fit, and tampered files, are refused."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import ppvae.vae
from ppvae.checkpoint import CheckpointError, Checkpointing, write_checkpoint
from ppvae.training import train
from ppvae.vae import TabularVAE, load

ROOT = Path(__file__).resolve().parents[1]
# GECO's warm-up (40 % of 12 steps) is still running at the checkpoint after epoch 2, so
# the window of recent reconstruction errors must be restored too.
GECO = {"name": "geco", "warmup_fraction": 0.4}


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
    base = dict(latent_dim=2, hidden=(8,), epochs=4, batch_size=40, patience=None)
    return {**base, "verbose": False, **changes}


def interrupt_after(epoch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next fit raise KeyboardInterrupt once ``epoch`` (0-based) has ended."""

    def stop(done: int, row: dict) -> None:
        if done == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(ppvae.vae, "train", partial(train, on_epoch_end=stop))


def assert_same_fit(a: TabularVAE, b: TabularVAE) -> None:
    for name, value in a.model_.state_dict().items():
        torch.testing.assert_close(b.model_.state_dict()[name], value, rtol=1e-6, atol=1e-7)
    pd.testing.assert_frame_equal(a.history_, b.history_)
    pd.testing.assert_frame_equal(a.step_history_, b.step_history_)
    assert a.objective_.state_dict() == b.objective_.state_dict()


@pytest.mark.parametrize("objective", ["elbo", GECO], ids=["elbo", "geco"])
def test_interrupted_fit_resumes_to_the_uninterrupted_result(objective, tmp_path, monkeypatch):
    df, path = small_table(), tmp_path / "fit.ckpt"
    reference = TabularVAE(**options(objective=objective)).fit(df)
    with monkeypatch.context() as patch:
        interrupt_after(2, patch)  # checkpoints after epochs 0 and 1 (every 2): epoch 2 is lost
        with pytest.raises(KeyboardInterrupt):
            TabularVAE(**options(objective=objective)).fit(
                df, checkpoint=Checkpointing(path, every_epochs=2, every_minutes=None)
            )
    assert torch.load(path, weights_only=True)["progress"]["epoch"] == 2
    resumed = TabularVAE(**options(objective=objective)).fit(df, checkpoint=path, resume=True)
    assert_same_fit(reference, resumed)


def test_a_checkpoint_of_other_settings_or_data_is_refused(tmp_path, monkeypatch):
    df, path = small_table(), tmp_path / "fit.ckpt"
    with monkeypatch.context() as patch:
        interrupt_after(1, patch)
        with pytest.raises(KeyboardInterrupt):
            TabularVAE(**options()).fit(df, checkpoint=Checkpointing(path, every_epochs=1))
    with pytest.raises(CheckpointError, match=r"lr: 0\.001 in the checkpoint, 0\.01 now"):
        TabularVAE(**options(lr=0.01)).fit(df, checkpoint=path, resume=True)
    other = df.copy()
    other.loc[0, "colour"] = "blue" if df.loc[0, "colour"] != "blue" else "red"
    with pytest.raises(CheckpointError, match="other data"):
        TabularVAE(**options()).fit(other, checkpoint=path, resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        TabularVAE(**options()).fit(df, checkpoint=tmp_path / "absent.ckpt", resume=True)
    with pytest.raises(ValueError, match="resume=True needs the checkpoint"):
        TabularVAE(**options()).fit(df, resume=True)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_tampered_checkpoint_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "fit.ckpt"
    torch.save({"format": "ppvae-checkpoint", "payload": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="not a readable ppvae checkpoint"):
        TabularVAE(**options()).fit(small_table(), checkpoint=path, resume=True)
    path.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(CheckpointError):
        TabularVAE(**options()).fit(small_table(), checkpoint=path, resume=True)
    assert not (tmp_path / "pwned").exists()


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "fit.ckpt"
    write_checkpoint(path, {"progress": {"epoch": 1}})

    def broken_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(path, {"progress": {"epoch": 2}})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["progress"] == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["fit.ckpt"]


def cli(*args: str, kill_after_epoch: int | None = None) -> subprocess.CompletedProcess:
    """``ppvae`` in a new process; optionally SIGKILLed by itself once an epoch has ended
    (after that epoch's checkpoint, if one was due)."""
    code = "import sys\nfrom ppvae.cli import main\n"
    if kill_after_epoch is not None:
        code += (
            "import os, signal\nfrom functools import partial\nimport ppvae.vae\n"
            "def stop(epoch, row):\n"
            f"    if epoch == {kill_after_epoch}:\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "ppvae.vae.train = partial(ppvae.vae.train, on_epoch_end=stop)\n"
        )
    code += "sys.exit(main(sys.argv[1:]))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_cli_fit_killed_between_checkpoints_resumes_to_the_same_model(tmp_path):
    csv, out = tmp_path / "table.csv", tmp_path / "model"
    small_table().to_csv(csv, index=False)
    fit = [str(csv), "-o", str(out), "--quiet", "--epochs", "5", "--seed", "3"]
    fit += ["--set", "latent_dim=2", "--set", "hidden=[8]", "--set", "batch_size=40"]
    fit += ["--objective", "{name: geco, warmup_fraction: 0.4}", "--checkpoint-every", "2"]
    killed = cli("fit", *fit, kill_after_epoch=2)
    assert killed.returncode == -signal.SIGKILL
    ckpt = tmp_path / "model.ckpt"
    assert not out.exists() and torch.load(ckpt, weights_only=True)["progress"]["epoch"] == 2
    resumed = cli("fit", *fit, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert not ckpt.exists()  # removed once the model is saved
    params = {**options(epochs=5, seed=3, objective=GECO), "hidden": [8]}
    reference = TabularVAE(**params).fit(pd.read_csv(csv))
    assert_same_fit(reference, load(out))


def test_cli_fit_interrupted_by_ctrl_c_keeps_its_checkpoint(tmp_path, monkeypatch, capsys):
    from ppvae.cli import main

    csv, out = tmp_path / "table.csv", tmp_path / "model"
    small_table().to_csv(csv, index=False)
    fit = ["fit", str(csv), "-o", str(out), "-q", "--epochs", "3", "--checkpoint-every", "1"]
    fit += ["--set", "latent_dim=2", "--set", "hidden=[8]", "--set", "batch_size=40"]
    with monkeypatch.context() as patch:
        interrupt_after(1, patch)
        assert main(fit) == 130
    assert "add --resume" in capsys.readouterr().err and not out.exists()
    assert torch.load(tmp_path / "model.ckpt", weights_only=True)["progress"]["epoch"] == 2
    assert main(fit) == 2  # a plain rerun would throw the checkpoint away
    assert "pass --resume to continue it, or --force" in capsys.readouterr().err
    assert main([*fit, "--resume"]) == 0
    assert load(out).history_["epoch"].tolist() == [0, 1, 2]
