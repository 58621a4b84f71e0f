"""A custom model: a conditional VAE on one categorical label column, in plain Pyro.

It keeps the model contract of ``ppvae/model.py`` (a ``"rows"`` plate, a latent site ``"z"``
shared by model and guide, one observed site per slot group, built by ``self.observe``), so
ppvae's trainer, sampler, saver and diagnostics take it unchanged. Only what is specific to
it is written here; the encoder, decoder, prior and guide are the default model's.

Generative story, per row::

    y ~ Categorical(pi)                     # site "y": the label, with learned class rates
    z ~ p(z)                                # site "z": any registered prior
    x ~ p(x | z, y)                         # decoder sees z and the one-hot label

The label is also a categorical slot; its logits are pinned to ``y`` so sampled tables carry
the label that was drawn, and ``poutine.condition(model, data={"y": labels})`` (or
``TabularVAE.sample(n, condition={"y": labels})``) generates rows for chosen labels. Use it::

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
from ppvae.model import TabularModel, num_rows_of


@ppvae.models.register("conditional")
class ConditionalVAE(TabularModel):
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
        if label not in layout.cat_names:
            raise ValueError(
                f"label {label!r} must be a categorical column; categorical columns: {list(layout.cat_names)}"
            )
        slot = layout.cat_names.index(label)
        self.label, self.slot, self.n_classes = label, slot, layout.cat_cardinalities[slot]
        super().__init__(layout, latent_dim, hidden, prior, likelihood)
        self.class_logits = nn.Parameter(torch.zeros(self.n_classes))
        self.offset = sum(layout.cat_cardinalities[:slot])  # the label's logits in x_cat's block
        self.cat_block = [group.name for group in self.slot_groups].index("x_cat")

    def decoder_inputs(self, layout: Layout, latent_dim: int) -> int:
        return latent_dim + self.n_classes

    def model(self, data: TensorTable | None = None, num_rows: int | None = None) -> torch.Tensor:
        labels = None if data is None else data.x_cat[:, self.slot]
        with pyro.plate("rows", num_rows_of(data, num_rows)):
            y = pyro.sample("y", dist.Categorical(logits=self.class_logits), obs=labels)
            z = pyro.sample(self.latent_site, self.prior())
            onehot = nn.functional.one_hot(y, self.n_classes).to(z.dtype)
            raw = list(self.decoder(torch.cat([z, onehot], -1)))
            logits = raw[self.cat_block]
            pinned = torch.where(onehot > 0, 0.0, -1e4)  # the label slot repeats y exactly
            end = self.offset + self.n_classes
            raw[self.cat_block] = torch.cat([logits[:, : self.offset], pinned, logits[:, end:]], -1)
            self.observe(raw, data)
        return z
