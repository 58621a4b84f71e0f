"""Stochastic variational inference over minibatches of rows, with early stopping.

Each step draws a minibatch, asks the objective (a :class:`pyro.infer.ELBO`) for
``loss_and_grads`` on the model/guide pair, takes one Adam step over the module's own
parameters (``module.parameters()``: parameters are module-local) plus any ``pyro.param``
site the pair registers beyond them (found once by a ``poutine.trace(param_only=True)`` of
the first batch), then calls the objective's ``after_step`` hook (GECO's multiplier update).
Pyro's global param store is read, never written to or pruned.

Pyro validation (shape, support and NaN checks) costs about a quarter of a training step
(bench/speed.py measures it side by side), which would take ppvae past 1.2x the plain-PyTorch
loop, so training runs with it off by default; set the environment variable
``PPVAE_PYRO_VALIDATION=1`` (or pass ``validate=True`` here) to train with it on, e.g. while
writing your own model. Outside training ppvae leaves Pyro's setting alone, and the global
setting is restored after training. After each epoch the plain
ELBO on the held-out rows gives an honest validation loss (``val_loss``), and the
objective's own loss on them (``val_objective``: a beta-VAE's weighted bound, GECO's
Lagrangian) is what early stopping monitors: training stops when it has not improved for
``patience`` epochs and the best parameters are restored. While the objective is not yet
settled (an annealing schedule still rising, GECO warming up or its constraint unmet), no
epoch counts as best or as bad, so a schedule always runs its course.

Long fits: the state at the end of each epoch is kept in memory as the last good state; a
non-finite loss or an exploding epoch (see ``EXPLOSION_FACTOR``) rolls back to it with a
lower learning rate, and with ``checkpoint=`` it is also written to disk every few epochs or
minutes so that a killed fit resumes exactly (:mod:`ppvae.checkpoint`, docs/long_fits.md).
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyro
import torch
from pyro import poutine
from tqdm.auto import tqdm

from ppvae.checkpoint import Checkpointing, fingerprint, read_checkpoint, rng_state, set_rng_state
from ppvae.data.layout import TensorTable
from ppvae.objectives import ELBO, Objective, objectives

#: An epoch whose training loss per row exceeds the median of the last RECENT_EPOCHS epochs
#: (the first step's loss before any epoch ends) by EXPLOSION_FACTOR * max(|median|, 1 nat)
#: has diverged, like a non-finite loss; each time, training rolls back to the end of the
#: previous epoch and multiplies the learning rate by LR_DROP, at most MAX_RECOVERIES times.
EXPLOSION_FACTOR = 1e3
RECENT_EPOCHS = 5
LR_DROP = 0.1
MAX_RECOVERIES = 3
#: A trained model whose final validation loss is above best + FINAL_FACTOR * max(|best|, 1)
#: is diverged: ``save`` refuses it unless ``allow_diverged=True``.
FINAL_FACTOR = 10.0

VALIDATION_ENV = "PPVAE_PYRO_VALIDATION"


def validation_during_training(validate: bool | None = None) -> bool:
    """Whether Pyro validation runs during training: ``validate`` if given, else on only
    when the environment variable ``PPVAE_PYRO_VALIDATION`` is ``1`` (off by default, for
    speed)."""
    if validate is not None:
        return bool(validate)
    return os.environ.get(VALIDATION_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


class TrainingError(RuntimeError):
    """Training diverged beyond recovery, cannot start, or left a diverged model."""


class DivergenceWarning(UserWarning):
    """Training diverged and rolled back with a lower learning rate, or ended diverged."""


@dataclass
class TrainResult:
    history: pd.DataFrame  # one row per epoch: epoch, train_loss, val_loss (per row), lr, ...
    steps: pd.DataFrame  # one row per step: step, epoch, loss (per row), objective metrics
    best_epoch: int
    stopped_early: bool
    events: list[dict[str, Any]] = field(default_factory=list)  # one per divergence recovery
    divergence: str | None = None  # why the final model is far worse than the best, if it is


def _trainable_params(module: torch.nn.Module, batch: TensorTable) -> list[torch.Tensor]:
    """``module.parameters()`` plus the unconstrained tensor of every ``pyro.param`` site
    the model/guide pair registers (found by a param-only trace of ``batch``; ``pyro.module``
    sites of the module's own networks are the same tensors, or, when another model left
    entries under the same names in the store, tensors no forward pass uses, which get no
    gradient). The param store is not modified."""
    device = next(iter(module.parameters()), torch.zeros(())).device
    cuda = [device.index or 0] if device.type == "cuda" else []
    # a side trace: it must not consume the random stream that training will use
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        with poutine.trace(param_only=True) as capture:
            guide_trace = poutine.trace(module.guide).get_trace(batch)
            poutine.replay(module.model, trace=guide_trace)(batch)
    params = {id(p): p for p in module.parameters() if p.requires_grad}
    for site in capture.trace.nodes.values():
        tensor = site["value"].unconstrained()
        params.setdefault(id(tensor), tensor)
    if not params:
        raise TrainingError(
            "the model/guide pair has no parameters: give the module nn.Parameters, or use "
            "pyro.param(...) for everything that should be learned"
        )
    return list(params.values())


@torch.no_grad()
def validation_loss(module: torch.nn.Module, data: TensorTable, chunk: int = 8192) -> float:
    """Mean negative ELBO per row of ``data`` (plain ELBO, whatever the training objective)."""
    elbo, total = ELBO(), 0.0
    for start in range(0, len(data), chunk):
        total += elbo.loss(module.model, module.guide, data[start : start + chunk])
    return total / max(len(data), 1)


def _objective_on(
    objective: Objective, module: torch.nn.Module, data: TensorTable, chunk: int = 8192
) -> float:
    """The objective's validation loss per row of ``data``, its metrics left as they were."""
    metrics, total = dict(objective.metrics), 0.0
    for start in range(0, len(data), chunk):
        total += objective.validation_loss(module.model, module.guide, data[start : start + chunk])
    objective.metrics = metrics
    return total / max(len(data), 1)


