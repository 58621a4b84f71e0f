"""The "no framework overhead" reference: ppvae's default network trained by a plain PyTorch loop.

Same encoder/decoder modules (``ppvae.networks``), same tensors (``TableTransformer``), same
minibatches (a ``torch.Generator`` with the same seed), same Adam and learning rate; the loss
is written out by hand: ``-log p(x|z) + KL(q(z|x) || N(0, I))`` summed over the batch. No Pyro.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from ppvae.data import TableTransformer
from ppvae.data.layout import TensorTable
from ppvae.networks import Decoder, Encoder


class ReferenceVAE:
    def __init__(
        self,
        latent_dim=16,
        hidden=(256, 256),
        epochs=300,
        batch_size=500,
        lr=1e-3,
        seed=0,
        missing_values=(),
    ):
        self.latent_dim, self.hidden, self.epochs = latent_dim, tuple(hidden), epochs
        self.batch_size, self.lr, self.seed, self.missing_values = (
            batch_size,
            lr,
            seed,
            list(missing_values),
        )

    def fit(self, df: pd.DataFrame) -> ReferenceVAE:
        torch.manual_seed(self.seed)
        self.transformer_ = TableTransformer(
            missing_values=self.missing_values, seed=self.seed
        ).fit(df)
        layout = self.layout_ = self.transformer_.layout_
        self.data_ = self.transformer_.transform(df).with_features(layout)
        self.encoder_ = Encoder(layout.input_dim, self.hidden, self.latent_dim)
        widths = (2 * layout.n_cont, sum(layout.cat_cardinalities), layout.n_miss)
        self.decoder_ = Decoder(self.latent_dim, self.hidden, widths)
        params = list(self.encoder_.parameters()) + list(self.decoder_.parameters())
        self.optimizer_ = torch.optim.Adam(params, lr=self.lr)
        self.generator_ = torch.Generator().manual_seed(self.seed)
        self.epoch_seconds_ = [self.run_epoch() for _ in range(self.epochs)]
        return self

    def loss(self, batch: TensorTable) -> torch.Tensor:
        layout = self.layout_
        loc, scale = self.encoder_(batch.features)
        z = loc + scale * torch.randn_like(loc)
        cont, logits, miss = self.decoder_(z)
        cont = cont.reshape(len(z), -1, 2)
        sd = torch.nn.functional.softplus(cont[..., 1]) + 1e-3
        log_lik = (Normal(cont[..., 0], sd).log_prob(batch.x_cont) * batch.cont_mask).sum()
        start = 0
        for j, k in enumerate(layout.cat_cardinalities):
            logp = torch.log_softmax(logits[:, start : start + k], -1)
            log_lik = (
                log_lik
                + (
                    logp.gather(-1, batch.x_cat[:, j : j + 1]).squeeze(-1) * batch.cat_mask[:, j]
                ).sum()
            )
            start += k
        if layout.n_miss:
            log_lik = log_lik + Bernoulli(logits=miss).log_prob(batch.x_miss).sum()
        kl = kl_divergence(Normal(loc, scale), Normal(0.0, 1.0)).sum()
        return kl - log_lik

    def run_epoch(self) -> float:
        """One epoch over shuffled minibatches; returns its wall time in seconds."""
        start = time.perf_counter()
        n = len(self.data_)
        order = torch.randperm(n, generator=self.generator_)
        for s in range(0, n, self.batch_size):
            loss = self.loss(self.data_[order[s : s + self.batch_size]])
            if not math.isfinite(float(loss.detach())):
                raise RuntimeError("reference VAE diverged")
            loss.backward()
            self.optimizer_.step()
            self.optimizer_.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        layout = self.layout_
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g)
        cont, logits, miss = self.decoder_(z)
        cont = cont.reshape(n, -1, 2)
        sd = torch.nn.functional.softplus(cont[..., 1]) + 1e-3
        x_cont = cont[..., 0] + sd * torch.randn(sd.shape, generator=g)
        cats, start = [], 0
        for k in layout.cat_cardinalities:
            cats.append(
                torch.multinomial(
                    torch.softmax(logits[:, start : start + k], -1), 1, generator=g
                ).squeeze(-1)
            )
            start += k
        x_cat = torch.stack(cats, -1) if cats else torch.zeros(n, 0, dtype=torch.long)
        x_miss = torch.bernoulli(torch.sigmoid(miss), generator=g)
        table = TensorTable(
            x_cont=x_cont,
            cont_mask=torch.ones_like(x_cont, dtype=torch.bool),
            x_cat=x_cat,
            cat_mask=torch.ones_like(x_cat, dtype=torch.bool),
            x_miss=x_miss,
        )
        return self.transformer_.inverse_transform(table)
