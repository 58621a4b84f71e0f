"""The training budget a fit uses when it is left to ppvae: ``batch_size="auto"``, ``patience="auto"``.

With a fixed batch of 500 rows, a 400-row table takes one optimiser step per epoch, and
early stopping (``patience`` epochs) ends the fit after a few dozen steps, long before the
decoder has learned how the columns depend on each other: the samples keep the marginals
but not the dependence (issue 18). So, by the number of training rows ``n``:

- ``batch_size="auto"`` is ``DEFAULT_BATCH`` rows when ``n >= MIN_STEPS * DEFAULT_BATCH``
  (5,000 rows), else ``ceil(n / MIN_STEPS)`` rows, at least ``MIN_BATCH``: every epoch of a
  small table takes ``MIN_STEPS`` optimiser steps (:func:`batch_size_for`);
- ``patience="auto"`` is ``DEFAULT_PATIENCE`` epochs on a table of at least 5,000 training
  rows and ``SMALL_TABLE_PATIENCE`` below: a small table's validation split is a few dozen
  rows, so its loss is noisy (:func:`patience_for`).

A number given for either is used as given (a user's choice wins), and a table of at least
5,000 training rows trains exactly as with ``batch_size=500, patience=20``. The rule was
chosen on validation subsamples (rows drawn with ``random_state=1``, scored on their own 20 %
split), never on the rows ``bench/small_tables.py`` reports; the numbers are in
``docs/collapse.md``.
"""

from __future__ import annotations

import math

AUTO = "auto"
DEFAULT_BATCH = 500
DEFAULT_PATIENCE = 20
MIN_STEPS = 10
MIN_BATCH = 32
SMALL_TABLE_PATIENCE = 50


def is_small(n_rows: int) -> bool:
    """Whether ``n_rows`` training rows make fewer than ``MIN_STEPS`` default batches."""
    return n_rows < MIN_STEPS * DEFAULT_BATCH


def batch_size_for(n_rows: int, batch_size: int | str = AUTO) -> int:
    """The minibatch size for ``n_rows`` training rows; ``"auto"`` adapts it to the table.

    >>> batch_size_for(400), batch_size_for(100_000), batch_size_for(100), batch_size_for(400, 64)
    (40, 500, 32, 64)
    """
    if batch_size != AUTO:
        return int(batch_size)
    if not is_small(n_rows):
        return DEFAULT_BATCH
    return max(MIN_BATCH, math.ceil(n_rows / MIN_STEPS))


def patience_for(n_rows: int, patience: int | str | None = AUTO) -> int | None:
    """Early-stopping patience (epochs) for ``n_rows`` training rows; ``None``: never stop.

    >>> patience_for(400), patience_for(100_000), patience_for(400, 20), patience_for(400, None)
    (50, 20, 20, None)
    """
    if patience != AUTO:
        return None if patience is None else int(patience)
    return SMALL_TABLE_PATIENCE if is_small(n_rows) else DEFAULT_PATIENCE
