r"""GECO (Rezende & Viola 2018, "Taming VAEs"): minimise the KL subject to a constraint on
the reconstruction error.

.. math::  \min\ \mathrm{KL}(q(z\mid x)\,\|\,p(z)) \quad \text{s.t.}\quad C(x) \le \kappa,
           \qquad \mathcal{L}_\lambda = \mathrm{KL} + \lambda\,(C - \kappa)

with :math:`C = -\log p(x\mid z)` the per-row reconstruction error (nats) and
:math:`\kappa` = ``tolerance``. The multiplier is updated after every step from a moving
average of the constraint, :math:`\bar C_t = \alpha \bar C_{t-1} + (1-\alpha) C_t`,

.. math::  \lambda_t = \operatorname{clip}\big(\lambda_{t-1}\,
           \exp(\eta\,(\bar C_t - \kappa)),\ \lambda_{min},\ \lambda_{max}\big)

so :math:`\lambda` grows while the constraint is violated and shrinks once it is met
(:math:`\eta` = ``lambda_lr``); the clip keeps training from blowing up. The update runs in
:meth:`GECO.after_step`, which the trainer calls after every optimiser step (call it yourself
after ``svi.step`` when training with :class:`pyro.infer.SVI`). The Lagrangian is one ELBO
with its observed sites scaled by :math:`\lambda`
(:func:`~ppvae.objectives.scaling.scale_observations`) minus the constant
:math:`\lambda\kappa`, so Pyro's estimators apply unchanged.
``tolerance="auto"``: for the first ``warmup_fraction`` of the steps the objective is the
plain ELBO (:math:`\lambda = 1`); then :math:`\kappa = (1 - \text{margin})` times the mean of C over the last
50 warm-up steps, a target ``margin`` (30 %) tighter than the reconstruction the ELBO had
reached. The ELBO keeps improving its reconstruction after the warm-up, so a smaller margin
asks for less than the ELBO ends with (on Adult, a 10 % margin ended with 4 active units
against the ELBO's 8; 30 % kept all 16, ``bench/results/objectives.md``): GECO then keeps
more information in z than the ELBO would.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import torch

from ppvae.objectives.base import Objective, register
from ppvae.objectives.scaling import scale_observations
from ppvae.objectives.terms import ELBOTerms

RECENT_STEPS = 50


@register("geco")
class GECO(Objective):
    """Constrained optimisation of the KL under a reconstruction tolerance (nats per row)."""

    def __init__(
        self,
        tolerance: float | str = "auto",
        alpha: float = 0.99,
        lambda_init: float = 1.0,
        lambda_lr: float = 0.01,
        lambda_min: float = 1e-2,
        lambda_max: float = 1e2,
        warmup_fraction: float = 0.1,
        margin: float = 0.3,
    ):
        super().__init__()
        if tolerance != "auto" and not isinstance(tolerance, (int, float)):
            raise ValueError(
                f"geco: tolerance must be a number (nats per row) or 'auto', got {tolerance!r}"
            )
        if not 0 <= alpha < 1:
            raise ValueError(f"geco: alpha must be in [0, 1), got {alpha!r}")
        if not 0 < lambda_min <= lambda_init <= lambda_max:
            raise ValueError("geco: need 0 < lambda_min <= lambda_init <= lambda_max")
        self.auto = tolerance == "auto"
        self.tolerance = None if self.auto else float(tolerance)
        self.alpha, self.lambda_lr = float(alpha), float(lambda_lr)
        self.lambda_min, self.lambda_max = float(lambda_min), float(lambda_max)
        self.warmup_fraction, self.margin = float(warmup_fraction), float(margin)
        self.lam = float(lambda_init)
        self.c_ma: float | None = None
        self._recent: deque[float] = deque(maxlen=RECENT_STEPS)

    @property
    def warming_up(self) -> bool:
        return self.tolerance is None

    @property
    def settled(self) -> bool:
        """After the warm-up, while the moving average of C is within 2 % above the
        tolerance or below it: the constraint is met, so early stopping may act."""
        return not self.warming_up and self.c_ma is not None and self.c_ma <= 1.02 * self.tolerance

    @property
    def multiplier(self) -> float:
        """The weight of the reconstruction term now: 1 during the warm-up, then lambda."""
        return 1.0 if self.warming_up else self.lam

    def scaled(self, model: Callable, guide: Callable) -> tuple[Callable, Callable]:
        return scale_observations(model, self.multiplier), guide

    def particle_loss(self, terms: ELBOTerms) -> tuple[torch.Tensor, dict[str, float]]:
        lam = self.multiplier
        kappa = 0.0 if self.warming_up else self.tolerance
        recon_error = float(-terms.recon.detach().mean()) / lam  # C, nats per row
        metrics = {
            "recon": recon_error,
            "kl": float(terms.kl.detach().mean()),
            "lambda": lam,
            "tolerance": math.nan if self.warming_up else self.tolerance,
            "constraint": math.nan
            if self.c_ma is None or self.warming_up
            else self.c_ma - self.tolerance,
        }
        return -terms.elbo() - lam * kappa * terms.batch_size, metrics

    def after_step(self) -> None:
        """Update the multiplier from the reconstruction error C of the step's loss."""
        if "recon" in self.metrics:
            self._update(self.metrics["recon"])

    def _update(self, c: float) -> None:
        """Moving average of C, then the multiplicative multiplier update."""
        self.c_ma = c if self.c_ma is None else self.alpha * self.c_ma + (1 - self.alpha) * c
        if self.warming_up:
            self._recent.append(c)
            if self.step + 1 >= self.warmup_fraction * self.total_steps:
                recent = sum(self._recent) / len(self._recent)
                self.tolerance = (1 - self.margin) * recent
                self.c_ma = recent  # the lagging average would start the constraint far off
            return
        step = self.lambda_lr * (self.c_ma - self.tolerance)
        self.lam = min(
            max(self.lam * math.exp(max(min(step, 10.0), -10.0)), self.lambda_min), self.lambda_max
        )
        self.metrics["lambda"] = self.lam
        self.metrics["constraint"] = self.c_ma - self.tolerance

    def state_dict(self) -> dict[str, Any]:
        return {
            "lambda": self.lam,
            "c_ma": self.c_ma,
            "tolerance": self.tolerance,
            "recent": list(self._recent),  # the warm-up window, so a checkpoint resumes exactly
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam = float(state.get("lambda", self.lam))
        self.c_ma = state.get("c_ma", self.c_ma)
        if state.get("tolerance") is not None:
            self.tolerance = float(state["tolerance"])
        elif self.auto and "tolerance" in state:  # a rollback to before the warm-up ended
            self.tolerance = None
        if "recent" in state:
            self._recent = deque(state["recent"], maxlen=RECENT_STEPS)
