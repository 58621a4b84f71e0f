"""How a fit divides its rows: a validation split and, under ``torchrun``, one training
shard per process.

- In memory: a seeded permutation of the rows, as ever; the first ``val_fraction`` of it
  is the validation split. With several processes each takes every ``world``-th row of
  both splits (``rank``, ``rank + world``, ...), its training shard cut to the smallest
  shard's length so that every process takes the same number of steps.
- Streamed: no process sees the whole table at once, so a row's fate is a function of
  its global row number and the seed only: ``h = splitmix64(row + seed * golden)``; the
  row is held out when ``h / 2**64 < val_fraction``, and otherwise trained on by the
  process ``splitmix64(h) mod world``. Every process agrees without a shuffle or a message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ppvae.data.layout import TensorTable

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class Split:
    """What training needs of a table: the training rows of this process (a
    :class:`TensorTable`, or a stream with ``batches``), the validation rows (None: none),
    the number of rows of the table, and a bounded sample of them as a frame (for the
    post-fit health check and data-initialised priors)."""

    train: object
    val: TensorTable | None
    n_rows: int
    sample: pd.DataFrame


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_fate(rows: np.ndarray, seed: int, val_fraction: float, world: int = 1):
    """``(held_out [n] bool, shard [n] int)`` of global row numbers ``rows``."""
    with np.errstate(over="ignore"):
        h = splitmix64(rows.astype(np.uint64) + np.uint64(seed) * GOLDEN)
    held_out = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53 < val_fraction
    shard = (splitmix64(h) % np.uint64(world)).astype(np.int64)
    return held_out, shard


def memory_split(
    table: TensorTable, val_fraction: float, rank: int = 0, world: int = 1
) -> tuple[TensorTable, TensorTable | None]:
    """Training and validation rows of this process (see the module docstring); draws one
    permutation from torch's global generator."""
    n = len(table)
    order = torch.randperm(n)
    n_val = int(round(val_fraction * n)) if n >= 20 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    if world > 1:
        shard = len(train_idx) // world
        if shard == 0:
            raise ValueError(
                f"{len(train_idx)} training rows cannot be shared by {world} processes; "
                "run fewer processes"
            )
        train_idx = train_idx[rank::world][:shard]
        if n_val >= world:  # else every process validates on all of them
            val_idx = val_idx[rank::world][: n_val // world]
    return table[train_idx], (table[val_idx] if n_val else None)
