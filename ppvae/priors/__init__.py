"""Priors p(z), chosen declaratively by name, dict or instance (see :mod:`ppvae.priors.base`)."""

from ppvae.priors.base import Prior, StandardNormal, priors, register, standard_normal

__all__ = ["Prior", "StandardNormal", "priors", "register", "standard_normal"]
