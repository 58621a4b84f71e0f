"""The model contract, and the default tabular VAE as a Pyro model/guide pair.

A ppvae model is a :class:`TableModel`: an ``nn.Module`` whose ``model(data, num_rows)`` and
``guide(data, num_rows)`` are a Pyro model/guide pair over the rows of a
:class:`~ppvae.data.layout.TensorTable`, with

- a ``"rows"`` plate around everything per row,
- a latent site named :attr:`TableModel.latent_site` (``"z"``) in model and guide, and a
  ``prior`` module giving p(z),
- one observed site per non-empty slot group of its :class:`~ppvae.data.layout.Layout`,
  named after the group and built by the group's :class:`~ppvae.likelihoods.SlotGroup`
  (``self.slot_groups``; :meth:`TableModel.observe` does it),
- no ``pyro.module``: parameters are the module's own (``module.parameters()``), never
  entries of Pyro's global param store.

``model(None, num_rows=n)`` generates. :class:`TableModel` then derives, in one place each,
generation (:meth:`~TableModel.generate`), the posterior q(z|x) (:meth:`~TableModel.posterior`)
and per-column log-likelihoods (:meth:`~TableModel.column_log_prob`). Check a model with
:func:`ppvae.model_conformance.check_model`.

The default model, per row ``n``::

    z_n ~ p(z)                                    # any registered prior
    x_n ~ p(x | decoder(z_n))                     # one site per slot group
    # by default x_cat is drawn first, slot by slot (ppvae.chained_categories), then x_cont
    # slot by slot given x_cat (ppvae.chained_continuous)
    q(z_n | x_n) = Normal(encoder(x_n))           # amortised, diagonal
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.poutine.trace_struct import Trace
from torch import nn

from ppvae.chained_categories import CHAIN_RANK
from ppvae.data.layout import CONTINUOUS, Layout, TensorTable, mask_name
from ppvae.input_masking import hide_cells
from ppvae.likelihoods import NormalFamily, slot_groups, slot_log_prob
from ppvae.marginal_calibration import CalibratedSampling, map_continuous
from ppvae.networks import Decoder, Encoder
from ppvae.priors import Prior, priors
from ppvae.registry import Registry

models: Registry[nn.Module] = Registry("model", base=nn.Module)
register = models.register


def replay(model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> tuple[Trace, Trace]:
    """Trace ``guide``, then ``model`` replayed on the guide's draws: ``(guide, model)`` traces."""
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    return guide_trace, model_trace


def num_rows_of(data: TensorTable | None, num_rows: int | None) -> int:
    """Rows of ``data``, or ``num_rows`` when generating."""
    if data is not None:
        return len(data)
    if num_rows is None:
        raise ValueError("pass data or num_rows")
    return int(num_rows)


