r"""Categorical slots that depend on each other given z: the chained ``x_cat`` distribution.

With :class:`~ppvae.categorical_columns.CategoricalColumns` the categorical slots of a row are
independent given z, so a pair of columns that go together in real rows (Shoppers' Month and
SpecialDay, Browser and OperatingSystems) keeps its association only as far as z carries it;
with a few active latent units the samples combine levels that real rows never do, and a
trained detector finds exactly those pairs. The chained distribution adds to each slot's
logits a term read from the levels of the slots before it (in slot order),

.. math::  p(x_j = k \mid z, x_{<j}) = \operatorname{softmax}_k\Big(\ell_{jk}(z)
           + u_k^\top \sum_{i<j} e_{x_i}\Big),

with a learned embedding :math:`e_l \in \mathbb{R}^r` per level :math:`l` and a read-out
:math:`u_k \in \mathbb{R}^r` per level :math:`k` (``rank`` :math:`r`, ``2 r \sum K``
parameters, so a thousand-level column costs a few thousand weights, not a million). The
read-outs start at zero: an untrained chain is the independent model. Its density is the
chain rule over the slots, evaluated in one pass at the observed levels (teacher forcing);
a missing (masked) level contributes no embedding to the slots after it and no density.
Sampling draws the slots in order; partial rows complete the hidden slots in order with a
sequential importance weight (:meth:`ChainedCategoricalColumns.complete`,
:mod:`ppvae.slot_completion`).
"""

from __future__ import annotations

import torch
from pyro.distributions.torch_distribution import TorchDistribution
from torch import nn

from ppvae.categorical_columns import CategoricalColumns, CategoricalGroups

CHAIN_RANK = 32  # the default model's (``TabularModel(chain_rank=...)``; 0: no chain)


