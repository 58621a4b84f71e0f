"""Fitting on a table streamed in blocks: memory bounded by the block and sample sizes,
not by the table.

1. One pass (:func:`scan`) reads every block once: a :class:`~ppvae.data.sketch.RowReservoir`
   of ``MAX_FIT_ROWS`` rows plus the :class:`~ppvae.data.sketch.Witnesses` rows fit the
   :class:`~ppvae.data.transformer.TableTransformer` (schema, levels, quantiles), the
   row-hash split (:mod:`ppvae.data.split`) counts each process's training rows, and a
   second reservoir keeps up to ``MAX_VAL_ROWS`` validation rows, which stay in memory.
2. Each epoch (:class:`StreamTable`) reads the pieces in a fresh random order, keeps this
   process's training rows of each block, transforms them and shuffles them in a buffer of
   ``shuffle_rows`` rows before cutting minibatches; every process takes the same number of
   steps (that of the smallest shard).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ppvae.data.errors import DataError
from ppvae.data.layout import Layout, TensorTable
from ppvae.data.sketch import RowReservoir, Witnesses, concat_rows
from ppvae.data.sources import BLOCK_ROWS, Source, open_source
from ppvae.data.split import Split, row_fate
from ppvae.data.transformer import TableTransformer
from ppvae.data.transforms import MAX_FIT_ROWS

MAX_VAL_ROWS = 50_000
SHUFFLE_ROWS = 262_144


def concat_tables(tables: list[TensorTable]) -> TensorTable:
    """Row-wise concatenation of tables with the same tensors (and cached features)."""
    if len(tables) == 1:
        return tables[0]
    features = None
    if tables[0].features is not None:
        features = torch.cat([t.features for t in tables])
    return TensorTable(
        features=features, **{k: torch.cat([t[k] for t in tables]) for k in tables[0].keys()}
    )


def scan(
    source: Source,
    transformer: TableTransformer,
    *,
    seed: int,
    val_fraction: float,
    world: int = 1,
    block_rows: int = BLOCK_ROWS,
    sample_rows: int = MAX_FIT_ROWS,
    verbose: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, int, np.ndarray]:
    """Fit ``transformer`` in one pass over ``source`` (see the module docstring).

    Returns ``(fit_rows, val_rows, n_rows, train_rows)``: the rows the transformer was fitted
    on, up to ``MAX_VAL_ROWS`` validation rows, the table's length, and the number of
    training rows of each of the ``world`` shards ``[world]``. ``sample_rows``: the size of
    the row sample the transforms are fitted on.
    """
    sample = RowReservoir(sample_rows, seed=seed)
    witnesses = Witnesses()
    held = RowReservoir(MAX_VAL_ROWS, seed=seed + 1)
    counts = np.zeros(world, dtype=np.int64)
    columns: list[Any] | None = None
    n_rows = 0
    with tqdm(desc="scan", unit="rows", disable=not verbose, leave=False) as bar:
        for block in source.blocks(block_rows=block_rows):
            if columns is None:
                columns = list(block.columns)
            elif list(block.columns) != columns:
                raise DataError(
                    f"rows {block.index[0]}.. of {source.label} have columns "
                    f"{list(block.columns)}, not {columns}"
                )
            sample.add(block)
            witnesses.add(block, transformer.prepare(block))
            held_out, shard = row_fate(block.index.to_numpy(), seed, val_fraction, world)
            held.add(block[held_out])
            counts += np.bincount(shard[~held_out], minlength=world)
            n_rows += len(block)
            bar.update(len(block))
    if n_rows == 0:
        raise DataError(f"{source.label} holds no data rows")
    rows = sample.sample
    fit_rows = concat_rows([rows, witnesses.frame(rows, transformer.prepare(rows))])
    transformer.fit(fit_rows)
    many = [
        c.name
        for c in transformer.schema_.columns
        if c.kind == "categorical" and c.name in witnesses.overflowing
    ]
    if many:
        raise DataError(
            f"column(s) {many} have more than {witnesses.max_levels} distinct values, too many "
            "to learn as categories from a stream; drop them, or declare them "
            "kinds={...: 'identifier'} (generated, not learned) or numeric"
        )
    val_rows = held.sample if len(held) else rows.iloc[:0]
    return fit_rows, val_rows, n_rows, counts


class StreamTable:
    """This process's training rows of a streamed table, as the trainer takes them:
    ``len()`` rows (the same in every process), ``batches(batch_size, generator)`` for one
    epoch, ``head(k)`` for a first look, ``digest`` (uint8 tensor) for checkpoints."""

    def __init__(
        self,
        source: Source,
        transformer: TableTransformer,
        *,
        rows: int,
        seed: int,
        val_fraction: float,
        rank: int = 0,
        world: int = 1,
        device: torch.device | str = "cpu",
        block_rows: int = BLOCK_ROWS,
        shuffle_rows: int = SHUFFLE_ROWS,
    ):
        self.source, self.transformer = source, transformer
        self.layout: Layout = transformer.layout_
        self.rows, self.seed, self.val_fraction = int(rows), int(seed), float(val_fraction)
        self.rank, self.world = int(rank), int(world)
        self.device = torch.device(device)
        self.block_rows, self.shuffle_rows = int(block_rows), int(shuffle_rows)
        settings = f"{rows}:{seed}:{val_fraction}:{rank}:{world}".encode()
        digest = hashlib.sha256(source.digest + settings).digest()
        self.digest = torch.tensor(list(digest), dtype=torch.uint8)

    def __len__(self) -> int:
        return self.rows

    def _tables(self, order: list[int] | None) -> Iterator[TensorTable]:
        """This process's training rows, block by block, transformed (on the CPU)."""
        for block in self.source.blocks(order, self.block_rows):
            held_out, shard = row_fate(
                block.index.to_numpy(), self.seed, self.val_fraction, self.world
            )
            mine = block[~held_out & (shard == self.rank)]
            if len(mine):
                yield self.transformer.transform(mine).with_features(self.layout)

    def head(self, k: int) -> TensorTable:
        """The first ``k`` training rows (file order), on the device."""
        taken, n = [], 0
        for table in self._tables(None):
            taken.append(table[: k - n])
            n += len(taken[-1])
            if n >= k:
                break
        return concat_tables(taken).to(self.device)

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[TensorTable]:
        """One epoch: ``ceil(len / batch_size)`` minibatches on the device, pieces in a random
        order, rows shuffled within buffers of ``shuffle_rows`` rows."""
        steps = math.ceil(self.rows / batch_size)
        order = torch.randperm(len(self.source.pieces), generator=generator).tolist()
        buffer: list[TensorTable] = []
        buffered = 0
        for table in self._tables(order):
            buffer.append(table)
            buffered += len(table)
            if buffered < self.shuffle_rows:
                continue
            mixed = concat_tables(buffer)
            mixed = mixed[torch.randperm(len(mixed), generator=generator)]
            full = len(mixed) // batch_size * batch_size
            for start in range(0, full, batch_size):
                yield mixed[start : start + batch_size].to(self.device)
                steps -= 1
                if steps == 0:
                    return
            buffer, buffered = ([mixed[full:]], len(mixed) - full) if full < len(mixed) else ([], 0)
        if buffered and steps:
            mixed = concat_tables(buffer)
            mixed = mixed[torch.randperm(len(mixed), generator=generator)]
            for start in range(0, len(mixed), batch_size):
                yield mixed[start : start + batch_size].to(self.device)
                steps -= 1
                if steps == 0:
                    return


