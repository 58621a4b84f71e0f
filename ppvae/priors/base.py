"""The :class:`Prior` base class and the priors registry.

A prior is a ``torch.nn.Module`` whose ``forward()`` returns a Pyro distribution over the
latent code, ``batch_shape == ()`` and ``event_shape == (latent_dim,)``. Its learnable
parameters are the model's own (a submodule), so training optimises them with the networks
and they are saved with the model's ``state_dict``.
"""

from __future__ import annotations

import inspect
from typing import Any

import pyro.distributions as dist
import torch
from torch import nn

from ppvae.registry import Registry


class Prior(nn.Module):
    """Base class of ppvae priors p(z).

    Subclasses implement :meth:`forward` and may override :meth:`bind` to reach the model
    they belong to (the VampPrior uses the model's encoder). Whether KL(q(z|x) || p(z)) has
    a closed form follows from the distributions (``torch.distributions.kl_divergence``).

    Constructor arguments are recorded automatically, so :meth:`config` can rebuild the
    prior from a saved spec.
    """

    registry_name: str = ""

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
                object.__setattr__(
                    self,
                    "_init_args",
                    {k: v for k, v in bound.arguments.items() if k != "self"},
                )
            init(self, *args, **kw)

        recording_init.__doc__ = init.__doc__
        recording_init.__signature__ = signature
        cls.__init__ = recording_init

    def __init__(self, latent_dim: int | None = None):
        super().__init__()
        self.latent_dim: int | None = None
        if latent_dim is not None:
            self.set_latent_dim(latent_dim)

    def set_latent_dim(self, latent_dim: int) -> None:
        """Fix the latent size and build the parameters (once; a different size is an error)."""
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if self.latent_dim is not None:
            if self.latent_dim != latent_dim:
                raise ValueError(
                    f"this {type(self).__name__} prior was built for latent_dim={self.latent_dim} "
                    f"but the model has latent_dim={latent_dim}; build the prior without "
                    "latent_dim (the model sets it) or with the model's"
                )
            return
        self.latent_dim = int(latent_dim)
        self._build(self.latent_dim)

    def _build(self, latent_dim: int) -> None:
        """Create the parameters for ``latent_dim`` dimensions (default: none)."""

    def bind(self, model: nn.Module) -> None:
        """Called once by the model that owns this prior: fixes ``latent_dim`` from the model.
        Subclasses that need the model (the VampPrior needs its encoder) extend this."""
        self.set_latent_dim(int(model.latent_dim))

    def forward(self) -> dist.Distribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """A JSON-able spec ``{"name": ..., **kwargs}`` that rebuilds this prior."""
        args = dict(getattr(self, "_init_args", {}))
        args.pop("latent_dim", None)
        return {"name": type(self).registry_name or type(self).__name__, **args}

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z)`` for ``z`` of shape ``[..., latent_dim]``."""
        return self().log_prob(z)

    def sample(self, n: int) -> torch.Tensor:
        """``n`` draws from p(z), shape ``[n, latent_dim]``."""
        return self().sample((n,))


priors: Registry[Prior] = Registry("prior", base=Prior)
register = priors.register


@register("standard_normal")
class StandardNormal(Prior):
    """p(z) = N(0, I): the classic VAE prior; the KL to a diagonal Normal is closed form."""

    def __init__(self, latent_dim: int | None = None):
        super().__init__(latent_dim)
        self.register_buffer("_zero", torch.zeros(()))

    def forward(self) -> dist.Distribution:
        loc = self._zero.expand(self.latent_dim)
        return dist.Normal(loc, torch.ones_like(loc)).to_event(1)


def standard_normal(latent_dim: int | None = None) -> StandardNormal:
    return StandardNormal(latent_dim)
