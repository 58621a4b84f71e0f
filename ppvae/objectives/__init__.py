"""Training objectives, chosen declaratively by name, dict or instance. Every objective is
a :class:`pyro.infer.ELBO` (usable with :class:`pyro.infer.SVI`), and any Pyro ELBO
instance is accepted where an objective is.

>>> ppvae.TabularVAE(objective="elbo")
>>> ppvae.TabularVAE(objective={"name": "beta", "beta": 4.0})
>>> ppvae.TabularVAE(objective={"name": "anneal", "schedule": "cyclical", "cycles": 4})
>>> ppvae.TabularVAE(objective={"name": "free_bits", "nats_per_dim": 0.25})
>>> ppvae.TabularVAE(objective={"name": "geco", "tolerance": "auto"})
>>> ppvae.TabularVAE(objective=pyro.infer.Trace_ELBO())

Register your own with ``@ppvae.objectives.register("name")`` on an :class:`Objective`
subclass (implement ``particle_loss``) and check it with
:func:`ppvae.objectives.conformance.check_objective`.
"""

from ppvae.objectives.base import Objective, PyroELBO, objectives, register
from ppvae.objectives.elbo import ELBO
from ppvae.objectives.free_bits import FreeBits
from ppvae.objectives.geco import GECO
from ppvae.objectives.iwae import IWAE
from ppvae.objectives.scaling import scale_latents, scale_observations
from ppvae.objectives.terms import elbo_terms
from ppvae.objectives.weighted import AnnealedELBO, BetaELBO, kl_weight

__all__ = [
    "ELBO",
    "GECO",
    "IWAE",
    "AnnealedELBO",
    "BetaELBO",
    "FreeBits",
    "Objective",
    "PyroELBO",
    "elbo_terms",
    "kl_weight",
    "objectives",
    "register",
    "scale_latents",
    "scale_observations",
]
