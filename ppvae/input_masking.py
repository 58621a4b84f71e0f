r"""Partial rows as tables: which cells of a row are observed, at the level of columns.

A column is *observed* in a row when every slot it owns (a numeric column's value slot, a
mode-specific column's mode slot, its missingness indicator; a categorical column's level)
enters the likelihood and the encoder input. :func:`observe_columns` hides whole columns by
clearing their slots' masks (``x_miss`` gets a ``miss_mask`` of its own), so that

- the model's observed sites count only the observed cells: ``log p(x_S | z)``;
- the encoder sees zeros where a cell is hidden (:meth:`~ppvae.data.layout.Layout.features`).

A hidden cell is not "missing in the data": its missingness indicator is hidden with it.

:func:`hide_cells` is the input masking of training (the input-dropout idea of the partial
VAE / HI-VAE / VAEAC line of work): each row hides a share :math:`u \sim U(0, 2r)` of its
columns from the encoder, whose input is then a random partial row, while the decoder still
reconstructs every cell. Any q trained this way is still a valid ELBO proposal for full rows,
and it becomes a usable proposal :math:`q(z \mid x_S)` for any observed subset S.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ppvae.data.layout import Layout, TensorTable, mask_name


@lru_cache(maxsize=32)
def _slot_columns(layout: Layout) -> dict[str, torch.Tensor]:
    index = {name: j for j, name in enumerate(layout.columns)}
    return {
        group: torch.tensor([index[name] for name in names], dtype=torch.long)
        for group, names in layout.slots.items()
    }


def slot_columns(layout: Layout, group: str, device: torch.device) -> torch.Tensor:
    """Column index (into ``layout.columns``) of each slot of ``group``, ``[n_slots]``."""
    return _slot_columns(layout)[group].to(device)


def observe_columns(layout: Layout, table: TensorTable, observed: torch.Tensor) -> TensorTable:
    """``table`` with the cells of columns where ``observed`` ``[n, n_columns]`` is False
    hidden: every slot mask of those columns cleared (existing masks kept otherwise)."""
    tensors = {}
    for group in layout.slots:
        values = table[group]
        keep = observed[:, slot_columns(layout, group, values.device)]
        mask = table.mask(group)
        tensors[group] = values
        tensors[mask_name(group)] = keep if mask is None else mask & keep
    for key in table.keys():
        tensors.setdefault(key, table[key])
    return TensorTable(**tensors)


def hide_cells(layout: Layout, table: TensorTable, rate: float) -> TensorTable:
    r"""A random partial copy of ``table`` for training the encoder: row ``i`` hides each
    column with probability :math:`u_i \sim U(0, 2\,\mathrm{rate})` (``rate`` in [0, 0.5] is the
    expected hidden share of cells)."""
    n, device = len(table), table[next(iter(layout.slots))].device
    share = torch.rand(n, 1, device=device) * (2.0 * rate)
    observed = torch.rand(n, len(layout.columns), device=device) >= share
    return observe_columns(layout, table, observed)