class TableModel(nn.Module):
    """Base of ppvae models: the contract of the module docstring, plus what follows from it.

    Subclasses call ``super().__init__(layout, likelihood)``, then define ``prior``,
    ``model`` and ``guide``.
    """

    latent_site = "z"
    input_mask_rate = 0.0  # share of cells hidden from the encoder in training (TabularVAE sets it)

    def __init__(self, layout: Layout, likelihood: str = "normal"):
        super().__init__()
        self.layout = layout
        self.likelihood = likelihood  # the continuous slots' family spec (saved with the model)
        self.slot_groups = nn.ModuleList(
            slot_groups.build(name, layout=layout, likelihood=likelihood)
            for name, slots in layout.slots.items()
            if slots
        )

    def model(self, data: TensorTable | None = None, num_rows: int | None = None) -> Any:
        raise NotImplementedError  # pragma: no cover - the subclass's generative model

    def guide(self, data: TensorTable | None = None, num_rows: int | None = None) -> Any:
        raise NotImplementedError  # pragma: no cover - the subclass's q(z | x)

    # -- pieces for model() ------------------------------------------------------------
    @property
    def decoder_widths(self) -> list[int]:
        """Raw decoder outputs each slot group takes, in order."""
        return [group.num_params for group in self.slot_groups]

    def observe(self, raw: Sequence[torch.Tensor], data: TensorTable | None) -> None:
        """Sample every slot group's site from raw decoder outputs (one tensor per group,
        ``[B, num_params]``), observed at ``data`` when given. Call inside the row plate."""
        values = {}
        pairs = list(zip(self.slot_groups, raw))
        if any(getattr(group, "chain", None) is not None for group, _ in pairs):
            pairs.sort(key=lambda gp: gp[0].name != "x_cat")  # a chained x_cont reads x_cat
        for group, params in pairs:
            mask = None if data is None else data.mask(group.name)
            obs = None if data is None else data[group.name]
            if group.name == "x_cont" and group.chain is not None:
                cat_mask = None if data is None else data.mask("x_cat")
                fn = group.chained(params, mask, values.get("x_cat"), cat_mask)
            else:
                fn = group.distribution(params, mask)
            values[group.name] = pyro.sample(group.name, fn, obs=obs)

    def features(self, data: TensorTable) -> torch.Tensor:
        """Encoder input ``[n, input_dim]`` (cached on ``data`` when present); in training,
        random cells hidden at ``input_mask_rate`` (:func:`ppvae.input_masking.hide_cells`)."""
        if self.training and self.input_mask_rate > 0:
            return self.layout.features(hide_cells(self.layout, data, self.input_mask_rate))
        return data.features if data.features is not None else self.layout.features(data)

    # -- derived, one place each ---------------------------------------------------------
    def traces(self, data: TensorTable, z: torch.Tensor | None = None) -> tuple[Trace, Trace]:
        """Guide and replayed model traces on ``data``; ``z`` ``[n, d]`` fixes the latent draw
        (then the latent site is observed at ``z`` in both)."""
        if z is None:
            return replay(self.model, self.guide, data)
        fixed = {self.latent_site: z}
        return tuple(
            poutine.trace(poutine.condition(fn, data=fixed)).get_trace(data)
            for fn in (self.guide, self.model)
        )

    def posterior(self, data: TensorTable) -> tuple[dist.Distribution, torch.Tensor]:
        """q(z | x) of each row (batch ``[n]``) and one draw ``z ~ q(z | x)`` ``[n, d]``,
        both from the guide."""
        site = poutine.trace(self.guide).get_trace(data).nodes[self.latent_site]
        return site["fn"], site["value"]

    def column_log_prob(self, data: TensorTable, z: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x_col | z)`` per row and column ``[n, n_columns]`` for one draw
        ``z ~ q(z | x)`` (or the given ``z``); masked slots count zero."""
        _, trace = self.traces(data, z)
        parts = {
            name: slot_log_prob(trace.nodes[name]["fn"], trace.nodes[name]["value"])
            for name, slots in self.layout.slots.items()
            if slots
        }
        return self.layout.column_totals(parts)

    def generate(
        self,
        num_rows: int,
        condition: Mapping[str, torch.Tensor] | None = None,
        z: torch.Tensor | None = None,
    ) -> TensorTable:
        """``num_rows`` rows from the model as a table (all masks True): z ~ p(z) unless ``z``
        is given, other latent sites fixed by ``condition`` ``{site: [num_rows, ...]}``."""
        condition = dict(condition or {})
        if z is not None:
            condition[self.latent_site] = z
        model = poutine.condition(self.model, data=condition) if condition else self.model
        with CalibratedSampling(self):  # categorical marginals as fitted ex post, if they were
            nodes = poutine.trace(model).get_trace(None, num_rows=num_rows).nodes
        return self.rows_from_trace(nodes, num_rows)

    def rows_from_trace(self, nodes: Mapping[str, dict], num_rows: int) -> TensorTable:
        """The generated table (all masks True) of a model trace's ``nodes`` over
        ``num_rows`` rows, the continuous slots through the ex-post maps if fitted."""
        device = next(self.parameters()).device
        tensors = {}
        for name, slots in self.layout.slots.items():
            dtype = slot_groups.get(name).dtype
            if name in nodes:
                value = nodes[name]["value"].reshape(num_rows, len(slots)).to(dtype)
            else:
                value = torch.zeros(num_rows, len(slots), dtype=dtype, device=device)
            tensors[name] = value
            tensors[mask_name(name)] = torch.ones_like(value, dtype=torch.bool)
        if CONTINUOUS in tensors:  # continuous marginals as fitted ex post, if they were
            tensors[CONTINUOUS] = map_continuous(self, tensors[CONTINUOUS])
        return TensorTable(**tensors)


@register("tabular")
class TabularModel(TableModel):
    """A VAE over the slots of ``layout``: encoder, decoder and prior, plus ``model``/``guide``."""

    def __init__(
        self,
        layout: Layout,
        latent_dim: int = 16,
        hidden: Sequence[int] = (256, 256),
        prior: str | Mapping[str, Any] | Prior = "standard_normal",
        likelihood: str = "normal",
        chain_rank: int = CHAIN_RANK,
        chain_continuous: bool | str = "auto",
        chain_point_masses: bool = True,
    ):
        super().__init__(layout, likelihood)
        self.latent_dim = int(latent_dim)
        if isinstance(chain_rank, bool) or not isinstance(chain_rank, int) or chain_rank < 0:
            raise ValueError(
                f"model: chain_rank={chain_rank!r} is not allowed; give a non-negative integer "
                "(0: categorical slots independent given z; e.g. 32: each depends on the levels "
                "before it, ppvae.chained_categories)"
            )
        if chain_continuous != "auto" and not isinstance(chain_continuous, bool):
            raise ValueError(
                f"model: chain_continuous={chain_continuous!r} is not allowed; give true, false "
                "or 'auto' (chained when likelihood='normal', ppvae.chained_continuous)"
            )
        if not isinstance(chain_point_masses, bool):
            raise ValueError(
                f"model: chain_point_masses={chain_point_masses!r} is not allowed; give true or "
                "false (true: a numeric column's point-mass slot, e.g. PageValues = 0, is in the "
                "level chain too)"
            )
        if chain_continuous is True and not chain_rank:
            raise ValueError("model: chain_continuous=true needs chain_rank > 0 (e.g. 32)")
        if chain_rank:
            for group in self.slot_groups:
                if hasattr(group, "chain_levels"):
                    # unless chain_point_masses, a numeric column's point-mass slot stays
                    # with its number, given z
                    chained = [
                        chain_point_masses or name not in layout.cont_names
                        for name in layout.cat_names
                    ]
                    group.chain_levels(chain_rank, chained)
                auto = chain_continuous == "auto" and isinstance(
                    getattr(group, "family", None), NormalFamily
                )
                if hasattr(group, "chain_slots") and (chain_continuous is True or auto):
                    group.chain_slots(chain_rank, tuple(layout.cat_cardinalities))
        #: the chain options as resolved ("auto" decided), saved with a model so that it loads
        #: the same after the defaults change
        self.chain_options = {
            "chain_rank": chain_rank,
            "chain_point_masses": chain_point_masses,
            "chain_continuous": any(
                getattr(g, "chain", None) is not None
                for g in self.slot_groups
                if hasattr(g, "chain_slots")
            ),
        }
        self.encoder = Encoder(layout.input_dim, tuple(hidden), self.latent_dim)
        self.decoder = Decoder(
            self.decoder_inputs(layout, self.latent_dim), tuple(hidden), self.decoder_widths
        )
        self.prior = priors.build(prior, latent_dim=self.latent_dim)
        self.prior.bind(self)

    def decoder_inputs(self, layout: Layout, latent_dim: int) -> int:
        """Width of the decoder's input: the latent code (a subclass may add to it)."""
        return latent_dim

    def model(self, data: TensorTable | None = None, num_rows: int | None = None) -> torch.Tensor:
        with pyro.plate("rows", num_rows_of(data, num_rows)):
            z = pyro.sample(self.latent_site, self.prior())
            self.observe(self.decoder(z), data)
        return z

    def guide(
        self, data: TensorTable | None = None, num_rows: int | None = None
    ) -> torch.Tensor | None:
        if data is None:  # generating: the model draws z from the prior
            return None
        loc, scale = self.encoder(self.features(data))
        with pyro.plate("rows", len(data)):
            return pyro.sample(self.latent_site, dist.Normal(loc, scale).to_event(1))
