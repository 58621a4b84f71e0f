"""``TabularVAE``: the scikit-learn-style front of ppvae.

>>> vae = TabularVAE(latent_dim=16).fit(df)
>>> synth = vae.sample(10_000, seed=0)

Every constructor argument is plain data, so a spec file (``TabularVAE.from_spec``) or a
dict can hold it; learned state ends in ``_``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyro
import torch
from pyro import poutine

from ppvae.budget import batch_size_for, patience_for
from ppvae.data import TableTransformer
from ppvae.data.layout import TensorTable
from ppvae.diagnostics.health import check_health
from ppvae.likelihoods import slot_log_prob
from ppvae.model import models
from ppvae.objectives import objectives
from ppvae.priors import Prior, priors
from ppvae.training import train

SAMPLE_CHUNK = 65_536


class NotFittedError(RuntimeError):
    """A method that needs a fitted model was called before ``fit``."""


class TabularVAE:
    """A variational auto-encoder for a table, built as a Pyro model/guide pair.

    Parameters
    ----------
    latent_dim: size of the latent code z.
    hidden: widths of the encoder's and decoder's hidden layers.
    prior: a registered prior name, ``{"name": ..., **options}`` or a ``ppvae.priors.Prior``.
    objective: a registered objective name, dict or ``ppvae.objectives.Objective``.
    likelihood: family of the continuous slots (``normal``, ``laplace``, ``student_t``).
    model: a registered model name or dict (``tabular`` is the default VAE; register your
        own model/guide pair with ``@ppvae.models.register``).
    continuous: ``quantile`` (default) or ``mode_specific`` encoding of numeric columns.
    kinds: override inferred column kinds, e.g. ``{"zip": "categorical"}``.
    missing_values: extra markers read as missing, e.g. ``["?"]``.
    epochs, batch_size, lr: SVI budget, minibatch size and Adam's learning rate; a table of
        fewer than 10 batches trains on smaller ones with patience >= 50 (``ppvae.budget``).
    patience: stop after this many epochs without a better validation ELBO (None: never).
    val_fraction: share of rows held out for the validation ELBO.
    seed: seeds the split, initialisation and training (same seed -> same samples).
    device: ``"cpu"``, ``"cuda"`` or a torch device.
    verbose: show a progress bar with the current loss.
    """

    def __init__(
        self,
        latent_dim: int = 16,
        hidden: Sequence[int] = (256, 256),
        prior: str | Mapping[str, Any] | Prior = "standard_normal",
        objective: str | Mapping[str, Any] | Any = "elbo",
        likelihood: str = "normal",
        model: str | Mapping[str, Any] = "tabular",
        continuous: str = "quantile",
        kinds: Mapping[str, str] | None = None,
        missing_values: Sequence[Any] | None = None,
        epochs: int = 300,
        batch_size: int = 500,
        lr: float = 1e-3,
        patience: int | None = 20,
        val_fraction: float = 0.1,
        seed: int | None = 0,
        device: str | torch.device = "cpu",
        verbose: bool = True,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.prior = prior
        self.objective = objective
        self.likelihood = likelihood
        self.model = model
        self.continuous = continuous
        self.kinds = kinds
        self.missing_values = missing_values
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.verbose = verbose

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: str | os.PathLike | Mapping[str, Any], **overrides: Any) -> TabularVAE:
        """Build from a YAML spec file, the name of a shipped spec, or a dict."""
        from ppvae.spec import load_spec

        return cls(**{**load_spec(spec), **overrides})

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as scikit-learn's ``get_params``."""
        import inspect

        return {k: getattr(self, k) for k in inspect.signature(type(self)).parameters}

    def _check_params(self) -> None:
        def positive_int(name: str, allow_none: bool = False) -> None:
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

        for name in ("latent_dim", "epochs", "batch_size"):
            positive_int(name)
        positive_int("patience", allow_none=True)
        if not all(isinstance(h, (int, np.integer)) and h > 0 for h in self.hidden):
            raise ValueError(f"hidden must be a list of positive layer widths, got {self.hidden!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 10):
            raise ValueError(f"lr must be a positive learning rate such as 1e-3, got {self.lr!r}")
        if not (0 <= self.val_fraction < 1):
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")

    @property
    def device_(self) -> torch.device:
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "device='cuda' was asked for but CUDA is not available; use device='cpu'"
            )
        return device

    @contextmanager
    def _rng(self, seed: int | None):
        """Seed torch inside the block only, leaving the caller's global RNG state alone."""
        devices = [self.device_.index or 0] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            yield

    def _build_module(self, layout) -> torch.nn.Module:
        spec = self.model if isinstance(self.model, Mapping) else {"name": self.model}
        # a Prior instance is a template: each fit trains its own copy (as sklearn clones)
        prior = copy.deepcopy(self.prior) if isinstance(self.prior, Prior) else self.prior
        return models.build(
            spec,
            layout=layout,
            latent_dim=self.latent_dim,
            hidden=tuple(self.hidden),
            prior=prior,
            likelihood=self.likelihood,
        )

    # -- fitting -----------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> TabularVAE:
        """Learn the table's transforms, then the VAE by SVI. Returns ``self``."""
        self._check_params()
        device = self.device_
        transformer = TableTransformer(
            continuous=self.continuous,
            kinds=dict(self.kinds or {}),
            missing_values=list(self.missing_values or []),
            seed=0 if self.seed is None else self.seed,
        ).fit(df)
        layout = transformer.layout_
        table = transformer.transform(df)
        n = len(table)
        with self._rng(self.seed):
            order = torch.randperm(n)
            n_val = int(round(self.val_fraction * n)) if n >= 20 else 0
            val_idx, train_idx = order[:n_val], order[n_val:]
            full = table.with_features(layout)
            train_data = full[train_idx].to(device)
            val_data = full[val_idx].to(device) if n_val else None
            module = self._build_module(layout).to(device)
            objective = objectives.build(self.objective)
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ())))
            if hasattr(module.prior, "init_from"):
                module.prior.init_from(train_data.features)
            result = train(
                module,
                objective,
                train_data,
                val_data,
                epochs=int(self.epochs),
                batch_size=batch_size_for(len(train_data), int(self.batch_size)),
                lr=float(self.lr),
                patience=patience_for(len(train_data), int(self.batch_size), self.patience),
                generator=generator,
                verbose=self.verbose,
            )
            if hasattr(
                module.prior, "fit"
            ):  # an ex-post prior: fit it to q(z) of the training rows
                module.prior.fit(self._posterior_draws(module, train_data))
        self.transformer_ = transformer
        self.layout_ = layout
        self.model_ = module
        self.objective_ = objective
        self.history_ = result.history
        self.step_history_ = result.steps
        self.best_epoch_ = result.best_epoch
        self.columns_ = list(df.columns)
        self.n_rows_ = n
        self._train_data = train_data
        self.health_ = check_health(self, df)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "this TabularVAE is not fitted yet: call fit(df) or ppvae.load(path) first"
            )

    def _table(self, df: pd.DataFrame) -> TensorTable:
        self._check_fitted()
        return self.transformer_.transform(df).with_features(self.layout_).to(self.model_device)

    @property
    def model_device(self) -> torch.device:
        return next(self.model_.parameters()).device

    # -- generation --------------------------------------------------------------------
    @torch.no_grad()
    def _generate(
        self, n: int, condition: Mapping[str, torch.Tensor] | None = None
    ) -> pd.DataFrame:
        module = self.model_.eval()
        model = poutine.condition(module.model, data=dict(condition)) if condition else module.model
        with pyro.validation_enabled(False):
            trace = poutine.trace(model).get_trace(None, num_rows=n)
        nodes = trace.nodes
        device = self.model_device
        layout = self.layout_

        def site(name: str, width: int, dtype: torch.dtype) -> torch.Tensor:
            if name in nodes:
                return nodes[name]["value"].reshape(n, width).to(dtype)
            return torch.zeros(n, width, dtype=dtype, device=device)

        table = TensorTable(
            x_cont=site("x_cont", layout.n_cont, torch.float32),
            cont_mask=torch.ones(n, layout.n_cont, dtype=torch.bool, device=device),
            x_cat=site("x_cat", layout.n_cat, torch.long),
            cat_mask=torch.ones(n, layout.n_cat, dtype=torch.bool, device=device),
            x_miss=site("x_miss", layout.n_miss, torch.float32),
        )
        return self.transformer_.inverse_transform(table.to("cpu"))

    def sample(
        self,
        n: int,
        seed: int | None = None,
        condition: Mapping[str, torch.Tensor] | None = None,
    ) -> pd.DataFrame:
        """``n`` synthetic rows drawn from the model: z ~ p(z), x ~ p(x | z).

        Categories are sampled from the decoder's probabilities (never argmax). The result has
        the training table's columns, in order, with their dtypes. ``condition``: values for
        latent sites of the model, ``{site: tensor [n, ...]}`` (``poutine.condition``), e.g.
        ``{"z": z}`` to decode chosen codes or a custom model's label site.
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n must be a positive number of rows, got {n!r}")
        if condition is not None:
            condition = {
                k: torch.as_tensor(v, device=self.model_device) for k, v in condition.items()
            }
            wrong = [k for k, v in condition.items() if v.shape[:1] != (n,)]
            if wrong:
                raise ValueError(f"condition: the values of {wrong} must have n = {n} rows")
        with self._rng(seed):
            parts = [
                self._generate(
                    min(SAMPLE_CHUNK, n - s),
                    {k: v[s : s + SAMPLE_CHUNK] for k, v in condition.items()}
                    if condition
                    else None,
                )
                for s in range(0, int(n), SAMPLE_CHUNK)
            ]
        out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return out

    @torch.no_grad()
    def encode(self, df: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x) for each row: ``(loc, scale)``, each ``[n, latent_dim]``."""
        table = self._table(df)
        return self.model_.encoder(table.features)

    def reconstruct(self, df: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
        """Rows drawn from p(x | z) with z ~ q(z | x): the model's reconstruction of ``df``."""
        loc, scale = self.encode(df)
        with self._rng(seed):
            z = torch.distributions.Normal(loc, scale).sample()
            return self._generate(len(df), condition={"z": z})

    # -- evaluation --------------------------------------------------------------------
    def log_likelihood(
        self, df: pd.DataFrame, num_particles: int = 100, seed: int | None = 0
    ) -> np.ndarray:
        """Importance-weighted estimate of log p(x) per row ``[n]`` (Burda et al. 2016).

        With K particles z_k ~ q(z|x): ``log (1/K) sum_k p(x, z_k) / q(z_k | x)``, a lower
        bound on log p(x) that tightens as K grows and is never below the ELBO on average.
        """
        from ppvae.evaluation import importance_log_likelihood

        table = self._table(df)
        with self._rng(seed), pyro.validation_enabled(False):
            ll = importance_log_likelihood(
                self.model_.model, self.model_.guide, table, num_particles=num_particles
            )
        return ll.cpu().numpy()

    @torch.no_grad()
    def column_log_likelihood(
        self, df: pd.DataFrame, num_samples: int = 10, seed: int | None = 0
    ) -> pd.DataFrame:
        """E_q[log p(x_col | z)] per row and column, ``[n, columns]``, by ``num_samples`` draws."""
        table = self._table(df)
        module, layout = self.model_, self.layout_
        total = None
        with self._rng(seed), pyro.validation_enabled(False):
            for _ in range(int(num_samples)):
                guide_trace = poutine.trace(module.guide).get_trace(table)
                trace = poutine.trace(poutine.replay(module.model, trace=guide_trace)).get_trace(
                    table
                )
                parts = {}
                for name, width in (
                    ("x_cont", layout.n_cont),
                    ("x_cat", layout.n_cat),
                    ("x_miss", layout.n_miss),
                ):
                    site = trace.nodes.get(name)
                    parts[name] = (
                        slot_log_prob(site["fn"], site["value"])
                        if site
                        else table.x_cont.new_zeros(len(table), width)
                    )
                cols = layout.column_totals(parts["x_cont"], parts["x_cat"], parts["x_miss"])
                total = cols if total is None else total + cols
        values = (total / int(num_samples)).cpu().numpy()
        return pd.DataFrame(values, columns=list(layout.columns), index=df.index)

    # -- priors ------------------------------------------------------------------------
    def refit_prior(
        self,
        prior: str | Mapping[str, Any] | Prior,
        data: pd.DataFrame | None = None,
        **options: Any,
    ) -> TabularVAE:
        """Swap in a new prior without retraining; priors with ``fit(z)`` are fitted to the
        aggregate posterior q(z) = (1/N) sum_n q(z | x_n) of ``data`` (default: training rows).

        >>> vae.refit_prior("aggregate", components=20)
        """
        self._check_fitted()
        spec = {"name": prior, **options} if isinstance(prior, str) else prior
        new = priors.build(spec, latent_dim=self.latent_dim)
        new.bind(self.model_)
        new = new.to(self.model_device)
        if hasattr(new, "fit"):
            table = self._table(data) if data is not None else self._training_table()
            with self._rng(self.seed):
                new.fit(self._posterior_draws(self.model_, table))
        self.model_.prior = new
        self.prior = new.config()
        return self

    @staticmethod
    @torch.no_grad()
    def _posterior_draws(module: torch.nn.Module, table: TensorTable) -> torch.Tensor:
        """One draw z_n ~ q(z | x_n) per row ``[n, d]``: a sample of the aggregate posterior."""
        guide_trace = poutine.trace(module.guide).get_trace(table)
        return guide_trace.nodes["z"]["value"]

    def _training_table(self) -> TensorTable:
        if getattr(self, "_train_data", None) is None:
            raise ValueError(
                "this model was loaded from disk and has no training rows in memory; pass "
                "data=df to refit_prior"
            )
        return self._train_data

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write the fitted model to directory ``path`` (atomically); see ``ppvae.load``."""
        from ppvae.persistence import save

        return save(self, path, force=force)

    def __repr__(self) -> str:
        defaults = TabularVAE().get_params() if type(self) is TabularVAE else {}
        changed = {
            k: v
            for k, v in self.get_params().items()
            if k not in defaults or not _same(defaults[k], v)
        }
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args})"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors, objects without equality
        return a is b
