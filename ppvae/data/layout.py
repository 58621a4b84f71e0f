"""The tensor view of a table that models consume.

A fitted :class:`~ppvae.data.transformer.TableTransformer` turns a DataFrame into a
:class:`TensorTable` of three groups of *slots*, and a :class:`Layout` that says which
source column each slot came from:

- ``x_cont``  float ``[n, n_cont]``: continuous slots (e.g. a quantile-normalised column, or
  the within-mode value of a mode-specific column); ``cont_mask`` is False where missing.
- ``x_cat``   long ``[n, n_cat]``: categorical slots (a categorical column's level index, or a
  mode-specific column's mode); ``cat_mask`` is False where the slot carries no information.
- ``x_miss``  float ``[n, n_miss]``: 1.0 where a numeric column that has NaNs is missing.

Grouping slots by kind lets a model use one observed Pyro site per group instead of one per
column, which is what keeps Pyro's per-site overhead small.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch


@dataclass(frozen=True)
class Layout:
    """Which source column each slot of a :class:`TensorTable` belongs to."""

    columns: tuple[str, ...]
    cont_names: tuple[str, ...] = ()
    cat_names: tuple[str, ...] = ()
    cat_cardinalities: tuple[int, ...] = ()
    miss_names: tuple[str, ...] = ()

    @property
    def n_cont(self) -> int:
        return len(self.cont_names)

    @property
    def n_cat(self) -> int:
        return len(self.cat_names)

    @property
    def n_miss(self) -> int:
        return len(self.miss_names)

    @property
    def input_dim(self) -> int:
        """Width of the dense encoder input: continuous + one-hot categorical + missingness."""
        return self.n_cont + sum(self.cat_cardinalities) + self.n_miss

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Layout:
        return cls(**{k: tuple(v) for k, v in state.items()})

    def features(self, table: TensorTable) -> torch.Tensor:
        """Dense encoder input ``[n, input_dim]``: masked continuous, one-hot categories, missingness."""
        parts = [table.x_cont * table.cont_mask]
        for j, card in enumerate(self.cat_cardinalities):
            onehot = torch.nn.functional.one_hot(table.x_cat[:, j], card).to(table.x_cont.dtype)
            parts.append(onehot * table.cat_mask[:, j : j + 1])
        parts.append(table.x_miss)
        return torch.cat(parts, dim=-1)

    def column_totals(
        self, cont: torch.Tensor, cat: torch.Tensor, miss: torch.Tensor
    ) -> torch.Tensor:
        """Sum per-slot values ``[..., n_slots]`` of the three groups into per-column ``[..., n_columns]``."""
        index = {name: i for i, name in enumerate(self.columns)}
        batch = cont.shape[:-1] if cont.numel() or cont.dim() > 1 else cat.shape[:-1]
        out = cont.new_zeros(*batch, len(self.columns))
        for values, names in (
            (cont, self.cont_names),
            (cat, self.cat_names),
            (miss, self.miss_names),
        ):
            if names:
                idx = torch.tensor([index[n] for n in names], device=out.device)
                out = out.index_add(-1, idx, values.to(out.dtype))
        return out


@dataclass
class TensorTable:
    """A table as tensors, grouped by slot kind (see the module docstring for shapes)."""

    x_cont: torch.Tensor
    cont_mask: torch.Tensor
    x_cat: torch.Tensor
    cat_mask: torch.Tensor
    x_miss: torch.Tensor
    features: torch.Tensor | None = None  # optional cached ``Layout.features`` [n, input_dim]

    def __len__(self) -> int:
        return self.x_cont.shape[0]

    def __getitem__(self, index: Any) -> TensorTable:
        return TensorTable(**{k: None if v is None else v[index] for k, v in self._items()})

    def to(self, device: torch.device | str) -> TensorTable:
        return TensorTable(**{k: None if v is None else v.to(device) for k, v in self._items()})

    def with_features(self, layout: Layout) -> TensorTable:
        """This table with :meth:`Layout.features` computed once and cached."""
        if self.features is not None:
            return self
        return TensorTable(**{**dict(self._items()), "features": layout.features(self)})

    def _items(self):
        return ((f.name, getattr(self, f.name)) for f in fields(self))

    @classmethod
    def empty(cls, layout: Layout, n: int, device: torch.device | str = "cpu") -> TensorTable:
        """An all-zero table of ``n`` rows (used as a shape template when sampling)."""
        return cls(
            x_cont=torch.zeros(n, layout.n_cont, device=device),
            cont_mask=torch.ones(n, layout.n_cont, dtype=torch.bool, device=device),
            x_cat=torch.zeros(n, layout.n_cat, dtype=torch.long, device=device),
            cat_mask=torch.ones(n, layout.n_cat, dtype=torch.bool, device=device),
            x_miss=torch.zeros(n, layout.n_miss, device=device),
        )
