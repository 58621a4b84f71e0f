"""Training objectives, chosen declaratively by name, dict or instance.

>>> ppvae.TabularVAE(objective="elbo")
>>> ppvae.TabularVAE(objective={"name": "beta", "beta": 4.0})
>>> ppvae.TabularVAE(objective={"name": "anneal", "schedule": "cyclical", "cycles": 4})
>>> ppvae.TabularVAE(objective={"name": "free_bits", "nats_per_dim": 0.25})
>>> ppvae.TabularVAE(objective={"name": "geco", "tolerance": "auto"})

Register your own with ``@ppvae.objectives.register("name")`` on an :class:`Objective`
subclass and check it with :func:`ppvae.objectives.conformance.check_objective`.
"""

from ppvae.objectives.base import Objective, objectives, register
from ppvae.objectives.elbo import ELBO, elbo
from ppvae.objectives.free_bits import FreeBits, free_bits
from ppvae.objectives.geco import GECO, geco
from ppvae.objectives.iwae import IWAE, iwae
from ppvae.objectives.scaling import scale_latents
from ppvae.objectives.terms import elbo_terms
from ppvae.objectives.weighted import AnnealedELBO, BetaELBO, anneal, beta, kl_weight

__all__ = [
    "ELBO",
    "GECO",
    "IWAE",
    "AnnealedELBO",
    "BetaELBO",
    "FreeBits",
    "Objective",
    "anneal",
    "beta",
    "elbo",
    "elbo_terms",
    "free_bits",
    "geco",
    "iwae",
    "kl_weight",
    "objectives",
    "register",
    "scale_latents",
]
