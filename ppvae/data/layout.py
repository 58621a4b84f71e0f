"""The tensor view of a table that models consume.

A fitted :class:`~ppvae.data.transformer.TableTransformer` turns a DataFrame into a
:class:`TensorTable` of *slot groups*, and a :class:`Layout` that says which source column
each slot came from. The transformer fills three groups:

- ``x_cont``  float ``[n, n_cont]``: continuous slots (e.g. a quantile-normalised column, or
  the within-mode value of a mode-specific column); ``cont_mask`` is False where missing.
- ``x_cat``   long ``[n, n_cat]``: categorical slots (a categorical column's level index, or a
  mode-specific column's mode); ``cat_mask`` is False where the slot carries no information.
- ``x_miss``  float ``[n, n_miss]``: 1.0 where a numeric column that has NaNs is missing.

A further group ``x_<kind>`` (say ``x_count``) is declared in ``Layout.extra_slots`` and
held in the table under its name, with an optional mask ``<kind>_mask``. How a group is
modelled (its distribution, its decoder parameters) is the model's business:
:mod:`ppvae.likelihoods` keeps that registry. Grouping slots by kind lets a model use one
observed Pyro site per group instead of one per column, which keeps Pyro's per-site
overhead small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

CONTINUOUS = "x_cont"
CATEGORICAL = "x_cat"


def mask_name(group: str) -> str:
    """The table key of a group's mask: ``x_cont`` -> ``cont_mask``."""
    return f"{group.removeprefix('x_')}_mask"


@dataclass(frozen=True)
class Layout:
    """Which source column each slot of a :class:`TensorTable` belongs to."""

    columns: tuple[str, ...]
    cont_names: tuple[str, ...] = ()
    cat_names: tuple[str, ...] = ()
    cat_cardinalities: tuple[int, ...] = ()
    miss_names: tuple[str, ...] = ()
    extra_slots: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (group, source column per slot)
    #: per continuous slot, ``(categorical slot, level)``: the slot's value is read (decoded)
    #: only in rows on that level, e.g. a point-mass column's "elsewhere"; ``(-1, -1)``: always.
    #: Empty: every slot always (a layout saved before gates existed).
    cont_gates: tuple[tuple[int, int], ...] = ()

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
    def slots(self) -> dict[str, tuple[str, ...]]:
        """Source column of each slot, per slot group, groups in order (empty ones too)."""
        return {
            "x_cont": self.cont_names,
            CATEGORICAL: self.cat_names,
            "x_miss": self.miss_names,
            **{group: tuple(names) for group, names in self.extra_slots},
        }

    @property
    def input_dim(self) -> int:
        """Width of the dense encoder input (:meth:`features`)."""
        return sum(
            sum(self.cat_cardinalities) if group == CATEGORICAL else len(names)
            for group, names in self.slots.items()
        )

    def to_dict(self) -> dict[str, Any]:
        state = {f.name: list(getattr(self, f.name)) for f in fields(self)}
        state["extra_slots"] = [[group, list(names)] for group, names in self.extra_slots]
        state["cont_gates"] = [list(gate) for gate in self.cont_gates]
        for name in ("extra_slots", "cont_gates"):  # files written before they existed stay
            if not state[name]:
                del state[name]
        return state

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Layout:
        state = dict(state)
        extra = tuple((str(g), tuple(names)) for g, names in state.pop("extra_slots", []))
        gates = tuple((int(c), int(level)) for c, level in state.pop("cont_gates", []))
        return cls(**{k: tuple(v) for k, v in state.items()}, extra_slots=extra, cont_gates=gates)

    def features(self, table: TensorTable) -> torch.Tensor:
        """Dense encoder input ``[n, input_dim]``, groups in order: categorical slots one-hot,
        every other group's values as floats; each zeroed where its mask is False."""
        parts = []
        for group in self.slots:
            values, mask = table[group], table.mask(group)
            if group == CATEGORICAL:
                for j, card in enumerate(self.cat_cardinalities):
                    onehot = torch.nn.functional.one_hot(values[:, j], card).float()
                    parts.append(onehot * mask[:, j : j + 1] if mask is not None else onehot)
            else:
                parts.append(values.float() * mask if mask is not None else values.float())
        return torch.cat(parts, dim=-1)

    def column_totals(self, parts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sum per-slot values ``{group: [..., n_slots]}`` into per-column ``[..., n_columns]``."""
        index = {name: i for i, name in enumerate(self.columns)}
        out = None
        for group, values in parts.items():
            if out is None:
                out = values.new_zeros(*values.shape[:-1], len(self.columns))
            names = self.slots[group]
            if names:
                idx = torch.tensor([index[n] for n in names], device=out.device)
                out = out.index_add(-1, idx, values.to(out.dtype))
        if out is None:
            raise ValueError("column_totals needs at least one slot group")
        return out


class TensorTable:
    """A table as tensors, by name: slot groups (``x_cont`` ``[n, n_cont]``, ...), their
    masks (``cont_mask``, ...) and an optional cached encoder input ``features``
    ``[n, input_dim]`` (see the module docstring). Groups read as attributes or items."""

    def __init__(self, features: torch.Tensor | None = None, **tensors: torch.Tensor):
        if not tensors:
            raise ValueError("a TensorTable needs at least one tensor")
        object.__setattr__(self, "_tensors", dict(tensors))
        object.__setattr__(self, "features", features)

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self.__dict__["_tensors"][name]
        except KeyError:
            raise AttributeError(f"the table has no slot group or mask {name!r}") from None

    def __getitem__(self, index: Any) -> Any:
        """``table["x_cont"]``: a group's tensor; any other index selects rows."""
        if isinstance(index, str):
            return getattr(self, index)
        return self._map(lambda t: t[index])

    def __len__(self) -> int:
        return next(iter(self._tensors.values())).shape[0]

    def keys(self) -> list[str]:
        """Names of the tensors held (groups and masks, not ``features``)."""
        return list(self._tensors)

    def mask(self, group: str) -> torch.Tensor | None:
        """The mask of ``group`` (``[n, width]``, False where missing), or None if it has none."""
        return self._tensors.get(mask_name(group))

    def to(self, device: torch.device | str) -> TensorTable:
        return self._map(lambda t: t.to(device))

    def with_features(self, layout: Layout) -> TensorTable:
        """This table with :meth:`Layout.features` computed once and cached."""
        if self.features is not None:
            return self
        return TensorTable(features=layout.features(self), **self._tensors)

    def _map(self, fn) -> TensorTable:
        features = None if self.features is None else fn(self.features)
        return TensorTable(features=features, **{k: fn(v) for k, v in self._tensors.items()})
