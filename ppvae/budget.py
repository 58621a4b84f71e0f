"""The training budget a fit uses on a small table: smaller batches, more patience.

With a fixed batch of 500 rows, a 400-row table takes one optimiser step per epoch, and
early stopping (``patience`` epochs) ends the fit after a few dozen steps, long before the
decoder has learned how the columns depend on each other: the samples keep the marginals
but not the dependence (issue 18). A table of fewer than ``MIN_STEPS`` batches therefore

- trains on batches of ``ceil(rows / MIN_STEPS)`` rows (at least ``MIN_BATCH``), so each
  epoch takes ``MIN_STEPS`` steps (:func:`batch_size_for`);
- waits at least ``SMALL_TABLE_PATIENCE`` epochs for a better validation loss
  (:func:`patience_for`): its validation split is a few dozen rows, so its loss is noisy.

A table of at least ``MIN_STEPS * batch_size`` training rows trains exactly as asked. The
rule was chosen on validation subsamples (``random_state=1`` rows of Adult, Default and
Shoppers, 500 rows with two ID columns, scored on their own 20 % split), never on the rows
``bench/small_tables.py`` reports; the numbers are in ``bench/results/small_tables.md``.
"""

from __future__ import annotations

import math

MIN_STEPS = 10
MIN_BATCH = 32
SMALL_TABLE_PATIENCE = 50


def is_small(n_rows: int, batch_size: int) -> bool:
    """Whether ``n_rows`` training rows make fewer than ``MIN_STEPS`` batches."""
    return n_rows < MIN_STEPS * batch_size


def batch_size_for(n_rows: int, batch_size: int) -> int:
    """The minibatch size for ``n_rows`` training rows when at most ``batch_size`` is asked.

    >>> batch_size_for(400, 500), batch_size_for(100_000, 500), batch_size_for(100, 500)
    (40, 500, 32)
    """
    return int(min(batch_size, max(MIN_BATCH, math.ceil(n_rows / MIN_STEPS))))


def patience_for(n_rows: int, batch_size: int, patience: int | None) -> int | None:
    """Early-stopping patience (epochs) for ``n_rows`` training rows; ``None`` stays ``None``.

    >>> patience_for(400, 500, 20), patience_for(100_000, 500, 20), patience_for(400, 500, None)
    (50, 20, None)
    """
    if patience is None or not is_small(n_rows, batch_size):
        return patience
    return max(int(patience), SMALL_TABLE_PATIENCE)
