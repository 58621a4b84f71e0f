"""``check_model``: the conformance kit every ppvae model passes (as ``check_prior`` for priors).

It builds the model on a small layout with every kind of slot (continuous, categorical,
missingness), runs it on a random table under Pyro's validation, and asserts the contract of
:mod:`ppvae.model`:

1. model and guide share the latent site, every sample site sits in the ``"rows"`` plate, and
   every non-empty slot group of the layout is an observed site with batch ``[n]`` and event
   ``[width]`` (a model may observe more, e.g. a label);
2. no ``pyro.module``: running the pair leaves the module's parameters out of Pyro's global
   param store;
3. the ELBO reaches every parameter of the module (``Trace_ELBO``, one step);
4. :meth:`~ppvae.model.TableModel.generate` gives a table with every slot group, in the
   group's dtype and support, all masks True; with ``z`` given and one seed, it is repeatable;
5. :meth:`~ppvae.model.TableModel.posterior` draws ``z`` ``[n, d]`` with a finite density;
6. :meth:`~ppvae.model.TableModel.column_log_prob` is ``[n, n_columns]``, finite, and sums to the
   slot groups' log-density of the model run on the same ``z``;
7. built twice (when a factory is given), a ``state_dict`` round trip reproduces it.
"""

from __future__ import annotations

from collections.abc import Callable

import pyro
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO
from pyro.poutine.util import site_is_subsample

from ppvae.data.layout import Layout, TensorTable, mask_name
from ppvae.model import TableModel, replay

LAYOUT = Layout(
    columns=("a", "b", "c", "d"),
    cont_names=("a", "b"),
    cat_names=("c", "d"),
    cat_cardinalities=(3, 2),
    miss_names=("b",),
)


def random_table(layout: Layout, n: int, seed: int = 0) -> TensorTable:
    """A table of ``n`` random rows for ``layout``'s continuous, categorical and missingness
    groups (further groups: zeros), with some continuous slots masked."""
    g = torch.Generator().manual_seed(seed)
    cards = torch.tensor(layout.cat_cardinalities, dtype=torch.float)
    tensors = {}
    for group, names in layout.slots.items():
        tensors[group] = torch.zeros(n, len(names))
        tensors[mask_name(group)] = torch.ones(n, len(names), dtype=torch.bool)
    tensors["x_cont"] = torch.randn(n, layout.n_cont, generator=g)
    tensors["cont_mask"] = torch.rand(n, layout.n_cont, generator=g) > 0.2
    tensors["x_cat"] = (torch.rand(n, layout.n_cat, generator=g) * cards).long()
    tensors["x_miss"] = (torch.rand(n, layout.n_miss, generator=g) < 0.3).float()
    return TensorTable(**tensors)


def _sample_sites(trace) -> dict:
    return {
        name: site
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site)
    }


def check_model(
    model: TableModel | Callable[[Layout], TableModel],
    layout: Layout = LAYOUT,
    table: TensorTable | None = None,
    num_rows: int = 7,
) -> None:
    """Assert that ``model`` (an instance built for ``layout``, or a factory called as
    ``factory(layout)``) keeps the model contract (module docstring). Raises AssertionError."""
    factory = None if isinstance(model, TableModel) else model
    module = model if factory is None else factory(layout)
    assert isinstance(module, TableModel), (
        f"{type(module).__name__} must subclass ppvae.model.TableModel"
    )
    layout = module.layout
    data = (table if table is not None else random_table(layout, num_rows)).with_features(layout)
    n, latent = len(data), module.latent_site
    groups = {name: len(slots) for name, slots in layout.slots.items() if slots}
    with pyro.validation_enabled(True):
        _check_sites(module, data, groups, latent)
        _check_parameters(module, data)
        q, z = module.posterior(data)
        assert z.shape[0] == n and z.dim() == 2, f"posterior: z has shape {tuple(z.shape)}"
        assert torch.isfinite(q.log_prob(z)).all() and q.log_prob(z).shape == (n,)
        _check_generate(module, groups, z.shape[1])
        _check_column_log_prob(module, data, groups, latent)
        if factory is not None:
            twin = factory(layout)
            twin.load_state_dict(module.state_dict())
            pyro.set_rng_seed(0)
            expected = module.column_log_prob(data)
            pyro.set_rng_seed(0)
            torch.testing.assert_close(twin.column_log_prob(data), expected)


