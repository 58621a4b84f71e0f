"""The :class:`Objective` base class and the objectives registry.

An objective is a Pyro-style ELBO: it exposes ``loss``, ``differentiable_loss`` and
``loss_and_grads`` over a ``(model, guide, *args)`` triple, so :class:`pyro.infer.SVI`
accepts it. All losses are the *negative* objective summed over the batch rows (Pyro's
convention). After each call :attr:`Objective.metrics` holds per-row means of the terms
(``recon``, ``kl``, plus objective-specific ones such as ``beta`` or ``lambda``), which the
trainer logs every step.

Objectives that change during training (annealing, GECO) read the trainer's progress from
:meth:`Objective.set_progress` and keep their state in :meth:`state_dict`, saved with the
model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from ppvae.registry import Registry


class Objective:
    """Base class: subclasses implement :meth:`differentiable_loss`."""

    registry_name: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        def recording_init(self, *args: Any, **kw: Any) -> None:
            if not hasattr(self, "_init_args"):
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self._init_args = {k: v for k, v in bound.arguments.items() if k != "self"}
            init(self, *args, **kw)

        recording_init.__doc__ = init.__doc__
        recording_init.__signature__ = signature
        cls.__init__ = recording_init

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.step = 0
        self.total_steps = 1

    # -- training progress ---------------------------------------------------------
    def set_progress(self, step: int, total_steps: int) -> None:
        """Told by the trainer before each optimisation step (0-based ``step``)."""
        self.step, self.total_steps = int(step), max(int(total_steps), 1)

    #: Its validation loss is the plain ELBO, which the trainer computes anyway (no rerun).
    validation_is_elbo: bool = False

    @property
    def settled(self) -> bool:
        """True once the objective no longer changes from step to step (a schedule has run
        its course, GECO's warm-up is over and its constraint met). Early stopping acts, and
        the best parameters are tracked, only while the objective is settled."""
        return True

    def validation_loss(self, model: Callable, guide: Callable, data: Any) -> float:
        """The criterion early stopping monitors on held-out rows: this objective's own loss
        (summed over rows), so a beta-VAE is stopped on its beta-weighted bound."""
        return self.loss(model, guide, data)

    # -- Pyro ELBO interface -------------------------------------------------------
    def differentiable_loss(
        self, model: Callable, guide: Callable, *args, **kwargs
    ) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        with torch.no_grad():
            return float(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return float(loss.detach())

    def __call__(self, model: Callable, guide: Callable, *args, **kwargs) -> torch.Tensor:
        return self.differentiable_loss(model, guide, *args, **kwargs)

    # -- persistence ---------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """A JSON-able spec ``{"name": ..., **kwargs}`` that rebuilds this objective."""
        return {
            "name": type(self).registry_name or type(self).__name__,
            **getattr(self, "_init_args", {}),
        }

    def state_dict(self) -> dict[str, Any]:
        """Mutable training state (e.g. GECO's multiplier), JSON-able."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


objectives: Registry[Objective] = Registry("objective", base=Objective)
register = objectives.register
