"""Independent categorical slots of different sizes: the ``x_cat`` distribution given z.

:class:`CategoricalColumns` draws every slot of a row independently given its logits;
:class:`CategoricalGroups` pads slots of similar size together so that one gather and one
``log_softmax`` per group serve all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro.distributions.torch_distribution import TorchDistribution
from torch.distributions import constraints


class CategoricalGroups:
    """Precomputed gather indices that pad categorical slots of similar size together.

    Slots are sorted by cardinality and grouped so that within a group the largest
    cardinality is at most twice the smallest: padding wastes at most half the work, and a
    table with one thousand-level column does not pad every binary column to a thousand.
    """

    def __init__(self, cardinalities: Sequence[int]):
        self.cardinalities = tuple(int(k) for k in cardinalities)
        self.total = sum(self.cardinalities)
        offsets, start = [], 0
        for k in self.cardinalities:
            offsets.append(start)
            start += k
        order = sorted(range(len(self.cardinalities)), key=lambda j: self.cardinalities[j])
        groups: list[list[int]] = []
        for j in order:
            if groups and self.cardinalities[j] <= 2 * self.cardinalities[groups[-1][0]]:
                groups[-1].append(j)
            else:
                groups.append([j])
        self.groups = []
        for members in groups:
            width = max(self.cardinalities[j] for j in members)
            index = torch.full((len(members), width), self.total, dtype=torch.long)
            for row, j in enumerate(members):
                index[row, : self.cardinalities[j]] = torch.arange(
                    offsets[j], offsets[j] + self.cardinalities[j]
                )
            self.groups.append((torch.tensor(members, dtype=torch.long), index))

    def to(self, device: torch.device | str) -> CategoricalGroups:
        moved = object.__new__(CategoricalGroups)
        moved.cardinalities, moved.total = self.cardinalities, self.total
        moved.groups = [(m.to(device), i.to(device)) for m, i in self.groups]
        return moved


class CategoricalColumns(TorchDistribution):
    """Independent Categoricals of different sizes over ``n_cat`` slots.

    ``logits`` is ``[*batch, sum K]`` (the slots' logits concatenated); the event is the
    ``[n_cat]`` vector of level indices. ``mask`` ``[*batch, n_cat]`` (optional) drops slots
    from the log-density.
    """

    arg_constraints = {"logits": constraints.real}
    support = constraints.independent(constraints.nonnegative_integer, 1)

    def __init__(
        self,
        logits: torch.Tensor,
        groups: CategoricalGroups,
        mask: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ):
        self.logits, self.groups, self.mask = logits, groups, mask
        n_cat = len(groups.cardinalities)
        pad = logits.new_full((*logits.shape[:-1], 1), float("-inf"))
        padded = torch.cat([logits, pad], dim=-1)
        self._group_logits = [
            torch.log_softmax(padded[..., index], dim=-1) for _, index in groups.groups
        ]
        super().__init__(logits.shape[:-1], torch.Size([n_cat]), validate_args=validate_args)

    def slot_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Per-slot log-probabilities ``[*batch, n_cat]`` (zero where masked)."""
        value = value.long()
        out = self.logits.new_zeros(
            *torch.broadcast_shapes(
                value.shape, (*self.batch_shape, len(self.groups.cardinalities))
            )
        )
        for (members, _), logp in zip(self.groups.groups, self._group_logits):
            picked = logp.expand(*out.shape[:-1], *logp.shape[-2:]).gather(
                -1, value[..., members].unsqueeze(-1)
            )
            out = out.index_copy(-1, members, picked.squeeze(-1))
        if self.mask is not None:
            out = out * self.mask
        return out

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self.slot_log_prob(value).sum(-1)

    def shifted(self, offsets: torch.Tensor) -> CategoricalColumns:
        """The same slots with ``offsets`` ``[sum K]`` added to the logits."""
        return CategoricalColumns(self.logits + offsets, self.groups, self.mask)

    def sample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        out = torch.zeros(
            *shape, len(self.groups.cardinalities), dtype=torch.long, device=self.logits.device
        )
        with torch.no_grad():
            for (members, _), logp in zip(self.groups.groups, self._group_logits):
                draws = torch.distributions.Categorical(logits=logp).sample(sample_shape)
                out[..., members] = draws
        return out

    def expand(self, batch_shape: torch.Size, _instance=None) -> CategoricalColumns:
        batch_shape = torch.Size(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        logits = self.logits.expand(*batch_shape, self.logits.shape[-1])
        mask = None if self.mask is None else self.mask.expand(*batch_shape, self.mask.shape[-1])
        return CategoricalColumns(logits, self.groups, mask)
