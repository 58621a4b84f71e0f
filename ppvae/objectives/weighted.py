r"""KL-weighted ELBOs: the beta-VAE and KL annealing.

.. math::  \mathcal{L}_\beta(x) = \mathbb{E}_q[\log p(x\mid z)] - \beta\,\mathrm{KL}(q(z\mid x)\,\|\,p(z))

One ELBO, scaled: the weight is Pyro's site scaling on the latent sites of model and guide
(:func:`~ppvae.objectives.scaling.scale_latents`), so the estimator (closed-form KL,
score-function terms) is the ELBO's.

- ``beta`` (Higgins et al. 2017): a constant :math:`\beta`; :math:`\beta = 0` is an
  auto-encoder, :math:`\beta > 1` trades reconstruction for a simpler posterior.
- ``anneal``: :math:`\beta_t` warms up from 0, linearly (Bowman et al. 2016) or in cycles
  (Fu et al. 2019), see :func:`kl_weight`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ppvae.objectives.base import Objective, register
from ppvae.objectives.scaling import scale_latents
from ppvae.objectives.terms import ELBOTerms

SCHEDULES = ("linear", "cyclical")


class WeightedELBO(Objective):
    """Base of KL-weighted ELBOs; subclasses define :meth:`current_weight`."""

    def current_weight(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def scaled(self, model: Callable, guide: Callable) -> tuple[Callable, Callable]:
        weight = self.current_weight()
        return scale_latents(model, weight), scale_latents(guide, weight)

    def particle_loss(self, terms: ELBOTerms) -> tuple[torch.Tensor, dict[str, float]]:
        metrics = {
            "recon": -float(terms.recon.detach().mean()),
            "kl": float(terms.kl_raw.detach().mean()),
            "beta": self.current_weight(),
        }
        return -terms.elbo(), metrics


@register("beta")
class BetaELBO(WeightedELBO):
    """The beta-VAE objective with a constant KL weight ``beta``."""

    def __init__(self, beta: float = 4.0):
        super().__init__()
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta < 0:
            raise ValueError(f"beta: beta must be a number >= 0, got {beta!r}")
        self.beta = float(beta)

    def current_weight(self) -> float:
        return self.beta


def kl_weight(
    step: int,
    total_steps: int,
    schedule: str = "cyclical",
    cycles: int = 4,
    ratio: float = 0.5,
    beta_max: float = 1.0,
    warmup_fraction: float = 0.3,
) -> float:
    r"""The KL weight at 0-based ``step`` of ``total_steps``.

    - ``linear``: :math:`\beta_t = \beta_{max} \min(1, t / (f T))` with ``f = warmup_fraction``.
    - ``cyclical``: the run is split into ``cycles`` cycles of length :math:`L = T / M`; within
      each, :math:`\tau = (t \bmod L) / L` and :math:`\beta_t = \beta_{max} \min(1, \tau / R)`
      with ``R = ratio``: the weight rises from 0 over the first ``ratio`` of each cycle, then
      stays at ``beta_max`` (Fu et al. 2019).
    """
    total = max(int(total_steps), 1)
    if schedule == "linear":
        return beta_max * min(1.0, step / max(warmup_fraction * total, 1e-12))
    if schedule == "cyclical":
        length = total / cycles
        tau = (step % length) / length
        return beta_max * min(1.0, tau / ratio)
    raise ValueError(f"anneal: schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


@register("anneal")
class AnnealedELBO(WeightedELBO):
    """The ELBO with a KL weight that follows :func:`kl_weight` over training."""

    def __init__(
        self,
        schedule: str = "cyclical",
        cycles: int = 4,
        ratio: float = 0.5,
        beta_max: float = 1.0,
        warmup_fraction: float = 0.3,
    ):
        super().__init__()
        if schedule not in SCHEDULES:
            raise ValueError(
                f"anneal: schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}"
            )
        if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
            raise ValueError(f"anneal: cycles must be a positive integer, got {cycles!r}")
        if not 0 < ratio <= 1 or not 0 < warmup_fraction <= 1:
            raise ValueError("anneal: ratio and warmup_fraction must be in (0, 1]")
        self.schedule, self.cycles, self.ratio = schedule, cycles, float(ratio)
        self.beta_max, self.warmup_fraction = float(beta_max), float(warmup_fraction)

    @property
    def settled(self) -> bool:
        """From the step the weight reaches ``beta_max`` for the last time on."""
        total = self.total_steps
        if self.schedule == "linear":
            return self.step >= self.warmup_fraction * total
        return self.step >= total * (self.cycles - 1 + self.ratio) / self.cycles

    def current_weight(self) -> float:
        return kl_weight(
            self.step,
            self.total_steps,
            self.schedule,
            self.cycles,
            self.ratio,
            self.beta_max,
            self.warmup_fraction,
        )
