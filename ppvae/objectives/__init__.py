"""Training objectives, chosen declaratively by name, dict or instance."""

from ppvae.objectives.base import Objective, objectives, register
from ppvae.objectives.elbo import ELBO, elbo

__all__ = ["ELBO", "Objective", "elbo", "objectives", "register"]