class LevelChain(nn.Module):
    """The chain's weights for slots of ``cardinalities``: level embeddings ``[sum K, r]``
    and read-outs ``[r, sum K]`` (zero: no dependence)."""

    def __init__(
        self,
        cardinalities: tuple[int, ...],
        rank: int = CHAIN_RANK,
        chained: list[bool] | None = None,
    ):
        super().__init__()
        total = sum(cardinalities)
        self.cardinalities = tuple(int(k) for k in cardinalities)
        self.embedding = nn.Parameter(torch.randn(total, rank) / rank**0.5)
        self.readout = nn.Parameter(torch.zeros(rank, total))
        starts = torch.tensor([0, *self.cardinalities[:-1]]).cumsum(0)
        self.bounds = [(int(a), int(a) + k) for a, k in zip(starts, self.cardinalities)]
        self.register_buffer("starts", starts, persistent=False)
        n_cat = len(self.cardinalities)
        self.register_buffer("before", torch.ones(n_cat, n_cat).tril(-1), persistent=False)
        slot = torch.repeat_interleave(
            torch.arange(len(self.cardinalities)), torch.tensor(self.cardinalities)
        )
        # slots in the chain (others neither shift later slots nor are shifted)
        chained = (
            torch.ones(len(self.cardinalities), dtype=torch.bool)
            if chained is None
            else torch.tensor(chained)
        )
        self.register_buffer("level_chained", chained[slot].float(), persistent=False)

    def context(self, value: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Per slot, the summed embeddings of the levels of the slots before it
        ``[*batch, n_cat, r]`` (masked levels left out)."""
        emb = (self.embedding * self.level_chained[:, None])[value.long() + self.starts]
        if mask is not None:
            emb = emb * mask.unsqueeze(-1).to(emb.dtype)
        # the sums over earlier slots as one product with the [n_cat, n_cat] strictly lower
        # triangle, slots outermost: a cumsum along the slot dim (strided in memory) and its
        # flipped backward were most of the chain's time (with unbind below, the chain's
        # forward and backward on Default's 22 slots, batch 500: 8.0 -> 5.4 ms)
        slots_first = emb.movedim(-2, 0)
        flat = slots_first.reshape(len(self.cardinalities), -1)
        return (self.before @ flat).reshape(slots_first.shape).movedim(0, -2)

    def shift(self, context: torch.Tensor) -> torch.Tensor:
        """Logit shifts ``[*batch, sum K]`` from per-slot contexts ``[*batch, n_cat, r]``: one
        small product per slot (gathering a ``[*batch, sum K, r]`` copy instead made a fit's
        epoch 1.7x slower at rank 32, most of it in the gather's backward)."""
        readout = self.readout * self.level_chained
        # unbind, not context[..., j, :]: each select's backward fills a zero copy of context
        parts = [c @ readout[:, a:b] for c, (a, b) in zip(context.unbind(-2), self.bounds)]
        return torch.cat(parts, -1)


class ChainedCategoricalColumns(TorchDistribution):
    """Categorical slots of different sizes, each given z and the slots before it.

    ``logits`` ``[*batch, sum K]`` (from z), ``chain`` a :class:`LevelChain`, ``mask``
    ``[*batch, n_cat]`` (optional). Batch ``[*batch]``, event ``[n_cat]`` level indices.
    """

    arg_constraints: dict = {}
    support = CategoricalColumns.support

    def __init__(
        self,
        logits: torch.Tensor,
        groups: CategoricalGroups,
        chain: LevelChain,
        mask: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ):
        self.logits, self.groups, self.chain, self.mask = logits, groups, chain, mask
        n_cat = len(groups.cardinalities)
        super().__init__(logits.shape[:-1], torch.Size([n_cat]), validate_args=validate_args)

    def conditional(self, value: torch.Tensor) -> CategoricalColumns:
        """The independent slots whose logits are each slot's given the levels ``value``
        before it: their density at ``value`` is this distribution's."""
        mask = self.mask
        if mask is not None:
            mask = mask.expand(value.shape)
        shift = self.chain.shift(self.chain.context(value, mask))
        return CategoricalColumns(self.logits + shift, self.groups, self.mask)

    def shifted(self, offsets: torch.Tensor) -> ChainedCategoricalColumns:
        """The same chain with ``offsets`` ``[sum K]`` added to the logits from z."""
        return ChainedCategoricalColumns(self.logits + offsets, self.groups, self.chain, self.mask)

    def slot_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self.conditional(value).slot_log_prob(value)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self.slot_log_prob(value).sum(-1)

    def sample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        n_cat = len(self.groups.cardinalities)
        out = torch.zeros(*shape, n_cat, dtype=torch.long, device=self.logits.device)
        return self.complete(out, torch.zeros_like(out, dtype=torch.bool))[0]

    @torch.no_grad()
    def complete(
        self, value: torch.Tensor, fixed: torch.Tensor, ranges: None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The slots where ``fixed`` is False drawn in slot order, each given the levels
        before it, fixed or drawn; the slots where it is True kept at ``value``
        ``[*batch, n_cat]``. Returns the completed levels and the log-density of the fixed
        ones given everything before them ``[*batch]``: a sequential importance weight, so
        that a free slot *before* a fixed one is, after resampling, drawn given it.
        (``ranges`` is for continuous slots; categorical ones have none.)"""
        chain = self.chain
        logits = self.logits.expand(*value.shape[:-1], self.logits.shape[-1])
        readout = chain.readout * chain.level_chained
        embedding = chain.embedding * chain.level_chained[:, None]
        out = value.clone().long()
        log_w = logits.new_zeros(value.shape[:-1])
        context = logits.new_zeros(*value.shape[:-1], embedding.shape[1])
        for j, k in enumerate(self.groups.cardinalities):
            s = slice(int(chain.starts[j]), int(chain.starts[j]) + k)
            one = torch.distributions.Categorical(logits=logits[..., s] + context @ readout[:, s])
            keep = fixed[..., j]
            out[..., j] = torch.where(keep, out[..., j], one.sample())
            log_w = log_w + torch.where(keep, one.log_prob(out[..., j]), 0.0)
            context = context + embedding[s][out[..., j]]
        return out, log_w

    @torch.no_grad()
    def log_weight(
        self, value: torch.Tensor, fixed: torch.Tensor, ranges: None = None
    ) -> torch.Tensor:
        """The sequential importance log-weight of a completed row ``value`` ``[*batch,
        n_cat]``, as :meth:`complete` returns it: the log-probability of each ``fixed`` slot
        given every level before it, in one pass ``[*batch]``."""
        shift = self.chain.shift(self.chain.context(value, None))
        lp = CategoricalColumns(self.logits + shift, self.groups).slot_log_prob(value)
        return (lp * fixed.to(lp.dtype)).sum(-1)

    def expand(self, batch_shape: torch.Size, _instance=None) -> ChainedCategoricalColumns:
        batch_shape = torch.Size(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        logits = self.logits.expand(*batch_shape, self.logits.shape[-1])
        mask = None if self.mask is None else self.mask.expand(*batch_shape, self.mask.shape[-1])
        return ChainedCategoricalColumns(logits, self.groups, self.chain, mask)
