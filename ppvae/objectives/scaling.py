"""``scale_latents``: Pyro's site scaling applied to the latent sites only.

Pyro multiplies a site's log-density by ``msg["scale"]`` (that is what ``poutine.scale``
sets). Applying it to every *unobserved* sample site of both the model and the guide turns
:math:`\\log p(x|z) - (\\log q(z|x) - \\log p(z))` into
:math:`\\log p(x|z) - \\beta\\,(\\log q(z|x) - \\log p(z))`: the beta-VAE and annealing weights
without a hand-written loss, for any user model whose latents are sample sites.
"""

from __future__ import annotations

from collections.abc import Callable

from pyro.poutine.messenger import Messenger


class LatentScaleMessenger(Messenger):
    """Multiply the scale of every latent (unobserved) sample site by ``scale`` (>= 0)."""

    def __init__(self, scale: float):
        if not scale >= 0:
            raise ValueError(f"a KL weight must be >= 0, got {scale!r}")
        super().__init__()
        self.scale = float(scale)

    def _process_message(self, msg: dict) -> None:
        if msg["type"] == "sample" and not msg["is_observed"]:
            msg["scale"] = self.scale * msg["scale"]


def scale_latents(fn: Callable, scale: float) -> Callable:
    """``fn`` with the log-densities of its latent sites multiplied by ``scale``."""
    return LatentScaleMessenger(scale)(fn)
