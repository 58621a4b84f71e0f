r"""Pyro's site scaling applied to the latent sites only, or to the observed sites only.

Pyro multiplies a site's log-density by ``msg["scale"]`` (that is what ``poutine.scale``
sets). Applying it to every *unobserved* sample site of both the model and the guide turns
:math:`\log p(x|z) - (\log q(z|x) - \log p(z))` into
:math:`\log p(x|z) - \beta\,(\log q(z|x) - \log p(z))`: the beta-VAE and annealing weights
(:func:`scale_latents`). Applying it to the *observed* sites of the model gives
:math:`\lambda \log p(x|z) - \mathrm{KL}`: GECO's Lagrangian up to a constant
(:func:`scale_observations`). Either way the objective stays one ELBO, scaled, for any user
model whose latents and observations are sample sites, and Pyro's estimators (score-function
terms included) apply unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from pyro.poutine.messenger import Messenger


class SiteScaleMessenger(Messenger):
    """Multiply the scale of every observed (``observed=True``) or every latent sample site
    by ``scale`` (>= 0)."""

    def __init__(self, scale: float, observed: bool = False):
        if not scale >= 0:
            raise ValueError(f"a site weight must be >= 0, got {scale!r}")
        super().__init__()
        self.scale, self.observed = float(scale), bool(observed)

    def _process_message(self, msg: dict) -> None:
        if msg["type"] == "sample" and bool(msg["is_observed"]) == self.observed:
            msg["scale"] = self.scale * msg["scale"]


def scale_latents(fn: Callable, scale: float) -> Callable:
    """``fn`` with the log-densities of its latent sites multiplied by ``scale``."""
    if not scale >= 0:
        raise ValueError(f"a KL weight must be >= 0, got {scale!r}")
    return SiteScaleMessenger(scale)(fn)


def scale_observations(fn: Callable, scale: float) -> Callable:
    """``fn`` with the log-densities of its observed sites multiplied by ``scale``."""
    return SiteScaleMessenger(scale, observed=True)(fn)
