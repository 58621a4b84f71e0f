"""A custom model: a conditional VAE on one categorical label column, in plain Pyro.

It shows the contract a model/guide pair must keep to plug into ppvae's trainer, sampler,
saver and diagnostics (see ``ppvae/model.py``): a ``"rows"`` plate, a latent site ``"z"`` shared
by model and guide, and observed sites ``x_cont`` / ``x_cat`` / ``x_miss`` for the slot groups
of the table's :class:`~ppvae.data.layout.Layout`.

Generative story, per row::

    y ~ Categorical(pi)                     # site "y": the label, with learned class rates
    z ~ p(z)                                # site "z": any registered prior
    x ~ p(x | z, y)                         # decoder sees z and the one-hot label

The label is also a slot of ``x_cat``; its logits are pinned to ``y`` so sampled tables carry
the label that was drawn, and ``poutine.condition(model, data={"y": labels})`` generates rows
for chosen labels. Use it with::

    import ppvae, models.conditional_vae  # registers "conditional"
    vae = ppvae.TabularVAE(model={"name": "conditional", "label": "income"}).fit(df)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from torch import nn

import ppvae
from ppvae.data.layout import Layout, TensorTable
from ppvae.likelihoods import CategoricalColumns, CategoricalGroups, likelihoods
from ppvae.networks import Decoder, Encoder


@ppvae.models.register("conditional")
class ConditionalVAE(nn.Module):
    """p(x, z, y) = p(y) p(z) p(x | z, y) with an amortised q(z | x)."""

    def __init__(
        self,
        layout: Layout,
        label: str,
        latent_dim: int = 16,
        hidden: Sequence[int] = (256, 256),
        prior: str | Mapping[str, Any] = "standard_normal",
        likelihood: str = "normal",
    ):
        super().__init__()
        if label not in layout.cat_names:
            raise ValueError(
                f"label {label!r} must be a categorical column; categorical columns: {list(layout.cat_names)}"
            )
        self.layout, self.latent_dim, self.label = layout, int(latent_dim), label
        self.slot = layout.cat_names.index(label)
        self.n_classes = layout.cat_cardinalities[self.slot]
        self.offset = sum(layout.cat_cardinalities[: self.slot])
        self.family = likelihoods.build(likelihood)
        self.encoder = Encoder(layout.input_dim, tuple(hidden), self.latent_dim)
        self.decoder = Decoder(
            self.latent_dim + self.n_classes, tuple(hidden), layout, self.family.num_params
        )
        self.class_logits = nn.Parameter(torch.zeros(self.n_classes))
        self.prior = ppvae.priors.priors.build(prior, latent_dim=self.latent_dim)
        self.prior.bind(self)
        self.groups = CategoricalGroups(layout.cat_cardinalities)

    def model(self, data: TensorTable | None = None, num_rows: int | None = None) -> torch.Tensor:
        pyro.module("cvae", self)
        n = len(data) if data is not None else int(num_rows)
        with pyro.plate("rows", n):
            y = pyro.sample(
                "y",
                dist.Categorical(logits=self.class_logits),
                obs=None if data is None else data.x_cat[:, self.slot],
            )
            z = pyro.sample("z", self.prior())
            onehot = nn.functional.one_hot(y, self.n_classes).to(z.dtype)
            cont, logits, miss = self.decoder(torch.cat([z, onehot], -1))
            pinned = torch.where(onehot > 0, 0.0, -1e4)  # x_cat's label slot repeats y exactly
            logits = torch.cat(
                [logits[:, : self.offset], pinned, logits[:, self.offset + self.n_classes :]], -1
            )
            if self.layout.n_cont:
                fn = self.family(cont)
                fn = fn.mask(data.cont_mask) if data is not None else fn
                pyro.sample("x_cont", fn.to_event(1), obs=None if data is None else data.x_cont)
            pyro.sample(
                "x_cat",
                CategoricalColumns(logits, self.groups, None if data is None else data.cat_mask),
                obs=None if data is None else data.x_cat,
            )
            if self.layout.n_miss:
                pyro.sample(
                    "x_miss",
                    dist.Bernoulli(logits=miss).to_event(1),
                    obs=None if data is None else data.x_miss,
                )
        return z

    def guide(
        self, data: TensorTable | None = None, num_rows: int | None = None
    ) -> torch.Tensor | None:
        pyro.module("cvae", self)
        if data is None:
            return None
        features = data.features if data.features is not None else self.layout.features(data)
        loc, scale = self.encoder(features)
        with pyro.plate("rows", len(data)):
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))
