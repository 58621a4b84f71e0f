"""The minibatch size a fit uses: small tables get smaller batches, so they still train.

With a fixed batch of 500 rows, a 400-row table takes one optimiser step per epoch: early
stopping (``patience`` epochs) then ends the fit after a few dozen steps, long before the
decoder has learned how the columns depend on each other, and the samples keep the
marginals but not the dependence (issue 18). :func:`batch_size_for` keeps at least
``MIN_STEPS`` steps per epoch, never going below ``MIN_BATCH`` rows; a table of at least
``MIN_STEPS * batch_size`` training rows trains exactly as asked. The constant was chosen on
validation subsamples, never the rows ``bench/small_tables.py`` reports (see there).
"""

from __future__ import annotations

import math

MIN_STEPS = 10
MIN_BATCH = 32


def batch_size_for(n_rows: int, batch_size: int) -> int:
    """The minibatch size for ``n_rows`` training rows when at most ``batch_size`` is asked.

    >>> batch_size_for(400, 500), batch_size_for(100_000, 500), batch_size_for(100, 500)
    (40, 500, 32)
    """
    return int(min(batch_size, max(MIN_BATCH, math.ceil(n_rows / MIN_STEPS))))
