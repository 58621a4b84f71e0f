"""A Gaussian-copula baseline built on ppvae's own column transforms.

Every column becomes a normal score: numeric columns by ppvae's quantile transform,
categorical ones (and missingness indicators) by a uniform draw inside their level's CDF
interval, mapped through the normal quantile. The scores' correlation matrix is the copula;
sampling draws N(0, R) and maps each score back. Marginals are exact up to the transforms;
dependence is only what a Gaussian copula can express.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr, ndtri

from ppvae.data import TableTransformer
from ppvae.data.layout import TensorTable


class GaussianCopula:
    def __init__(self, missing_values=(), seed: int = 0):
        self.missing_values, self.seed = list(missing_values), seed

    def fit(self, df: pd.DataFrame) -> GaussianCopula:
        rng = np.random.default_rng(self.seed)
        self.tr_ = TableTransformer(missing_values=self.missing_values, seed=self.seed).fit(df)
        t = self.tr_.transform(df)
        cont = np.where(t.cont_mask.numpy(), t.x_cont.numpy(), rng.normal(size=t.x_cont.shape))
        self.cat_cdf_ = []
        scores = [cont]
        for j, k in enumerate(self.tr_.layout_.cat_cardinalities):
            codes = t.x_cat[:, j].numpy()
            p = np.bincount(codes, minlength=k) / len(codes)
            cdf = np.concatenate([[0.0], np.cumsum(p)])
            self.cat_cdf_.append(cdf)
            u = cdf[codes] + rng.random(len(codes)) * p[codes]
            scores.append(ndtri(np.clip(u, 1e-6, 1 - 1e-6))[:, None])
        miss = t.x_miss.numpy()
        self.miss_rate_ = miss.mean(0)
        if miss.shape[1]:
            u = np.where(
                miss > 0,
                rng.random(miss.shape) * self.miss_rate_,
                self.miss_rate_ + rng.random(miss.shape) * (1 - self.miss_rate_),
            )
            scores.append(ndtri(np.clip(u, 1e-6, 1 - 1e-6)))
        z = np.concatenate(scores, axis=1)
        self.corr_ = np.corrcoef(z, rowvar=False) + 1e-6 * np.eye(z.shape[1])
        return self

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        layout = self.tr_.layout_
        z = rng.multivariate_normal(
            np.zeros(len(self.corr_)), self.corr_, size=n, method="cholesky"
        )
        nc, nk = layout.n_cont, layout.n_cat
        cont = z[:, :nc]
        cats = (
            np.stack(
                [
                    np.clip(
                        np.searchsorted(cdf, ndtr(z[:, nc + j]), side="right") - 1, 0, len(cdf) - 2
                    )
                    for j, cdf in enumerate(self.cat_cdf_)
                ],
                1,
            )
            if nk
            else np.zeros((n, 0), int)
        )
        miss = (ndtr(z[:, nc + nk :]) < self.miss_rate_).astype(float)
        table = TensorTable(
            x_cont=torch.as_tensor(cont, dtype=torch.float32),
            cont_mask=torch.ones(n, nc, dtype=torch.bool),
            x_cat=torch.as_tensor(cats, dtype=torch.long),
            cat_mask=torch.ones(n, nk, dtype=torch.bool),
            x_miss=torch.as_tensor(miss, dtype=torch.float32),
        )
        return self.tr_.inverse_transform(table)