def _explosion_threshold(reference: float) -> float:
    """A per-row loss above this, ``EXPLOSION_FACTOR`` times ``max(|reference|, 1 nat)``
    above the reference, counts as diverged (the scale term keeps it meaningful for losses
    near zero or negative, which continuous likelihoods can give)."""
    return reference + EXPLOSION_FACTOR * max(abs(reference), 1.0)


def final_divergence(history: pd.DataFrame, final_epoch: int, column: str) -> str | None:
    """Why the model left by training is far worse than the best epoch it reached, or None.

    Compares ``history[column]`` (a loss comparable across epochs: the plain validation
    ELBO) at ``final_epoch`` with its best epoch: more than ``FINAL_FACTOR`` times
    ``max(|best|, 1 nat)`` above it (ten times worse, for a positive loss) is diverged.
    """
    if column not in history:
        return None
    losses = history[column].to_numpy(dtype=float)
    final = float(losses[final_epoch])
    finite = losses[pd.notna(losses) & (abs(losses) != math.inf)]
    if not len(finite):
        return f"no finite {column} in any epoch"
    best = float(finite.min())
    if math.isfinite(final) and final <= best + FINAL_FACTOR * max(abs(best), 1.0):
        return None
    return (
        f"its final {column} ({final:.4g} nats/row, epoch {final_epoch}) is far above the best "
        f"epoch's ({best:.4g})"
    )


