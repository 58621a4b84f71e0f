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
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyro
import torch
from pyro import poutine
from tqdm.auto import tqdm

from ppvae.data.layout import TensorTable
from ppvae.objectives import ELBO, Objective, objectives

VALIDATION_ENV = "PPVAE_PYRO_VALIDATION"


def validation_during_training(validate: bool | None = None) -> bool:
    """Whether Pyro validation runs during training: ``validate`` if given, else on only
    when the environment variable ``PPVAE_PYRO_VALIDATION`` is ``1`` (off by default, for
    speed)."""
    if validate is not None:
        return bool(validate)
    return os.environ.get(VALIDATION_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


class TrainingError(RuntimeError):
    """Training diverged (a non-finite loss) or cannot start."""


@dataclass
class TrainResult:
    history: pd.DataFrame  # one row per epoch: epoch, train_loss, val_loss (per row)
    steps: pd.DataFrame  # one row per step: step, epoch, loss (per row), objective metrics
    best_epoch: int
    stopped_early: bool


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
    validate: bool | None = None,
) -> TrainResult:
    """Fit ``module`` (with ``.model``/``.guide``) by SVI; see the module docstring.

    ``objective``: a ppvae objective or any ``pyro.infer.ELBO`` (used as given, not copied).
    ``validate``: Pyro validation during training; None: ``PPVAE_PYRO_VALIDATION`` (off).
    """
    objective = objectives.adapt(objective)
    n = len(train_data)
    batch_size = max(1, min(int(batch_size), n))
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    model, guide = module.model, module.guide
    module.train()
    if on_start is not None:
        on_start()
    objective.set_progress(0, total_steps)
    params = _trainable_params(module, train_data[: min(n, batch_size)])
    optimizer = torch.optim.Adam(params, lr=lr)
    optimizer.zero_grad(set_to_none=True)

    epochs_rows, step_rows = [], []
    best, best_state, best_epoch, bad_epochs, step = math.inf, None, 0, 0, 0
    bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not verbose, leave=False)
    with pyro.validation_enabled(validation_during_training(validate)):
        for epoch in bar:
            order = torch.randperm(n, generator=generator).to(train_data.x_cont.device)
            epoch_loss = 0.0
            for start in range(0, n, batch_size):
                batch = train_data[order[start : start + batch_size]]
                objective.set_progress(step, total_steps)
                loss = objective.loss_and_grads(model, guide, batch) / len(batch)
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"the loss became {loss} at epoch {epoch}, step {step}; lower the learning "
                        f"rate (lr={lr}) or check the data for extreme values"
                    )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                objective.after_step()
                epoch_loss += loss * len(batch)
                step_rows.append({"step": step, "epoch": epoch, "loss": loss, **objective.metrics})
                step += 1
            train_loss = epoch_loss / n
            row = {"epoch": epoch, "train_loss": train_loss}
            if val_data is not None and len(val_data):
                module.eval()
                row["val_loss"] = validation_loss(module, val_data)
                row["val_objective"] = (
                    row["val_loss"]
                    if objective.validation_is_elbo
                    else _objective_on(objective, module, val_data)
                )
                module.train()
            epochs_rows.append(row)
            monitored = row.get("val_objective", train_loss)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
            if not objective.settled:
                best, best_state, bad_epochs = math.inf, None, 0
            elif monitored < best - 1e-4 * abs(best if math.isfinite(best) else 1.0):
                best, best_epoch, bad_epochs = monitored, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                bad_epochs += 1
                if patience is not None and bad_epochs >= patience:
                    break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return TrainResult(
        history=pd.DataFrame(epochs_rows),
        steps=pd.DataFrame(step_rows),
        best_epoch=best_epoch,
        stopped_early=len(epochs_rows) < epochs,
    )
