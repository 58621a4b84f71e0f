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

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn.functional import softplus

from ppvae.categorical_columns import CategoricalColumns, CategoricalGroups
from ppvae.chained_categories import ChainedCategoricalColumns, LevelChain
from ppvae.chained_continuous import ChainedContinuousColumns, SlotChain
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
        self.chain = None  # a SlotChain once chain_slots is called (ppvae.chained_continuous)
        self.gates = layout.cont_gates

    def chain_slots(self, rank: int, cardinalities: tuple[int, ...]) -> None:
        """Make each slot depend on the row's levels and the slots before it (Normal only)."""
        if not isinstance(self.family, NormalFamily):
            raise ValueError(
                f"model: chained continuous slots need likelihood='normal', not {self.family!r}"
            )
        self.chain = SlotChain(self.width, cardinalities, rank, self.gates)

    def chained(
        self,
        raw: torch.Tensor,
        mask: torch.Tensor | None,
        x_cat: torch.Tensor | None,
        cat_mask: torch.Tensor | None,
    ) -> ChainedContinuousColumns:
        """The chained distribution given the row's levels ``x_cat`` ``[B, n_cat]``."""
        raw = raw.reshape(*raw.shape[:-1], self.width, 2)
        context = self.chain.level_context(x_cat, cat_mask)
        context = context.expand(*raw.shape[:-2], context.shape[-1])
        gate = self.chain.gate(x_cat)
        return ChainedContinuousColumns(
            raw[..., 0], raw[..., 1], self.chain, context, mask, self.family.min_scale, gate
        )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a model saved before the maps existed generates unmapped values
        state_dict.setdefault(prefix + "calibration", torch.zeros_like(self.calibration))
        state_dict.setdefault(prefix + "calibrated", torch.zeros_like(self.calibrated))
        if self.chain is not None and prefix + "chain.loc_readout" not in state_dict:
            # saved before the chain existed: slots independent given z (zero read-outs)
            for name, value in self.chain.state_dict().items():
                keep = value if "embedding" in name else torch.zeros_like(value)
                state_dict[prefix + "chain." + name] = keep.detach().clone()
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
        self.chain = None  # a LevelChain once chain_levels is called (ppvae.chained_categories)

    def chain_levels(self, rank: int, chained: list[bool] | None = None) -> None:
        """Make each slot (of those ``chained``) depend on the levels of the slots before it."""
        self.chain = LevelChain(self.groups.cardinalities, rank, chained)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a model saved before the offsets existed generates uncalibrated (zero offsets)
        state_dict.setdefault(prefix + "offsets", torch.zeros_like(self.offsets))
        if self.chain is not None and prefix + "chain.readout" not in state_dict:
            # saved before the chain existed: its slots are independent given z (zero read-out)
            state_dict[prefix + "chain.readout"] = torch.zeros_like(self.chain.readout)
            state_dict[prefix + "chain.embedding"] = self.chain.embedding.detach().clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _apply(self, fn, recurse=True):  # keep the gather indices on the parameters' device
        self.groups = self.groups.to(fn(torch.zeros(())).device)
        return super()._apply(fn, recurse)

    @property
    def num_params(self) -> int:
        return self.groups.total

    def distribution(self, raw: torch.Tensor, mask: torch.Tensor | None) -> dist.Distribution:
        if self.chain is not None:
            return ChainedCategoricalColumns(raw, self.groups, self.chain, mask)
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
