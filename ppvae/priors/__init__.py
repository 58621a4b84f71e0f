"""Priors p(z), chosen declaratively by name, dict or instance.

>>> ppvae.TabularVAE(prior="flow")
>>> ppvae.TabularVAE(prior={"name": "mixture", "components": 10})
>>> ppvae.TabularVAE(prior=ppvae.priors.Flow(kind="spline_coupling", layers=4))

Register your own with ``@ppvae.priors.register("name")`` on a :class:`Prior` subclass and
check it with :func:`ppvae.priors.conformance.check_prior`.
"""

from ppvae.priors.aggregate import AggregatePrior, aggregate
from ppvae.priors.base import Prior, StandardNormal, priors, register, standard_normal
from ppvae.priors.flow import Flow, flow
from ppvae.priors.mixture import Mixture, mixture
from ppvae.priors.vamp import VampPrior, vamp

__all__ = [
    "AggregatePrior",
    "Flow",
    "Mixture",
    "Prior",
    "StandardNormal",
    "VampPrior",
    "aggregate",
    "flow",
    "mixture",
    "priors",
    "register",
    "standard_normal",
    "vamp",
]
