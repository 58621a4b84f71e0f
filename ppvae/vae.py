"""``TabularVAE``: the scikit-learn-style front of ppvae.

>>> vae = TabularVAE(latent_dim=16).fit(df)
>>> synth = vae.sample(10_000, seed=0)

Every constructor argument is plain data, so a spec file (``TabularVAE.from_spec``) or a
dict can hold it; learned state ends in ``_``.
"""

from __future__ import annotations

import copy
import inspect
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ppvae import persistence
from ppvae.budget import (
    batch_size_for,
    epochs_for,
    ex_post_prior_for,
    likelihood_for,
    objective_for,
    patience_for,
    refit_objective,
    training_prior,
)
from ppvae.checkpoint import Checkpointing, checkpointing
from ppvae.collapse_watch import CollapsedEarly, collapse_watch
from ppvae.data import TableTransformer
from ppvae.data.layout import TensorTable
from ppvae.data.split import Split, memory_split
from ppvae.detector_resampling import (
    POOL,
    attach_detector,
    drop_detector,
    resample,
    restore_detector,
)
from ppvae.diagnostics.health import check_health, has_strong_pairs
from ppvae.evaluation import importance_log_likelihood
from ppvae.initialization import Initialization, initializations
from ppvae.marginal_calibration import calibrate, reset
from ppvae.model import TableModel, models
from ppvae.objectives import Objective, objectives
from ppvae.priors import Prior, priors
from ppvae.proposal_training import fit_proposal, proposal_epochs
from ppvae.spec import load_spec
from ppvae.training import train

SAMPLE_CHUNK = 65_536
INPUT_MASK_RATE = 0.25


class NotFittedError(RuntimeError):
    """A method that needs a fitted model was called before ``fit``."""


