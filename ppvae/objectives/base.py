"""The :class:`Objective` base class and the objectives registry.

An objective *is* a Pyro ELBO: :class:`Objective` subclasses :class:`pyro.infer.Trace_ELBO`
and overrides only the per-particle loss (as ``pyro.contrib.cevae`` does), so the traces are
Pyro's own (:func:`~ppvae.objectives.terms.importance_traces`), discrete latents get
``Trace_ELBO``'s score-function gradients, and :class:`pyro.infer.SVI` accepts every
objective. A subclass implements :meth:`Objective.particle_loss` on the per-row terms of one
particle (:class:`~ppvae.objectives.terms.ELBOTerms`); reweightings of the ELBO (beta,
annealing, GECO's multiplier) are Pyro site scalings applied in :meth:`Objective.scaled`.
All losses are the *negative* objective summed over the batch rows (Pyro's convention).
After each call :attr:`Objective.metrics` holds per-row means of the terms (``recon``,
``kl``, plus objective-specific ones such as ``beta`` or ``lambda``), averaged over particles,
which the trainer logs every step.

Objectives that change during training read the trainer's progress from
:meth:`Objective.set_progress` and update their state in :meth:`Objective.after_step`, which
the trainer calls once after every optimiser step (never inside ``loss_and_grads``), and keep
it in :meth:`Objective.state_dict`, saved with the model.

Any other :class:`pyro.infer.ELBO` instance (``pyro.infer.Trace_ELBO()``, say) is accepted
wherever an objective is: :data:`objectives` wraps it in :class:`PyroELBO`, which gives it
the defaults (no metrics, always settled, no state). Instances are deep-copied by
:meth:`~ppvae.registry.Registry.build`, so a fit never changes the instance it was given.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pyro.infer
import torch
from pyro.infer import Trace_ELBO
from pyro.poutine import Trace

from ppvae.objectives.terms import ELBOTerms, score_function_surrogate, trace_terms
from ppvae.registry import Registry, SpecError


class Objective(Trace_ELBO):
    """Base class: subclasses implement :meth:`particle_loss` (or, for a loss that is not
    built from :class:`ELBOTerms`, :meth:`differentiable_loss`)."""

    registry_name: str = ""
    #: Use closed-form KLs where they exist (Pyro's ``TraceMeanField_ELBO``).
    analytic_kl: bool = True
    #: Ask :func:`~ppvae.objectives.terms.trace_terms` for per-dimension KLs.
    keep_per_dim: bool = False
    #: Its validation loss is the plain ELBO, which the trainer computes anyway (no rerun).
    validation_is_elbo: bool = False

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

    def __init__(self, num_particles: int = 1) -> None:
        super().__init__(num_particles=num_particles)
        self.metrics: dict[str, float] = {}
        self.step = 0
        self.total_steps = 1

    # -- training progress ---------------------------------------------------------
    def set_progress(self, step: int, total_steps: int) -> None:
        """Told by the trainer before each optimisation step (0-based ``step``)."""
        self.step, self.total_steps = int(step), max(int(total_steps), 1)

    def after_step(self) -> None:
        """Called by the trainer once after each optimiser step; a stateful objective
        updates its state here from the :attr:`metrics` of the step's loss."""

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

    # -- the per-particle loss -----------------------------------------------------
    def scaled(self, model: Callable, guide: Callable) -> tuple[Callable, Callable]:
        """The model/guide pair this objective traces (a site scaling, or unchanged)."""
        return model, guide

    def particle_loss(self, terms: ELBOTerms) -> tuple[torch.Tensor, dict[str, float]]:
        """The differentiable loss of one particle (scalar) and its metrics."""
        raise NotImplementedError

    def _get_trace(self, model, guide, args, kwargs):
        return super()._get_trace(*self.scaled(model, guide), args, kwargs)

    def _differentiable_loss_particle(
        self, model_trace: Trace, guide_trace: Trace
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, surrogate)``: the particle's loss and the surrogate whose gradient is
        the estimator's (the loss plus ``Trace_ELBO``'s score-function terms)."""
        terms = trace_terms(model_trace, guide_trace, self.analytic_kl, self.keep_per_dim)
        loss, metrics = self.particle_loss(terms)
        self._particle_metrics.append(metrics)
        return loss, loss - score_function_surrogate(model_trace, guide_trace)

    # -- Pyro ELBO interface -------------------------------------------------------
    def differentiable_loss(
        self, model: Callable, guide: Callable, *args, **kwargs
    ) -> torch.Tensor:
        """The loss averaged over particles; its gradient is the surrogate's."""
        self._particle_metrics: list[dict[str, float]] = []
        loss = surrogate = 0.0
        count = 0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            particle, particle_surrogate = self._differentiable_loss_particle(
                model_trace, guide_trace
            )
            loss, surrogate, count = loss + particle, surrogate + particle_surrogate, count + 1
        keys = self._particle_metrics[0] if self._particle_metrics else {}
        self.metrics = {k: sum(m[k] for m in self._particle_metrics) / count for k in keys}
        loss, surrogate = loss / count, surrogate / count
        if not torch.is_tensor(surrogate) or not surrogate.requires_grad:
            return torch.as_tensor(loss).detach()
        return loss.detach() + (surrogate - surrogate.detach())

    @torch.no_grad()
    def loss(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        return float(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        """Backpropagate the surrogate (module-local parameters need no ``pyro.param`` site,
        unlike ``Trace_ELBO.loss_and_grads``) and return the loss."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward(retain_graph=self.retain_graph)
        return float(loss.detach())

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


def _adapt(spec: Any) -> Any:
    """A plain :class:`pyro.infer.ELBO` instance wrapped as an :class:`Objective`."""
    if isinstance(spec, pyro.infer.ELBO) and not isinstance(spec, Objective):
        return PyroELBO(spec)
    return spec


objectives: Registry[Objective] = Registry(
    "objective", base=Objective, adapt=_adapt, clone_instances=True
)
register = objectives.register


def _plain_options(elbo: pyro.infer.ELBO) -> dict[str, Any]:
    """The constructor options of ``elbo`` that are plain finite values (JSON-able)."""
    options = {}
    for name in inspect.signature(type(elbo).__init__).parameters:
        value = getattr(elbo, name, None)
        if isinstance(value, (bool, int, str)) or (
            isinstance(value, float) and value == value and abs(value) != float("inf")
        ):
            options[name] = value
    return options


@register("pyro")
class PyroELBO(Objective):
    """Any :class:`pyro.infer.ELBO` as an objective: ``elbo`` is an instance, or the name
    of a class in :mod:`pyro.infer` built with ``options`` (what :meth:`config` saves).

    >>> ppvae.TabularVAE(objective=pyro.infer.Trace_ELBO(num_particles=4))
    >>> ppvae.TabularVAE(objective={"name": "pyro", "elbo": "TraceGraph_ELBO"})
    """

    def __init__(
        self, elbo: pyro.infer.ELBO | str = "Trace_ELBO", options: dict[str, Any] | None = None
    ):
        super().__init__()
        if isinstance(elbo, str):
            cls = getattr(pyro.infer, elbo, None)
            if not (isinstance(cls, type) and issubclass(cls, pyro.infer.ELBO)):
                raise SpecError(
                    f"pyro: {elbo!r} is not an ELBO class of pyro.infer; pass an instance for "
                    "an ELBO defined elsewhere"
                )
            elbo = cls(**dict(options or {}))
        elif not isinstance(elbo, pyro.infer.ELBO):
            raise SpecError(f"pyro: elbo must be a pyro.infer.ELBO, got {type(elbo).__name__}")
        self.elbo = elbo

    def differentiable_loss(
        self, model: Callable, guide: Callable, *args, **kwargs
    ) -> torch.Tensor:
        return self.elbo.differentiable_loss(model, guide, *args, **kwargs)

    def loss(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        return float(self.elbo.loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        """Backpropagate ``differentiable_loss`` where the ELBO has one (so module-local
        parameters are trained); else the ELBO's own ``loss_and_grads``, which trains only
        parameters its traces register with ``pyro.param``/``pyro.module``."""
        if not hasattr(self.elbo, "differentiable_loss"):
            return float(self.elbo.loss_and_grads(model, guide, *args, **kwargs))
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward()
        return float(loss.detach())

    def config(self) -> dict[str, Any]:
        return {
            "name": "pyro",
            "elbo": type(self.elbo).__name__,
            "options": _plain_options(self.elbo),
        }
