r"""The training budget and prior a fit uses when they are left to ppvae (``"auto"``).

With a fixed batch of 500 rows, a 400-row table takes one optimiser step per epoch, and
early stopping (``patience`` epochs) ends the fit after a few dozen steps, long before the
decoder has learned how the columns depend on each other: the samples keep the marginals
but not the dependence (issue 18). So, by the number of training rows ``n``:

- ``batch_size="auto"`` is ``DEFAULT_BATCH`` rows when ``n >= MIN_STEPS * DEFAULT_BATCH``
  (5,000 rows), else ``ceil(n / MIN_STEPS)`` rows, at least ``MIN_BATCH``: every epoch of a
  small table takes ``MIN_STEPS`` optimiser steps (:func:`batch_size_for`);
- ``patience="auto"`` is ``DEFAULT_PATIENCE`` epochs on a table of at least 5,000 training
  rows and ``SMALL_TABLE_PATIENCE`` below: a small table's validation split is a few dozen
  rows, so its loss is noisy (:func:`patience_for`);
- ``epochs="auto"`` is at most ``LARGE_TABLE_EPOCHS`` epochs on a table of at least 5,000
  training rows and ``DEFAULT_EPOCHS`` below (:func:`epochs_for`): on a large table the
  validation ELBO still falls after 300 epochs (Default: 17.20, 16.97, 16.60 nats/row at
  epochs 100, 150, 250; diamonds 3.02, 2.68, 2.37), so early stopping ended anywhere between
  130 and 270 epochs and a fit took up to 325 s on 2 cores, while the samples gained little
  after about 150 (validation split, detection AUC: Default 0.837 at 120 epochs, 0.824 at
  147; diamonds 0.687 at 120, 0.660 at 212; after the calibration's larger draws, 0.801 at 160
  and 0.802 at 180, diamonds 0.664 and 0.668). The cap keeps a fit under 200 s on 2 cores:
  200 epochs took Default 219 s, and 160 did until the chains' mixtures made an epoch dearer
  (Default 195-214 s in three bench runs on 2026-11-29), so it is 140 since then (validation
  split, detection AUC at 160 and 140 epochs: Default 0.705-0.718 and 0.718, diamonds
  0.648-0.655 and 0.644). A learning
  rate of 2e-3 instead got as far in fewer epochs on Default and diamonds but ended with no
  active latent unit on Shoppers (the bench split), so lr stays 1e-3. Below 5,000 rows, 200
  epochs gave the same ML efficacy as 300 on the validation subsamples (mean of the twelve
  cases 0.839 against 0.838; Default at 2,000 rows 0.708 against 0.685), in two thirds of
  the time;
- ``objective="auto"`` is, from 5,000 rows, the ELBO, and a fit that ends with no active
  latent unit is refitted once with ``LARGE_TABLE_FREE_BITS`` free nats per latent dimension
  (``free_bits``, Kingma et al. 2016; :func:`refit_objective`): since each chained numeric
  slot is a mixture of Normals given the slots before it (``ppvae.normal_mixture``), the
  chains alone can carry a table's dependence, and under the plain ELBO no latent unit stayed
  active on Adult and Shoppers (0 of 16, the post-fit check's collapse warning), which leaves
  z, the priors and the latent diagnostics nothing to work on. Free bits keep z in use there
  at about the same fidelity (validation split, detection AUC without and with free bits:
  Adult 0.530 and 0.538, Shoppers 0.555 and 0.560, Default 0.718 and 0.720), but on a table
  whose ELBO fit keeps its units they cost fidelity (diamonds 0.673 -> 0.706 with 0.05 free
  nats on its validation split, 0.642 -> 0.701 with 0.25 on the bench's), so they are used
  only after a collapsed fit. A fit with no active unit after ``WATCH_EPOCHS`` = 20 epochs
  is stopped there and refitted at once (``ppvae.collapse_watch``: collapse under the ELBO
  sets in within the first epochs and stays). On a small table it is a
  cyclically annealed ELBO whose KL weight rises from 0 to ``SMALL_TABLE_BETA``
  ``SMALL_TABLE_CYCLES`` times, each rise taking ``SMALL_TABLE_RAMP`` of a cycle
  (:func:`objective_for`; Fu et al. 2019): a few hundred rows carry too little evidence to pay the full KL price for what z must say about a rare
  target or a category's effect on a number, so the plain ELBO keeps a column's marginal but
  weakens its dependence on the others (Shoppers, 400 rows: P(Revenue | PageValues > 0) =
  0.50 against 0.02 for PageValues = 0 in the real rows, 0.24 against 0.08 in the samples;
  Diamonds, 800 rows: clarity I1 lowers log price by 0.76 at a given carat, by 0.04 in the
  samples of a constant beta = 0.5); each cycle's KL-free start lets the encoder put those
  columns into z before the weight returns, and early stopping waits for the last rise;
- ``likelihood="normal"`` on a small table raises the normal family's scale floor from
  1e-3 to ``SMALL_TABLE_MIN_SCALE`` (:func:`likelihood_for`): a quantile-normalised numeric
  cell under a floor of 1e-3 can earn up to ~6 nats while a categorical cell earns at most 0,
  so with a few thousand rows the code z goes to numeric precision and drops a rare binary
  target (Shoppers, 1,600 validation rows: the encoder mean predicts Revenue with AUC 0.80
  under 1e-3 and 0.94 under 0.1); the floor caps a numeric cell near 1.4 nats. A
  ``{name: normal, min_scale: ...}`` spec or another family is used as given;
- ``prior="auto"`` trains with the standard normal, then samples from the aggregate
  posterior: a Gaussian mixture fitted to
  :math:`q(z) = \frac1N \sum_n q(z \mid x_n)` of the training rows
  (:func:`ex_post_prior_for`, ``ppvae.priors.aggregate``), of ``SMALL_TABLE_COMPONENTS``
  components on a small table and ``AGGREGATE_COMPONENTS`` from 5,000 rows: N(0, I) puts
  mass where no row's code lives (*holes*, worst with a few hundred rows, whose posteriors
  are sharp), and the rows decoded there blur the dependence between the columns. On the
  four shared tables' validation splits it lowered the detection AUC on all four and raised
  Pair Trends (Default 0.943 -> 0.971), at no loss of privacy (bench/results/fidelity_wave2.md).

A value given for any of them is used as given (a user's choice wins), and a table of at
least 5,000 training rows trains exactly as with ``epochs=200, batch_size=500,
patience=20, prior="standard_normal", objective="elbo"`` (refitted once with
``objective={"name": "free_bits", "nats_per_dim": 0.25}`` if that ends collapsed) and the
normal family's floor 1e-3
(and samples through its fitted q(z)). A KL
weight below one widens the posteriors' spread away from N(0, I), which is why the
small-table objective and prior go together: a constant beta = 0.5 alone made samples drawn
from N(0, I) worse, the aggregate prior alone did not help on average. The small-table rule
was chosen on validation subsamples (rows drawn with ``random_state=1``, scored on their own 20 %
split), never on the rows ``bench/small_tables.py`` reports; the numbers are in
``docs/collapse.md``.
"""

