"""The default tabular VAE as a Pyro model/guide pair.

Generative model, for each row ``n`` (plate ``"rows"``)::

    z_n      ~ p(z)                                   # site "z", any registered prior
    x_cont_n ~ Family(decoder_cont(z_n))  [masked]    # site "x_cont", continuous slots
    x_cat_n  ~ Categorical(decoder_logits(z_n))       # site "x_cat", one per categorical slot
    x_miss_n ~ Bernoulli(decoder_miss(z_n))           # site "x_miss", missingness indicators

Guide: ``z_n ~ Normal(encoder(x_n))`` (amortised, diagonal). Model and guide share the site
names, so any objective that pairs them (``ppvae.objectives``) works; a user's own model
only has to keep the same contract: ``model(data, num_rows)``/``guide(data, num_rows)``, a
``"rows"`` plate and observed sites named ``x_cont``, ``x_cat``, ``x_miss`` for the groups of
its :class:`~ppvae.data.layout.Layout` (see ``models/conditional_vae.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ppvae.data.layout import Layout, TensorTable
from ppvae.likelihoods import CategoricalColumns, CategoricalGroups, likelihoods
from ppvae.networks import Decoder, Encoder
from ppvae.priors import Prior, priors
from ppvae.registry import Registry

models: Registry[nn.Module] = Registry("model", base=nn.Module)
register = models.register


@register("tabular")
class TabularModel(nn.Module):
    """A VAE over the slots of ``layout``: encoder, decoder and prior, plus ``model``/``guide``."""

    def __init__(
        self,
        layout: Layout,
        latent_dim: int = 16,
        hidden: Sequence[int] = (256, 256),
        prior: str | Mapping[str, Any] | Prior = "standard_normal",
        likelihood: str = "normal",
    ):
        super().__init__()
        self.layout, self.latent_dim = layout, int(latent_dim)
        self.family = likelihoods.build(likelihood)
        self.encoder = Encoder(layout.input_dim, tuple(hidden), self.latent_dim)
        self.decoder = Decoder(self.latent_dim, tuple(hidden), layout, self.family.num_params)
        self.prior = priors.build(prior, latent_dim=self.latent_dim)
        self.prior.bind(self)
        self._groups = CategoricalGroups(layout.cat_cardinalities)

    def _apply(self, fn, recurse=True):  # keep the gather indices on the module's device
        out = super()._apply(fn, recurse)
        device = next(self.parameters()).device
        self._groups = self._groups.to(device)
        return out

    def observation_dists(
        self, z: torch.Tensor, data: TensorTable | None
    ) -> dict[str, dist.Distribution]:
        """The observed sites' distributions given ``z`` ``[B, d]``, keyed by site name."""
        cont, logits, miss = self.decoder(z)
        out: dict[str, dist.Distribution] = {}
        if self.layout.n_cont:
            family = self.family(cont)
            if data is not None:
                family = family.mask(data.cont_mask)
            out["x_cont"] = family.to_event(1)
        if self.layout.n_cat:
            out["x_cat"] = CategoricalColumns(
                logits, self._groups, None if data is None else data.cat_mask
            )
        if self.layout.n_miss:
            out["x_miss"] = dist.Bernoulli(logits=miss).to_event(1)
        return out

    def model(self, data: TensorTable | None = None, num_rows: int | None = None) -> torch.Tensor:
        pyro.module("decoder", self.decoder)
        pyro.module("prior", self.prior)
        n = len(data) if data is not None else int(num_rows)
        with pyro.plate("rows", n):
            z = pyro.sample("z", self.prior())
            for name, fn in self.observation_dists(z, data).items():
                pyro.sample(name, fn, obs=None if data is None else getattr(data, name))
        return z

    def guide(
        self, data: TensorTable | None = None, num_rows: int | None = None
    ) -> torch.Tensor | None:
        pyro.module("encoder", self.encoder)
        if data is None:  # generating: the model draws z from the prior
            return None
        features = data.features if data.features is not None else self.layout.features(data)
        loc, scale = self.encoder(features)
        with pyro.plate("rows", len(data)):
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))