def _check_sites(module: TableModel, data: TensorTable, groups: dict, latent: str) -> None:
    guide_trace, model_trace = replay(module.model, module.guide, data)
    assert latent in guide_trace.nodes, f"the guide has no latent site {latent!r}"
    sites = _sample_sites(model_trace)
    observed = {k for k, s in sites.items() if s["is_observed"]}
    assert set(groups) <= observed, (
        f"slot groups {sorted(set(groups) - observed)} are not observed sites of the model"
    )
    for name, site in {**sites, **_sample_sites(guide_trace)}.items():
        frames = [f.name for f in site["cond_indep_stack"]]
        assert "rows" in frames, f"site {name!r} is outside the 'rows' plate"
    for name, width in groups.items():
        fn = sites[name]["fn"]
        assert tuple(fn.batch_shape) == (len(data),), f"{name}: batch {tuple(fn.batch_shape)}"
        assert tuple(fn.event_shape) == (width,), f"{name}: event {tuple(fn.event_shape)}"
    for name, site in sites.items():
        if not site["is_observed"]:
            assert name in guide_trace.nodes, f"latent site {name!r} has no guide counterpart"


def _check_parameters(module: TableModel, data: TensorTable) -> None:
    own = {id(p) for p in module.parameters()}
    store = pyro.get_param_store()
    loss = Trace_ELBO().differentiable_loss(module.model, module.guide, data)
    leaked = [k for k in store.keys() if id(store[k].unconstrained()) in own]
    assert not leaked, f"parameters {leaked} went to Pyro's global param store (no pyro.module)"
    module.zero_grad(set_to_none=True)
    loss.backward()
    unreached = [k for k, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not unreached, f"the ELBO does not reach parameters {unreached}"
    module.zero_grad(set_to_none=True)


@torch.no_grad()
def _check_generate(module: TableModel, groups: dict, latent_dim: int, n: int = 5) -> None:
    table = module.generate(n)
    layout = module.layout
    for name, slots in layout.slots.items():
        value = table[name]
        assert value.shape == (n, len(slots)), f"generate: {name} has shape {tuple(value.shape)}"
        assert table.mask(name).all(), f"generate: {name}'s mask is not all True"
    cards = torch.tensor(layout.cat_cardinalities)
    assert table.x_cat.dtype == torch.long and ((table.x_cat >= 0) & (table.x_cat < cards)).all()
    assert torch.isfinite(table.x_cont).all()
    assert ((table.x_miss == 0) | (table.x_miss == 1)).all()
    z = torch.randn(n, latent_dim)
    pyro.set_rng_seed(1)
    first = module.generate(n, z=z)
    pyro.set_rng_seed(1)
    second = module.generate(n, z=z)
    for name in groups:
        assert torch.equal(first[name], second[name]), f"generate(z=...): {name} not repeatable"


@torch.no_grad()
def _check_column_log_prob(
    module: TableModel, data: TensorTable, groups: dict, latent: str
) -> None:
    pyro.set_rng_seed(2)
    _, z = module.posterior(data)
    pyro.set_rng_seed(2)
    per_column = module.column_log_prob(data)
    assert per_column.shape == (len(data), len(module.layout.columns))
    assert torch.isfinite(per_column).all(), "column_log_prob is not finite"
    trace = poutine.trace(poutine.condition(module.model, data={latent: z})).get_trace(data)
    trace.compute_log_prob()
    expected = sum(trace.nodes[name]["log_prob"] for name in groups)
    torch.testing.assert_close(per_column.sum(-1), expected, rtol=1e-5, atol=1e-4)