from __future__ import annotations

import math
from typing import Any

AUTO = "auto"
DEFAULT_EPOCHS = 200
LARGE_TABLE_EPOCHS = 140
DEFAULT_BATCH = 500
DEFAULT_PATIENCE = 20
MIN_STEPS = 10
MIN_BATCH = 32
SMALL_TABLE_PATIENCE = 50
SMALL_TABLE_COMPONENTS = 3
AGGREGATE_MIN_ROWS = 100  # fewer codes than this: too few to fit the mixture, keep N(0, I)
SMALL_TABLE_BETA = 0.5
LARGE_TABLE_FREE_BITS = 0.25  # free nats per latent dimension from 5,000 rows
AGGREGATE_COMPONENTS = 10  # the ex-post mixture of a table of >= 5,000 training rows
SMALL_TABLE_CYCLES = 4
SMALL_TABLE_RAMP = 0.5
SMALL_TABLE_MIN_SCALE = 0.1  # scale floor of the normal family's quantile-normalised slots
TRAINING_PRIOR = "standard_normal"


def is_small(n_rows: int) -> bool:
    """Whether ``n_rows`` training rows make fewer than ``MIN_STEPS`` default batches."""
    return n_rows < MIN_STEPS * DEFAULT_BATCH


def batch_size_for(n_rows: int, batch_size: int | str = AUTO) -> int:
    """The minibatch size for ``n_rows`` training rows; ``"auto"`` adapts it to the table.

    >>> batch_size_for(400), batch_size_for(100_000), batch_size_for(100), batch_size_for(400, 64)
    (40, 500, 32, 64)
    """
    if not _is_auto(batch_size):
        return int(batch_size)
    if not is_small(n_rows):
        return DEFAULT_BATCH
    return max(MIN_BATCH, math.ceil(n_rows / MIN_STEPS))