class TabularVAE:
    """A variational auto-encoder for a table, built as a Pyro model/guide pair.

    Parameters
    ----------
    latent_dim: size of the latent code z.
    hidden: widths of the encoder's and decoder's hidden layers.
    prior: a registered prior name, ``{"name": ..., **options}`` or a ``ppvae.priors.Prior``;
        ``"auto"``: trained with the standard normal, sampled through a Gaussian mixture
        fitted to the aggregate posterior of the training rows (``ppvae.budget``).
    objective: a registered objective name, dict or ``ppvae.objectives.Objective``;
        ``"auto"``: the ELBO (refitted once with 0.25 free nats per latent dimension if it
        ends with no active latent unit; ``refitted_`` says so), or a cyclically annealed
        ELBO (KL weight up to 0.5) on a table under 5,000 rows (``ppvae.budget``).
    likelihood: family of the continuous slots (``normal``, ``laplace``, ``student_t``) or
        a dict (``{"name": "normal", "min_scale": 0.001}``); ``normal``'s scale floor is 1e-3,
        0.1 on a table under 5,000 rows (``ppvae.budget``).
    model: a registered model name or dict (``tabular`` is the default VAE; register your
        own model/guide pair with ``@ppvae.models.register``).
    init: how the weights start (``ppvae.initialization``): ``random`` or
        ``{"name": "autoencoder", "epochs": 10}`` (KL-free epochs first).
    calibrate: after the fit, calibrate generation to the training rows' marginals
        (``ppvae.marginal_calibration``; likelihoods and imputation are left as fitted):
        ``"all"`` (the default: logit offsets for the sampled level and point-mass frequencies
        in the delivered rows, and monotone maps of the continuous slots), ``"categories"``
        (the offsets only) or ``"none"``.
    detector_resampling: after the fit (and the calibration), a detector learns to tell the
        model's rows from the validation rows, and ``sample(n)`` keeps ``n`` of ``4 n`` drawn
        rows in proportion to how real it finds them, the marginals kept
        (``ppvae.detector_resampling``; from 500 validation rows, and only when the detector
        finds a difference). ``sample(condition=...)``, ``sample(given=...)``, likelihoods
        and imputation are unchanged.
    input_mask_rate: after the fit, the encoder alone learns partial rows with this expected
        share of cells hidden (0: skip), for ``sample(given=...)`` and ``impute``; the model,
        hence unconditional sampling, is unchanged (docs/partial_rows.md).
    continuous: ``quantile`` (default) or ``mode_specific`` encoding of numeric columns.
    kinds: override inferred column kinds, e.g. ``{"zip": "categorical"}``.
    missing_values: extra markers read as missing, e.g. ``["?"]``.
    epochs, batch_size, lr: SVI budget, minibatch size and Adam's learning rate; ``"auto"``
        (``ppvae.budget``): from 5,000 rows at most 140 epochs of 500 rows, below that 200
        epochs of a tenth of the table.
    patience: stop after this many epochs without a better validation ELBO (None: never);
        ``"auto"``: 20, or 50 on a table under 5,000 rows (``ppvae.budget``).
    val_fraction: share of rows held out for the validation ELBO.
    seed: seeds the split, initialisation and training (same seed -> same samples).
    device: ``"cpu"``, ``"cuda"`` or a torch device.
    verbose: show a progress bar with the current loss.
    """

    def __init__(
        self,
        latent_dim: int = 16,
        hidden: Sequence[int] = (256, 256),
        prior: str | Mapping[str, Any] | Prior = "auto",
        objective: str | Mapping[str, Any] | Any = "auto",
        likelihood: str = "normal",
        model: str | Mapping[str, Any] = "tabular",
        init: str | Mapping[str, Any] | Initialization = "random",
        calibrate: str = "all",
        detector_resampling: bool = True,
        input_mask_rate: float = INPUT_MASK_RATE,
        continuous: str = "quantile",
        kinds: Mapping[str, str] | None = None,
        missing_values: Sequence[Any] | None = None,
        epochs: int | str = "auto",
        batch_size: int | str = "auto",
        lr: float = 1e-3,
        patience: int | str | None = "auto",
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
        self.init = init
        self.calibrate = calibrate
        self.detector_resampling = detector_resampling
        self.input_mask_rate = input_mask_rate
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
        return cls(**{**load_spec(spec, options=cls.option_names()), **overrides})

    def _check_params(self) -> None:
        from ppvae.params import check_params

        check_params(self.get_params())

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
        device, devices = self.device_, []
        if device.type == "cuda":
            devices = [torch.cuda.current_device() if device.index is None else device.index]
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            yield

    @classmethod
    def option_names(cls) -> list[str]:
        """The constructor arguments, i.e. the keys a spec may hold."""
        return list(inspect.signature(cls).parameters)

    def _build_module(self, layout, likelihood: Any = None) -> TableModel:
        spec = self.model if isinstance(self.model, Mapping) else {"name": self.model}
        # a Prior instance is a template: each fit trains its own copy (as sklearn clones)
        prior = copy.deepcopy(self.prior) if isinstance(self.prior, Prior) else self.prior
        prior = training_prior(prior)  # "auto": standard normal, see ppvae.budget
        return models.build(
            spec,
            layout=layout,
            latent_dim=self.latent_dim,
            hidden=tuple(self.hidden),
            prior=prior,
            likelihood=self.likelihood if likelihood is None else likelihood,
        )

    # -- fitting -----------------------------------------------------------------------
    def fit(
        self,
        df: pd.DataFrame | str | os.PathLike | Iterable[pd.DataFrame],
        y: None = None,
        checkpoint: str | os.PathLike | Checkpointing | None = None,
        resume: bool = False,
    ) -> TabularVAE:
        """Learn the table's transforms, then the VAE by SVI. Returns ``self``.

        ``df``: a DataFrame (fitted in memory), or a Parquet/CSV path, a directory or list
        of Parquet files, or an iterable of DataFrames, streamed in blocks with memory
        bounded by the block size, not the table (docs/scale.md). Under ``torchrun`` each
        process trains on its shard (:mod:`ppvae.distributed`).
        ``y`` is ignored (scikit-learn's ``fit(X, y=None)``); an array is read as a table.
        ``checkpoint``: a file to write training checkpoints to (every 10 epochs or 10
        minutes; a :class:`ppvae.checkpoint.Checkpointing` sets other intervals);
        ``resume=True`` continues from it, ending as an uninterrupted fit would
        (docs/long_fits.md).
        """
        from ppvae import distributed
        from ppvae.data.sources import is_stream
        from ppvae.data.transformer import warn_few_rows

        streamed = is_stream(df)
        if not streamed:
            df = _as_frame(df)
        self._check_params()
        if not streamed:
            warn_few_rows(df)
        settings = {k: v for k, v in self.get_params().items() if k != "verbose"}
        checkpoint = checkpointing(checkpoint, resume, settings)
        ranks = distributed.ranks(self.device_)
        device = distributed.process_device(self.device_)
        if ranks.world > 1 and checkpoint is not None and checkpoint.resume:
            raise ValueError("resuming a data-parallel (torchrun) fit is not supported yet")
        transformer = TableTransformer(
            continuous=self.continuous,
            kinds=dict(self.kinds or {}),
            missing_values=list(self.missing_values or []),
            seed=0 if self.seed is None else self.seed,
        )
        if streamed:
            return self._fit_stream(df, transformer, checkpoint, ranks, device)
        transformer.fit(df)
        table = transformer.transform(df).with_features(transformer.layout_)

        with self._rng(self.seed):  # the split train_once makes: its training rows
            rows = len(memory_split(table, self.val_fraction, ranks.rank, ranks.world)[0])
        rows *= ranks.world
        refit = refit_objective(rows, self.objective)
        if checkpoint is not None or ranks.world > 1:  # one fit per checkpoint, all ranks alike
            refit = None
        # a collapse the post-fit check would find is seen after WATCH_EPOCHS (collapse_watch)
        watch = refit is not None and has_strong_pairs(df, transformer)

        def train_once(objective: Any = None, keep: Checkpointing | None = None) -> None:
            with self._rng(self.seed):
                train_data, val_data = memory_split(
                    table, self.val_fraction, ranks.rank, ranks.world
                )
                val_data = None if val_data is None else val_data.to(device)
                split = Split(train_data.to(device), val_data, len(table), df)
                self._train(
                    transformer, split, keep, ranks.sync, objective, watch and not objective
                )

        try:
            train_once(keep=checkpoint if ranks.writer else None)
            self.health_ = check_health(self, df, warn=False)
            self.refitted_ = refit is not None and self.health_.collapsed
            why = "no latent unit stayed active under the ELBO"
        except CollapsedEarly as stop:
            self.refitted_ = True
            why = f"no latent unit was active after {stop.epochs} epochs of the ELBO"
        if self.refitted_:  # the chains carried everything and z went unused: keep z in use
            if self.verbose and ranks.writer:
                print(
                    f"{why}: refitting with {refit} (ppvae.budget.refit_objective; pass "
                    "objective='elbo' to keep the first fit)",
                    file=sys.stderr,
                )
            train_once(refit)  # the fit the objective `refit` would have made
            self.health_ = check_health(self, df, warn=False)
        if ranks.writer and not self.health_.ok:
            warnings.warn(self.health_.message(), UserWarning, stacklevel=2)
        return self

    def _fit_stream(self, data, transformer, checkpoint, ranks, device) -> TabularVAE:
        """``fit`` on a streamed table (:mod:`ppvae.data.streaming`)."""
        from ppvae.data.streaming import stream_split

        with self._rng(self.seed):
            split, source = stream_split(
                data,
                transformer,
                seed=0 if self.seed is None else self.seed,
                val_fraction=self.val_fraction,
                rank=ranks.rank,
                world=ranks.world,
                device=device,
                verbose=self.verbose and ranks.writer,
                share=None if ranks.sync is None else ranks.sync.share,
            )
            try:
                transformer = split.train.transformer
                self._train(transformer, split, checkpoint if ranks.writer else None, ranks.sync)
            finally:
                source.close()
        self.health_ = check_health(self, split.sample, warn=ranks.writer)
        self.refitted_ = False  # a streamed table is read once per epoch: no second fit
        return self

    def _train(
        self,
        transformer: TableTransformer,
        split: Split,
        checkpoint,
        sync,
        objective=None,
        watch: bool = False,
    ) -> None:
        """Build the module and train it on ``split`` (inside ``fit``'s seeded block) with
        ``objective`` (default: the ``objective`` parameter, ``"auto"`` resolved); ``watch``:
        raise :class:`CollapsedEarly` if no latent unit is active after ``WATCH_EPOCHS``
        (``ppvae.collapse_watch``)."""
        train_data, val_data = split.train, split.val
        layout = transformer.layout_
        device = train_data.device if hasattr(train_data, "device") else train_data.x_cont.device
        world = 1 if sync is None else sync.world
        rows = len(train_data) * world  # batch_size: rows of one step over all processes
        module = self._build_module(layout, likelihood_for(rows, self.likelihood)).to(device)
        objective = objectives.build(objective or objective_for(rows, self.objective))
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ())))
        initial = train_data if isinstance(train_data, TensorTable) else None
        if initial is None and (hasattr(module.prior, "init_from") or hasattr(module.prior, "fit")):
            initial = transformer.transform(split.sample).with_features(layout).to(device)
        if hasattr(module.prior, "init_from"):
            module.prior.init_from(initial.features)
        batch_size = max(1, batch_size_for(rows, self.batch_size) // world)
        lr = float(self.lr)
        initializations.build(self.init)(
            module, train_data, batch_size=batch_size, lr=lr, generator=generator
        )
        if sync is not None:  # after the initialization: every rank starts from rank 0's weights
            sync.start(module)
        watching = {}
        if watch:  # stop a collapsed ELBO fit after WATCH_EPOCHS (ppvae.collapse_watch)
            watched = val_data if val_data is not None and len(val_data) else train_data
            watching = {"on_epoch_end": collapse_watch(module, watched)}
        result = train(
            module,
            objective,
            train_data,
            val_data,
            epochs=epochs_for(rows, self.epochs),
            batch_size=batch_size,
            lr=lr,
            patience=patience_for(rows, self.patience),
            generator=generator,
            verbose=self.verbose and (sync is None or sync.rank == 0),
            checkpoint=checkpoint,
            sync=sync,
            **watching,
        )
        ex_post_prior = ex_post_prior_for(rows, self.prior)
        if ex_post_prior is not None:  # prior="auto": sampled via q(z) (ppvae.budget)
            module.prior = priors.build(ex_post_prior, latent_dim=self.latent_dim)
            module.prior.bind(module)
            module.prior.to(device)
        if hasattr(module.prior, "fit"):  # an ex-post prior: fit it to q(z) of the rows
            if initial is None:
                initial = transformer.transform(split.sample).with_features(layout).to(device)
            with torch.no_grad():
                module.prior.fit(module.posterior(initial)[1])
            if sync is not None:  # one prior: rank 0's fit
                sync.share_state(module.prior)
        if self.calibrate != "none":  # generated marginals = the training rows' (ex post)
            if initial is None:
                initial = transformer.transform(split.sample).with_features(layout).to(device)
            calibrate(
                module,
                initial,
                transformer.continuous_in_use,
                continuous=self.calibrate == "all",
                seed=self._calibration_seed,
                through=_through(transformer),
            )
            if sync is not None:  # one set of offsets: rank 0's
                sync.share_state(module)
        if self.detector_resampling and sync is None and isinstance(val_data, TensorTable):
            attach_detector(module, transformer, val_data, seed=self._calibration_seed)
        if self.input_mask_rate > 0:  # the encoder learns partial rows; the model is kept
            if initial is None:
                initial = transformer.transform(split.sample).with_features(layout).to(device)
            fit_proposal(
                module,
                initial,
                float(self.input_mask_rate),
                epochs=proposal_epochs(len(result.history)),
                batch_size=batch_size,
                lr=lr,
            )
            if sync is not None:  # one encoder: rank 0's
                sync.share_state(module)
        self._set_fitted(
            transformer,
            module,
            objective,
            history=result.history,
            steps=result.steps,
            best_epoch=result.best_epoch,
            n_rows=split.n_rows,
            divergence=result.divergence,
        )

    def _set_fitted(
        self,
        transformer: TableTransformer,
        module: TableModel,
        objective: Objective,
        *,
        history: pd.DataFrame,
        steps: pd.DataFrame,
        best_epoch: int,
        n_rows: int,
        divergence: str | None = None,
    ) -> TabularVAE:
        """Set every learned attribute (``fit`` and ``ppvae.load`` both end here)."""
        self.transformer_ = transformer
        self.layout_ = module.layout
        self.model_ = module.eval()
        self.objective_ = objective
        self.history_ = history
        self.step_history_ = steps
        self.best_epoch_ = int(best_epoch)
        self.columns_ = list(module.layout.columns)
        self.n_rows_ = int(n_rows)
        self.divergence_ = divergence
        return self

    @property
    def _calibration_seed(self) -> int:
        return 0 if self.seed is None else int(self.seed)

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
        self,
        n: int,
        condition: Mapping[str, torch.Tensor] | None = None,
        z: torch.Tensor | None = None,
    ) -> pd.DataFrame:
        table = self.model_.generate(n, condition=condition, z=z)
        return self.transformer_.inverse_transform(table.to("cpu"))

    def _draw(self, n: int, condition: Mapping[str, torch.Tensor] | None) -> pd.DataFrame:
        """``n`` rows for ``sample``: resampled from ``POOL * n`` by the model's detector, if it
        has one (``ppvae.detector_resampling``) and no latent site is conditioned."""
        detector = getattr(self.model_, "detector", None)
        if detector is None or condition:
            return self._generate(n, condition)
        pool = self._generate(POOL * n)
        keep = resample(detector, self.transformer_.transform(pool), self.layout_, n)
        return pool.iloc[keep.numpy()].reset_index(drop=True)

    def sample(
        self,
        n: int | None = None,
        seed: int | None = None,
        condition: Mapping[str, torch.Tensor] | None = None,
        given: Mapping[str, Any] | pd.DataFrame | None = None,
        **inference: Any,
    ) -> pd.DataFrame:
        """``n`` synthetic rows drawn from the model: z ~ p(z), x ~ p(x | z).

        Categories are sampled from the decoder's probabilities (never argmax). A model with a
        detector (``detector_resampling``) draws ``4 n`` rows and keeps ``n`` of them by how
        real the detector finds them (docs/detector_resampling.md). The result has
        the training table's columns, in order, with their dtypes. ``condition``: values for
        latent sites of the model, ``{site: tensor [n, ...]}`` (``poutine.condition``), e.g.
        ``{"z": z}`` to decode chosen codes or a custom model's label site.

        ``given`` draws rows given some of their cells, by posterior inference over z (never
        rejection; docs/partial_rows.md): ``{"sex": "Female", "age": (30, 40)}`` (exact values,
        numeric ranges) for ``n`` rows, or a frame whose non-missing cells are fixed, one row
        out per row in. Fixed columns come back exactly as given; ``out.attrs["inference"]``
        holds the effective sample size per input row. ``inference``: options of
        ``ppvae.posterior_resampling.resample_posterior`` (``num_particles``, ``min_ess``,
        ``refresh_steps``...).
        """
        self._check_fitted()
        if given is not None:
            return self._sample_given(n, seed, condition, given, inference)
        if inference:
            raise TypeError(f"sample() got unexpected option(s) {sorted(inference)}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n must be a positive number of rows, got {n!r}")
        if condition is not None:
            from ppvae.params import check_condition

            condition = check_condition(self, int(n), condition)
        with self._rng(seed):
            parts = [
                self._draw(
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
    def _sample_given(self, n, seed, condition, given, inference) -> pd.DataFrame:
        from ppvae import partial_rows

        if condition is not None:
            raise ValueError("pass either condition= (latent sites) or given= (columns), not both")
        if isinstance(given, pd.DataFrame):
            if n is not None and n != len(given):
                raise ValueError(
                    f"given is a frame of {len(given)} rows, one output row each, but n={n!r}; "
                    "leave n out (or repeat the frame's rows to get more)"
                )
            rows, draws = partial_rows.from_frame(self, given), 1
        else:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"n must be a positive number of rows, got {n!r}")
            rows, draws = partial_rows.from_mapping(self, given), int(n)
            # one partial row, n draws: enough particles for an ESS near n when q is good
            inference.setdefault("num_particles", min(max(100, 2 * draws), 20_000))
        with self._rng(seed):
            out, report = partial_rows.draw(self, rows, draws, **inference)
        if isinstance(given, pd.DataFrame):
            out.index = given.index
        out.attrs["inference"] = {
            "ess": report.ess.tolist(),
            "particles": report.particles.tolist(),
            "acceptance": report.acceptance.tolist(),
        }
        return out

    @torch.no_grad()
    def impute(
        self,
        df: pd.DataFrame,
        num_imputations: int = 5,
        seed: int | None = None,
        **inference: Any,
    ) -> pd.DataFrame:
        """``num_imputations`` completed copies of ``df``, as one long frame indexed by
        ``(imputation, <df's index>)``: observed cells untouched, each missing cell a draw
        from p(x_missing | x_observed) (docs/partial_rows.md). A row with every cell missing
        gets unconditional draws. Summaries: ``ppvae.imputation.imputation_intervals`` and
        ``point_estimate``; ``out.attrs["inference"]`` holds the ESS per row."""
        from ppvae.imputation import impute

        self._check_fitted()
        with self._rng(seed):
            out, report = impute(self, df, num_imputations, **inference)
        out.attrs["inference"] = {
            "ess": report.ess.tolist(),
            "particles": report.particles.tolist(),
            "acceptance": report.acceptance.tolist(),
        }
        return out

    @torch.no_grad()
    def encode(self, df: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of q(z | x) for each row, each ``[n, latent_dim]``."""
        table = self._table(df)
        with self._rng(0):  # the guide's draw is not used: leave the caller's RNG alone
            q, _ = self.model_.posterior(table)
        return q.mean, q.stddev

    @torch.no_grad()
    def reconstruct(self, df: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
        """Rows drawn from p(x | z) with z ~ q(z | x): the model's reconstruction of ``df``."""
        table = self._table(df)
        with self._rng(seed):
            _, z = self.model_.posterior(table)
            return self._generate(len(df), z=z)

    # -- evaluation --------------------------------------------------------------------
    def log_likelihood(
        self, df: pd.DataFrame, num_particles: int = 100, seed: int | None = 0
    ) -> np.ndarray:
        """Importance-weighted estimate of log p(x) per row ``[n]`` (Burda et al. 2016).

        With K particles z_k ~ q(z|x): ``log (1/K) sum_k p(x, z_k) / q(z_k | x)``, a lower
        bound on log p(x) that tightens as K grows and is never below the ELBO on average.
        """
        table = self._table(df)
        with self._rng(seed):
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
        with self._rng(seed):
            total = sum(self.model_.column_log_prob(table) for _ in range(int(num_samples)))
        values = (total / int(num_samples)).cpu().numpy()
        return pd.DataFrame(values, columns=list(self.layout_.columns), index=df.index)

    # -- priors ------------------------------------------------------------------------
    def refit_prior(
        self,
        prior: str | Mapping[str, Any] | Prior,
        data: pd.DataFrame | None = None,
        **options: Any,
    ) -> TabularVAE:
        """Swap in a new prior without retraining; priors with ``fit(z)`` are fitted to the
        aggregate posterior q(z) = (1/N) sum_n q(z | x_n) of ``data`` (the training rows, say:
        the fitted model keeps no copy of them). The marginal calibration (``calibrate``)
        belongs to the prior it was fitted through: it is refitted on ``data``, or dropped
        when no ``data`` is given. So is the detector of ``detector_resampling``, which judged
        the old prior's rows: it is dropped (the training rows cannot stand in for the
        held-out ones it needs; refit the model to get one).

        >>> vae.refit_prior("aggregate", data=df, components=20)
        """
        self._check_fitted()
        spec = {"name": prior, **options} if isinstance(prior, str) else prior
        new = priors.build(spec, latent_dim=self.latent_dim)
        new.bind(self.model_)
        new = new.to(self.model_device)
        if hasattr(new, "fit"):
            if data is None:
                raise ValueError(
                    f"the {new.config().get('name', 'new')!r} prior is fitted to the codes of "
                    "rows: pass them, refit_prior(..., data=df) (the training table, say); a "
                    "fitted model keeps no copy of its training rows"
                )
            table = self._table(data)
            with self._rng(self.seed), torch.no_grad():
                new.fit(self.model_.posterior(table)[1])
        self.model_.prior = new
        reset(self.model_)  # the calibration belongs to the old prior: refit it, or drop it
        drop_detector(self.model_)
        if self.calibrate != "none" and data is not None:
            calibrate(
                self.model_,
                self._table(data),
                self.transformer_.continuous_in_use,
                continuous=self.calibrate == "all",
                seed=self._calibration_seed,
                through=_through(self.transformer_),
            )
        self.prior = new.config()
        return self

    # -- persistence -------------------------------------------------------------------
    def save(
        self, path: str | os.PathLike, force: bool = False, allow_diverged: bool = False
    ) -> Path:
        """Write the fitted model to directory ``path`` (atomically); see ``ppvae.load``.
        A model whose training ended diverged is refused unless ``allow_diverged``."""
        return persistence.save(self, path, force=force, allow_diverged=allow_diverged)

    # -- scikit-learn estimator contract and pickling ----------------------------------
    # ppvae does not depend on scikit-learn, so the contract of ``sklearn.base.BaseEstimator``
    # is written out here; tests/test_sklearn_contract.py checks it with scikit-learn's tools.
    @classmethod
    def _get_param_names(cls) -> list[str]:
        return [
            k
            for k, p in inspect.signature(cls.__init__).parameters.items()
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments ``{name: value}``, as scikit-learn's ``get_params``.

        With ``deep=True`` a parameter that is itself an estimator (has ``get_params``) also
        contributes its own parameters as ``name__key``."""
        out = {}
        for k in self._get_param_names():
            value = getattr(self, k)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update({f"{k}__{kk}": vv for kk, vv in value.get_params().items()})
            out[k] = value
        return out

    def set_params(self, **params: Any) -> TabularVAE:
        """Set constructor arguments (``name__key`` reaches into a nested estimator); returns
        ``self``. Learned state is kept until the next ``fit``."""
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"{key!r} is not a parameter of {type(self).__name__}; valid: "
                    f"{', '.join(valid)}"
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """True once ``fit`` (or ``ppvae.load``) has run: ``sklearn.utils.check_is_fitted``."""
        return hasattr(self, "model_")

    @property
    def n_features_in_(self) -> int:
        """Number of columns seen in ``fit`` (scikit-learn's name)."""
        if not hasattr(self, "columns_"):
            raise AttributeError("n_features_in_ is set by fit")
        return len(self.columns_)

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags (scikit-learn >= 1.6): an unsupervised estimator of
        tables with strings, categories and missing values; no predict/transform."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            input_tags=InputTags(categorical=True, string=True, allow_nan=True),
        )

    def __getstate__(self) -> dict[str, Any]:
        """Plain data for pickle, joblib and ``torch.save``: the module as its ``state_dict``
        (plus the prior's config it was built with), the transformer and objective as dicts.
        Nothing refers to Pyro's global param store, so a fitted model pickles anywhere."""
        state = dict(self.__dict__)
        module = state.pop("model_", None)
        if module is not None:
            state["_pickled_module"] = {
                "prior": module.prior.config(),
                "likelihood": getattr(module, "likelihood", None),  # as trained (ppvae.budget)
                "weights": {k: v.detach().cpu().clone() for k, v in module.state_dict().items()},
                "device": str(next(module.parameters()).device),
            }
        if "transformer_" in state:
            state["transformer_"] = state["transformer_"].to_dict()
        if "objective_" in state:
            objective = state.pop("objective_")
            state["_pickled_objective"] = (objective.config(), objective.state_dict())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        pickled_module = state.pop("_pickled_module", None)
        pickled_objective = state.pop("_pickled_objective", None)
        self.__dict__.update(state)
        if isinstance(state.get("transformer_"), Mapping):
            self.transformer_ = TableTransformer.from_dict(state["transformer_"])
        if pickled_objective is not None:
            self.objective_ = objectives.build(pickled_objective[0])
            self.objective_.load_state_dict(pickled_objective[1])
        if pickled_module is not None:
            template = copy.copy(self)  # built with the prior the model was trained with
            template.prior = pickled_module["prior"]
            module = template._build_module(self.layout_, pickled_module.get("likelihood"))
            restore_detector(module, pickled_module["weights"])
            module.load_state_dict(pickled_module["weights"])
            device = pickled_module["device"]
            if device.startswith("cuda") and not torch.cuda.is_available():
                device = "cpu"
            self.model_ = module.to(device).eval()

    def __repr__(self) -> str:
        defaults = TabularVAE().get_params() if type(self) is TabularVAE else {}
        changed = {
            k: v
            for k, v in self.get_params().items()
            if k not in defaults or not _same(defaults[k], v)
        }
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args})"


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> TabularVAE:
    """A model written by :meth:`TabularVAE.save` (or ``ppvae fit``), on ``device``."""
    return persistence.load(path, device, estimator=TabularVAE)


def _as_frame(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame: arrays from a scikit-learn pipeline step get columns x0, x1, ..."""
    if isinstance(X, pd.DataFrame):
        return X
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError("sparse input is not supported: pass a DataFrame or a dense 2-D array")
    array = np.asarray(X)
    if np.iscomplexobj(array):
        raise ValueError("Complex data not supported: pass real numbers")
    if array.ndim != 2:
        raise ValueError(
            f"fit needs a table (2-D): a DataFrame or an array, got shape {array.shape}"
        )
    return pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors, objects without equality
        return a is b


def _through(transformer: TableTransformer) -> Callable[[TensorTable], TensorTable] | None:
    """What the calibration matches: the rows as delivered when value rules can change them
    (``TableTransformer.as_delivered``), else the generated slots themselves (None)."""
    return transformer.as_delivered if transformer.rules_.rules else None
