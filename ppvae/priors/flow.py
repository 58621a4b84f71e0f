r"""Normalizing-flow priors: a standard normal pushed through invertible Pyro transforms.

.. math::  z = f_L \circ \dots \circ f_1(\varepsilon), \quad \varepsilon \sim \mathcal{N}(0, I),
           \qquad \log p(z) = \log \mathcal{N}(\varepsilon) - \sum_l \log\lvert\det J_{f_l}\rvert

Layers are Pyro's ``spline_coupling`` (Dolatabadi et al. 2020, rational-quadratic splines;
the default) or ``affine_autoregressive`` (an IAF/MAF layer, Kingma et al. 2016), with the
coordinates reversed between layers so every dimension gets transformed. The transforms are
submodules, so their parameters are saved with the model and registered with Pyro's param
store by ``pyro.module``. The KL has no closed form: objectives use a Monte Carlo estimate.
"""

from __future__ import annotations

import pyro.distributions as dist
import pyro.distributions.transforms as T
import torch
from torch import nn

from ppvae.priors.base import Prior, register

KINDS = ("spline_coupling", "affine_autoregressive")


@register("flow")
class Flow(Prior):
    """A flow prior of ``layers`` layers of ``kind`` with ``hidden``-wide conditioner nets."""

    def __init__(
        self,
        latent_dim: int | None = None,
        kind: str = "spline_coupling",
        layers: int = 4,
        hidden: int = 64,
        count_bins: int = 8,
        bound: float = 4.0,
    ):
        if kind not in KINDS:
            raise ValueError(f"flow: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise ValueError(f"flow: layers must be a positive integer, got {layers!r}")
        self.kind, self.layers, self.hidden = kind, layers, int(hidden)
        self.count_bins, self.bound = int(count_bins), float(bound)
        super().__init__(latent_dim)

    def _build(self, latent_dim: int) -> None:
        if self.kind == "spline_coupling" and latent_dim < 2:
            raise ValueError(
                "flow: spline_coupling needs latent_dim >= 2; use kind='affine_autoregressive'"
            )
        self.register_buffer("_zero", torch.zeros(latent_dim))
        hidden = [self.hidden, self.hidden]
        layers = []
        for _ in range(self.layers):
            if self.kind == "spline_coupling":
                layers.append(
                    T.spline_coupling(
                        latent_dim, hidden_dims=hidden, count_bins=self.count_bins, bound=self.bound
                    )
                )
            else:
                layers.append(T.affine_autoregressive(latent_dim, hidden_dims=hidden))
        self.transforms = nn.ModuleList(layers)
        self.register_buffer("_order", torch.arange(latent_dim - 1, -1, -1))

    def forward(self) -> dist.Distribution:
        base = dist.Normal(self._zero, torch.ones_like(self._zero)).to_event(1)
        chain = []
        for i, layer in enumerate(self.transforms):
            if i:  # a fresh Permute each time: Pyro transforms cache their last call
                chain.append(T.Permute(self._order))
            chain.append(layer)
        return dist.TransformedDistribution(base, chain)


def flow(
    latent_dim: int | None = None, kind: str = "spline_coupling", layers: int = 4, hidden: int = 64
) -> Flow:
    return Flow(latent_dim, kind=kind, layers=layers, hidden=hidden)