def epochs_for(n_rows: int, epochs: int | str = AUTO) -> int:
    """The most epochs a fit on ``n_rows`` training rows runs; ``"auto"`` adapts it.

    >>> epochs_for(400), epochs_for(100_000), epochs_for(100_000, 50)
    (200, 140, 50)
    """
    if not _is_auto(epochs):
        return int(epochs)
    return DEFAULT_EPOCHS if is_small(n_rows) else LARGE_TABLE_EPOCHS


def patience_for(n_rows: int, patience: int | str | None = AUTO) -> int | None:
    """Early-stopping patience (epochs) for ``n_rows`` training rows; ``None``: never stop.

    >>> patience_for(400), patience_for(100_000), patience_for(400, 20), patience_for(400, None)
    (50, 20, 20, None)
    """
    if not _is_auto(patience):
        return None if patience is None else int(patience)
    return SMALL_TABLE_PATIENCE if is_small(n_rows) else DEFAULT_PATIENCE


def objective_for(n_rows: int, objective: Any = AUTO) -> Any:
    """The objective for ``n_rows`` training rows: ``"auto"`` is the ELBO, or on a small
    table the cyclically annealed ELBO with KL weights up to ``SMALL_TABLE_BETA``.

    >>> objective_for(100_000), objective_for(400, "geco")
    ('elbo', 'geco')
    >>> objective_for(400)
    {'name': 'anneal', 'schedule': 'cyclical', 'cycles': 4, 'ratio': 0.5, 'beta_max': 0.5}
    """
    if not _is_auto(objective):
        return objective
    if not is_small(n_rows):
        return "elbo"
    return {
        "name": "anneal",
        "schedule": "cyclical",
        "cycles": SMALL_TABLE_CYCLES,
        "ratio": SMALL_TABLE_RAMP,
        "beta_max": SMALL_TABLE_BETA,
    }


def refit_objective(n_rows: int, objective: Any = AUTO) -> dict | None:
    """The objective of the one refit after a fit that ended with no active latent unit:
    ``LARGE_TABLE_FREE_BITS`` free nats per dimension when ``objective`` is ``"auto"`` on a
    table of at least 5,000 rows; None (no refit) otherwise: a user's objective, or a small
    table's annealed ELBO, is used as given.

    >>> refit_objective(100_000), refit_objective(400), refit_objective(100_000, "elbo")
    ({'name': 'free_bits', 'nats_per_dim': 0.25}, None, None)
    """
    if not _is_auto(objective) or is_small(n_rows):
        return None
    return {"name": "free_bits", "nats_per_dim": LARGE_TABLE_FREE_BITS}


def likelihood_for(n_rows: int, likelihood: Any) -> Any:
    """The continuous slots' family for ``n_rows`` training rows: on a small table the
    ``"normal"`` family gets the scale floor ``SMALL_TABLE_MIN_SCALE``; anything else (a
    large table, another family, a ``{name: normal, min_scale: ...}`` spec) as given.

    >>> likelihood_for(400, "normal"), likelihood_for(100_000, "normal")
    ({'name': 'normal', 'min_scale': 0.1}, 'normal')
    >>> likelihood_for(400, "laplace"), likelihood_for(400, {"name": "normal", "min_scale": 0.001})
    ('laplace', {'name': 'normal', 'min_scale': 0.001})
    """
    if not is_small(n_rows) or not (isinstance(likelihood, str) and likelihood == "normal"):
        return likelihood
    return {"name": "normal", "min_scale": SMALL_TABLE_MIN_SCALE}


def training_prior(prior: Any) -> Any:
    """The prior a model trains with: ``"auto"`` trains with the standard normal."""
    return TRAINING_PRIOR if _is_auto(prior) else prior


def ex_post_prior_for(n_rows: int, prior: Any) -> dict[str, Any] | None:
    """The prior spec a fit on ``n_rows`` training rows swaps in after training (fitted to
    q(z) of those rows), or ``None`` to keep the trained one (also below
    ``AGGREGATE_MIN_ROWS`` rows, too few codes to fit a mixture to).

    >>> ex_post_prior_for(400, "auto"), ex_post_prior_for(100_000, "auto")
    ({'name': 'aggregate', 'components': 3}, {'name': 'aggregate', 'components': 10})
    >>> ex_post_prior_for(400, "standard_normal") is None, ex_post_prior_for(99, "auto") is None
    (True, True)
    """
    if not _is_auto(prior) or n_rows < AGGREGATE_MIN_ROWS:
        return None
    components = SMALL_TABLE_COMPONENTS if is_small(n_rows) else AGGREGATE_COMPONENTS
    return {"name": "aggregate", "components": components}


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO
