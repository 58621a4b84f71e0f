"""Observation models for the slot groups of a :class:`~ppvae.data.layout.TensorTable`.

One observed Pyro site per group keeps Pyro's per-site overhead independent of the number of
columns, while :func:`slot_log_prob` still gives each slot's (hence each column's)
log-likelihood. Each group is a :class:`SlotGroup` in the :data:`slot_groups` registry,
keyed by the group's name (which is also its Pyro site name):

- ``x_cont``: a family from the :data:`likelihoods` registry (``normal``, ``laplace``,
  ``student_t``, or ``lowrank_normal`` with residuals correlated across the slots,
  :mod:`ppvae.correlated_residuals`), masked where the value is missing;
- ``x_cat``: :class:`CategoricalColumns`, one Categorical per slot of its own size;
- ``x_miss``: independent Bernoullis.

A new column kind registers its group here (``@slot_groups.register("x_count")``) and
the transformer fills the slots; every model built on :class:`~ppvae.model.TableModel`
then observes it, and generation and per-column log-likelihoods include it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistribution
from torch import nn
from torch.distributions import constraints
from torch.nn.functional import softplus

from ppvae.correlated_residuals import LowRankSlotNormal
from ppvae.data.layout import Layout
from ppvae.marginal_calibration import CALIBRATION_KNOTS
from ppvae.networks import MIN_SCALE
from ppvae.registry import Registry


class ContinuousFamily:
    """Maps raw decoder outputs ``[..., n, num_params]`` to a per-slot distribution.

    A family whose slots are not independent given z (``lowrank_normal``,
    :mod:`ppvae.correlated_residuals`) overrides :meth:`group_params` and
    :meth:`group_distribution` instead of ``__call__``.
    """

    num_params = 2

    def __call__(self, raw: torch.Tensor) -> dist.Distribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def group_params(self, width: int) -> int:
        """Raw decoder outputs per row for ``width`` slots."""
        return width * self.num_params

    def group_distribution(
        self, raw: torch.Tensor, width: int, mask: torch.Tensor | None
    ) -> dist.Distribution:
        """Batch ``[B]``, event ``[width]`` from ``raw`` ``[B, group_params(width)]``; slots
        where ``mask`` is False left out of the density."""
        fn = self(raw.reshape(*raw.shape[:-1], width, self.num_params))
        return (fn if mask is None else fn.mask(mask)).to_event(1)


likelihoods: Registry[ContinuousFamily] = Registry("likelihood", base=ContinuousFamily)
register = likelihoods.register


@register("normal")
class NormalFamily(ContinuousFamily):
    """``Normal(loc, softplus(raw_scale) + min_scale)``: the default for quantile-normalised
    slots (``min_scale`` 1e-3; a higher floor caps what one cell's density can earn)."""

    def __init__(self, min_scale: float = MIN_SCALE):
        self.min_scale = float(min_scale)

    def __call__(self, raw: torch.Tensor) -> dist.Distribution:
        return dist.Normal(raw[..., 0], softplus(raw[..., 1]) + self.min_scale)


@register("laplace")
class LaplaceFamily(ContinuousFamily):
    """``Laplace(loc, softplus(raw_scale) + 1e-3)``: heavier tails than the Normal."""

    def __call__(self, raw: torch.Tensor) -> dist.Distribution:
        return dist.Laplace(raw[..., 0], softplus(raw[..., 1]) + MIN_SCALE)


@register("lowrank_normal")
class LowRankNormalFamily(ContinuousFamily):
    r"""Correlated Normal residuals across the continuous slots (:class:`LowRankSlotNormal`):
    per slot a location, a scale ``softplus(raw) + 1e-3`` (``d`` its square) and ``r =
    min(rank, D)`` factor loadings, all from the decoder."""

    def __init__(self, rank: int = 4):
        self.rank = int(rank)

    def group_params(self, width: int) -> int:
        return width * (2 + min(self.rank, width))

    def group_distribution(
        self, raw: torch.Tensor, width: int, mask: torch.Tensor | None
    ) -> LowRankSlotNormal:
        r = min(self.rank, width)
        raw = raw.reshape(*raw.shape[:-1], width, 2 + r)
        scale = softplus(raw[..., 1]) + MIN_SCALE
        return LowRankSlotNormal(raw[..., 0], raw[..., 2:], scale.pow(2), mask)


@register("student_t")
class StudentTFamily(ContinuousFamily):
    """``StudentT(df, loc, scale)`` with a per-row, per-slot ``df = 1 + softplus(raw)``."""

    num_params = 3

    def __call__(self, raw: torch.Tensor) -> dist.Distribution:
        return dist.StudentT(
            1.0 + softplus(raw[..., 2]), raw[..., 0], softplus(raw[..., 1]) + MIN_SCALE
        )


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


def slot_log_prob(fn: dist.Distribution, value: torch.Tensor) -> torch.Tensor:
    """Per-slot log-density ``[*batch, n_slots]`` of an observed group site's distribution."""
    if hasattr(fn, "slot_log_prob"):
        return fn.slot_log_prob(value)
    if isinstance(fn, dist.Independent) and fn.reinterpreted_batch_ndims == 1:
        return fn.base_dist.log_prob(value)
    raise TypeError(
        f"cannot split the log-density of {type(fn).__name__} into slots; observed group sites "
        "should be `Independent(..., 1)` (e.g. `dist.Normal(loc, scale).to_event(1)`) or "
        "define `slot_log_prob(value)`"
    )


class SlotGroup(nn.Module):
    """How a model observes one slot group: a Pyro site over ``width`` slots of one kind.

    Subclasses set ``dtype`` (of the slot values) and implement :meth:`num_params` (decoder
    outputs per row) and :meth:`distribution`; they are built per model with
    ``slot_groups.build(name, layout=..., likelihood=...)`` and may hold device buffers.
    """

    dtype: torch.dtype = torch.float32

    def __init__(self, name: str, layout: Layout):
        super().__init__()
        self.name = name
        self.width = len(layout.slots[name])

    @property
    def num_params(self) -> int:  # pragma: no cover - abstract
        """Raw decoder outputs per row that :meth:`distribution` takes."""
        raise NotImplementedError

    def distribution(
        self, raw: torch.Tensor, mask: torch.Tensor | None
    ) -> dist.Distribution:  # pragma: no cover - abstract
        """The group's distribution from raw decoder outputs ``[B, num_params]``: batch
        ``[B]``, event ``[width]``, slots where ``mask`` ``[B, width]`` is False left out of
        the density; it must support :func:`slot_log_prob`."""
        raise NotImplementedError


slot_groups: Registry[SlotGroup] = Registry("slot group", base=SlotGroup)


@slot_groups.register("x_cont")
class ContinuousSlots(SlotGroup):
    """Continuous slots: a registered family (``likelihood``) per slot."""

    def __init__(self, layout: Layout, likelihood: str | ContinuousFamily = "normal"):
        super().__init__("x_cont", layout)
        self.family = likelihoods.build(likelihood)
        # per slot, a monotone map of generated values (ppvae.marginal_calibration): source
        # and target quantiles [width, 2, knots], and whether the slot is mapped at all
        self.register_buffer("calibration", torch.zeros(self.width, 2, CALIBRATION_KNOTS))
        self.register_buffer("calibrated", torch.zeros(self.width, dtype=torch.bool))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a model saved before the maps existed generates unmapped values
        state_dict.setdefault(prefix + "calibration", torch.zeros_like(self.calibration))
        state_dict.setdefault(prefix + "calibrated", torch.zeros_like(self.calibrated))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def num_params(self) -> int:
        return self.family.group_params(self.width)

    def distribution(self, raw: torch.Tensor, mask: torch.Tensor | None) -> dist.Distribution:
        return self.family.group_distribution(raw, self.width, mask)


@slot_groups.register("x_cat")
class CategoricalSlots(SlotGroup):
    """Categorical slots of the layout's cardinalities: :class:`CategoricalColumns`."""

    dtype = torch.long

    def __init__(self, layout: Layout):
        super().__init__("x_cat", layout)
        self.groups = CategoricalGroups(layout.cat_cardinalities)
        # logit offsets added when generating (ppvae.marginal_calibration; zero until fitted)
        self.register_buffer("offsets", torch.zeros(self.groups.total))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a model saved before the offsets existed generates uncalibrated (zero offsets)
        state_dict.setdefault(prefix + "offsets", torch.zeros_like(self.offsets))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _apply(self, fn, recurse=True):  # keep the gather indices on the parameters' device
        self.groups = self.groups.to(fn(torch.zeros(())).device)
        return super()._apply(fn, recurse)

    @property
    def num_params(self) -> int:
        return self.groups.total

    def distribution(self, raw: torch.Tensor, mask: torch.Tensor | None) -> dist.Distribution:
        return CategoricalColumns(raw, self.groups, mask)


@slot_groups.register("x_miss")
class MissingnessSlots(SlotGroup):
    """Missingness indicators: independent Bernoullis on logits."""

    def __init__(self, layout: Layout):
        super().__init__("x_miss", layout)

    @property
    def num_params(self) -> int:
        return self.width

    def distribution(self, raw: torch.Tensor, mask: torch.Tensor | None) -> dist.Distribution:
        fn = dist.Bernoulli(logits=raw)
        return (fn if mask is None else fn.mask(mask)).to_event(1)