def stream_split(
    data: Any,
    transformer: TableTransformer,
    *,
    seed: int,
    val_fraction: float,
    rank: int = 0,
    world: int = 1,
    device: torch.device | str = "cpu",
    verbose: bool = False,
    share=None,
    block_rows: int = BLOCK_ROWS,
) -> tuple[Split, Source]:
    """Open ``data`` (:func:`ppvae.data.sources.open_source`), scan it (:func:`scan`) and
    return its :class:`Split` and the open source (close it after training).

    ``share(obj)``: under ``torchrun``, rank 0's scan result as every rank receives it
    (only rank 0 scans); None in a single process."""
    source = open_source(data, missing_values=transformer.missing_values)
    try:
        result: Any = None
        if rank == 0:
            try:
                fit_rows, val_rows, n_rows, counts = scan(
                    source,
                    transformer,
                    seed=seed,
                    val_fraction=val_fraction,
                    world=world,
                    block_rows=block_rows,
                    verbose=verbose,
                )
            except DataError as exc:
                if share is not None:  # the other ranks wait for the scan: tell them why not
                    share(exc)
                raise
            result = (transformer.to_dict(), fit_rows, val_rows, n_rows, counts)
        if share is not None:
            result = share(result)
        if isinstance(result, DataError):
            raise DataError(f"rank 0 could not read the table: {result}")
        state, fit_rows, val_rows, n_rows, counts = result
        transformer = TableTransformer.from_dict(state)
        if len(val_rows) >= world and world > 1:
            val_rows = val_rows.iloc[rank::world]
        val = None
        if len(val_rows):
            val = transformer.transform(val_rows).with_features(transformer.layout_).to(device)
        train = StreamTable(
            source,
            transformer,
            rows=int(counts.min()),
            seed=seed,
            val_fraction=val_fraction,
            rank=rank,
            world=world,
            device=device,
            block_rows=block_rows,
        )
    except BaseException:
        source.close()
        raise
    if train.rows == 0:
        source.close()
        raise DataError(
            f"{source.label}: no training rows left for every process ({n_rows} rows, "
            f"val_fraction={val_fraction}, {world} process(es))"
        )
    split = Split(train=train, val=val, n_rows=n_rows, sample=fit_rows)
    return split, source