@dataclass
class _Progress:
    """The loop's bookkeeping, as a checkpoint or a rollback restores it."""

    epoch: int = 0  # epochs completed
    step: int = 0
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    recoveries: int = 0
    reference: float = math.nan  # first step's loss: the divergence yardstick before epoch 1
    epochs_rows: list[dict[str, Any]] = field(default_factory=list)
    step_rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None

    def counters(self) -> dict[str, Any]:
        keys = ("epoch", "step", "best", "best_epoch", "bad_epochs", "recoveries", "reference")
        return {k: getattr(self, k) for k in keys}

    def recent_reference(self) -> float:
        """Median training loss of the last ``RECENT_EPOCHS`` epochs (or the first step's)."""
        recent = [row["train_loss"] for row in self.epochs_rows[-RECENT_EPOCHS:]]
        return float(torch.tensor(recent).median()) if recent else self.reference


class _Diverged(Exception):
    """Raised inside an epoch; the loop rolls back and retries with a lower rate."""


class _TrainingState:
    """The tensors a fit changes (module, optimised tensors, Adam, objective), captured
    once per epoch as the last good state and written to checkpoints."""

    def __init__(self, module, params, optimizer, objective, progress: _Progress):
        self.module, self.params, self.optimizer = module, params, optimizer
        self.objective, self.progress = objective, progress

    @torch.no_grad()
    def capture(self) -> dict[str, Any]:
        return {
            "module": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
            "params": [p.detach().clone() for p in self.params],
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "objective": json.dumps(self.objective.state_dict()),
            "progress": self.progress.counters(),
            "rows": (len(self.progress.epochs_rows), len(self.progress.step_rows)),
            "best_state": self.progress.best_state,
        }

    @torch.no_grad()
    def restore(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        for param, value in zip(self.params, state["params"], strict=True):
            param.copy_(value)
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.objective.load_state_dict(json.loads(state["objective"]))
        for key, value in state["progress"].items():
            setattr(self.progress, key, value)
        n_epochs, n_steps = state["rows"]
        del self.progress.epochs_rows[n_epochs:], self.progress.step_rows[n_steps:]
        self.progress.best_state = state["best_state"]

    def checkpoint(self, good: Mapping[str, Any], rng: Mapping[str, torch.Tensor]) -> dict:
        """``good`` (just captured) with what only a checkpoint needs: the RNG states and
        every history row so far (steps as one float64 tensor, not a list of dicts)."""
        steps = pd.DataFrame(self.progress.step_rows)
        return {
            **good,
            "rng": dict(rng),
            "history": json.dumps(self.progress.epochs_rows),
            "events": json.dumps(self.progress.events),
            "step_columns": list(steps.columns),
            "step_values": torch.tensor(steps.to_numpy(dtype="float64")),
        }

    def load_rows(self, state: Mapping[str, Any]) -> None:
        self.progress.epochs_rows[:] = json.loads(state["history"])
        self.progress.events[:] = json.loads(state["events"])
        columns = state["step_columns"]
        self.progress.step_rows[:] = [
            {k: int(v) if k in ("step", "epoch") else v for k, v in zip(columns, row)}
            for row in state["step_values"].tolist()
        ]


def _shuffled(data: TensorTable, batch_size: int, generator: torch.Generator, device: torch.device):
    """One epoch of minibatches of ``data`` in a random order."""
    order = torch.randperm(len(data), generator=generator).to(device)
    for start in range(0, len(data), batch_size):
        yield data[order[start : start + batch_size]]


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def train(
    module: torch.nn.Module,
    objective: Objective,
    train_data: TensorTable,
    val_data: TensorTable | None,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int | None,
    generator: torch.Generator,
    verbose: bool = True,
    on_start: Callable[[], None] | None = None,
    checkpoint: Checkpointing | None = None,
    max_recoveries: int = MAX_RECOVERIES,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    validate: bool | None = None,
    sync: Any = None,
) -> TrainResult:
    """Fit ``module`` (with ``.model``/``.guide``) by SVI; see the module docstring.

    ``objective``: a ppvae objective or any ``pyro.infer.ELBO`` (used as given, not copied).
    ``checkpoint``: where and how often to write checkpoints, and whether to resume from one
    (:class:`ppvae.checkpoint.Checkpointing`); ``max_recoveries``: rollbacks allowed after a
    divergence before :class:`TrainingError`; ``on_epoch_end(epoch, row)``: called after each
    completed epoch with its history row (an exception it raises ends the fit and reaches the
    caller: ``ppvae.collapse_watch``); ``validate``: Pyro validation during training; None:
    ``PPVAE_PYRO_VALIDATION`` (off). ``train_data`` may also be a stream
    (:class:`ppvae.data.streaming.StreamTable`: ``len``, ``head``, ``batches``, ``device``);
    ``sync``: the :class:`ppvae.distributed.Synchroniser` of a data-parallel fit.
    """
    objective = objectives.adapt(objective)
    n = len(train_data)
    batch_size = max(1, min(int(batch_size), n))
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    model, guide = module.model, module.guide
    streamed = not isinstance(train_data, TensorTable)
    device = train_data.device if streamed else train_data.x_cont.device
    module.train()
    if on_start is not None:
        on_start()
    objective.set_progress(0, total_steps)
    first = train_data.head(batch_size) if streamed else train_data[: min(n, batch_size)]
    params = _trainable_params(module, first)
    optimizer = torch.optim.Adam(params, lr=lr)
    optimizer.zero_grad(set_to_none=True)

    progress = _Progress()
    state = _TrainingState(module, params, optimizer, objective, progress)
    if checkpoint is not None:
        settings = {
            **checkpoint.settings,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "patience": patience,
            "objective": objective.config(),
        }
        checkpoint.fingerprint = fingerprint(settings, train_data, val_data)
        if checkpoint.resume:
            saved = read_checkpoint(checkpoint.path, checkpoint.fingerprint)
            state.restore(saved)
            state.load_rows(saved)
            set_rng_state(saved["rng"], device, generator)
    good = state.capture()

    def recover(reason: str) -> None:
        """Roll back to the last good state and lower the learning rate, or give up."""
        before = _current_lr(optimizer)
        if progress.recoveries >= max_recoveries:
            raise TrainingError(
                f"training diverged ({reason}, epoch {progress.epoch}) after {max_recoveries} "
                f"rollbacks that lowered the learning rate from {lr:g} to {before:g}; start "
                "with a lower learning rate (lr, CLI: --set lr=...) or check the data for "
                "extreme values"
            )
        recoveries = progress.recoveries + 1
        optimizer.zero_grad(set_to_none=True)
        state.restore(good)
        _set_lr(optimizer, before * LR_DROP)
        progress.recoveries = recoveries
        event = {
            "epoch": progress.epoch,
            "step": progress.step,
            "reason": reason,
            "lr_before": before,
            "lr_after": before * LR_DROP,
        }
        progress.events.append(event)
        warnings.warn(
            f"ppvae: training diverged at epoch {progress.epoch} ({reason}); rolled back to the "
            f"last good state (after {progress.epoch} epochs) and lowered the learning rate "
            f"from {before:g} to {before * LR_DROP:g} (recovery {recoveries} of "
            f"{max_recoveries})",
            DivergenceWarning,
            stacklevel=3,
        )

    def run_epoch(epoch: int) -> dict[str, float]:
        if streamed:
            batches = train_data.batches(batch_size, generator)
        else:
            batches = _shuffled(train_data, batch_size, generator, device)
        epoch_loss = 0.0
        for batch in batches:
            objective.set_progress(progress.step, total_steps)
            try:
                loss = objective.loss_and_grads(model, guide, batch) / len(batch)
            except ValueError:  # Pyro's validation refusing non-finite parameters
                if all(bool(torch.isfinite(p).all()) for p in params):
                    raise
                loss = math.nan
            if sync is not None:
                loss = sync.gradients(params, loss, objective.metrics)
            if not math.isfinite(loss):
                raise _Diverged(f"the loss became {loss} at step {progress.step}")
            if math.isnan(progress.reference):
                progress.reference = loss
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            objective.after_step()
            epoch_loss += loss * len(batch)
            progress.step_rows.append(
                {"step": progress.step, "epoch": epoch, "loss": loss, **objective.metrics}
            )
            progress.step += 1
        train_loss = epoch_loss / n if sync is None else sync.average(epoch_loss / n, n)
        threshold = _explosion_threshold(progress.recent_reference())
        if train_loss > threshold:
            raise _Diverged(
                f"the training loss exploded to {train_loss:.4g} nats/row, above {threshold:.4g}"
            )
        row = {"epoch": epoch, "train_loss": train_loss}
        if val_data is not None and len(val_data):
            module.eval()
            row["val_loss"] = validation_loss(module, val_data)
            row["val_objective"] = (
                row["val_loss"]
                if objective.validation_is_elbo
                else _objective_on(objective, module, val_data)
            )
            if sync is not None:
                row["val_loss"] = sync.average(row["val_loss"], len(val_data))
                row["val_objective"] = sync.average(row["val_objective"], len(val_data))
            module.train()
            if not math.isfinite(row["val_loss"] + row["val_objective"]):
                raise _Diverged(
                    f"the validation loss became {row['val_loss']} (objective: "
                    f"{row['val_objective']})"
                )
        row["lr"] = _current_lr(optimizer)
        row["recoveries"] = progress.recoveries
        return row

    bar = tqdm(
        total=epochs,
        initial=progress.epoch,
        desc="fit",
        unit="epoch",
        disable=not verbose,
        leave=False,
    )
    stopped = False
    try:
        with pyro.validation_enabled(validation_during_training(validate)):
            while progress.epoch < epochs and not stopped:
                epoch = progress.epoch
                try:
                    row = run_epoch(epoch)
                except _Diverged as exc:
                    recover(str(exc))
                    continue
                progress.epochs_rows.append(row)
                progress.epoch += 1
                bar.update(1)
                monitored = row.get("val_objective", row["train_loss"])
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
                if not objective.settled:
                    progress.best, progress.best_state, progress.bad_epochs = math.inf, None, 0
                elif monitored < progress.best - 1e-4 * abs(
                    progress.best if math.isfinite(progress.best) else 1.0
                ):
                    progress.best, progress.best_epoch, progress.bad_epochs = monitored, epoch, 0
                    progress.best_state = copy.deepcopy(module.state_dict())
                else:
                    progress.bad_epochs += 1
                    stopped = patience is not None and progress.bad_epochs >= patience
                if sync is not None:
                    stopped = sync.agree(stopped)
                good = state.capture()
                if checkpoint is not None and not stopped and progress.epoch < epochs:
                    if checkpoint.due_by_epoch(progress.epoch) or checkpoint.due_by_time():
                        checkpoint.write(state.checkpoint(good, rng_state(device, generator)))
                if on_epoch_end is not None:
                    on_epoch_end(epoch, row)
    finally:  # also when on_epoch_end raises: the progress bar does not stay
        bar.close()
    final_epoch = len(progress.epochs_rows) - 1
    if progress.best_state is not None:
        module.load_state_dict(progress.best_state)
        final_epoch = progress.best_epoch
    module.eval()
    history = pd.DataFrame(progress.epochs_rows)
    # the training loss is comparable across epochs only if the objective is the plain ELBO
    column = "val_loss" if "val_loss" in history else "train_loss"
    comparable = column == "val_loss" or objective.validation_is_elbo
    divergence = final_divergence(history, final_epoch, column) if comparable else None
    if divergence is not None:
        warnings.warn(
            f"ppvae: the trained model diverged: {divergence}; saving it needs "
            "allow_diverged=True (CLI: --allow-diverged)",
            DivergenceWarning,
            stacklevel=2,
        )
    return TrainResult(
        history=history,
        steps=pd.DataFrame(progress.step_rows),
        best_epoch=progress.best_epoch,
        stopped_early=stopped,
        events=list(progress.events),
        divergence=divergence,
    )
