import ast
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

import ppvae
from ppvae.chained_continuous import OFFSETS
from ppvae.data.layout import Layout, TensorTable
from ppvae.likelihoods import SlotGroup
from ppvae.model import TabularModel
from ppvae.model_conformance import check_model
from ppvae.objectives import ELBO
from ppvae.training import train

LAYOUT = Layout(
    columns=("a", "b", "c", "d"),
    cont_names=("a", "b"),
    cat_names=("c", "d"),
    cat_cardinalities=(3, 2),
    miss_names=("b",),
)


def table(n: int, seed: int = 0) -> TensorTable:
    g = torch.Generator().manual_seed(seed)
    miss = (torch.rand(n, 1, generator=g) < 0.3).float()
    c = torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), n, replacement=True, generator=g)
    d = (torch.rand(n, generator=g) < 0.8).long()
    a = torch.randn(n, generator=g) + 2.0 * (c == 0)
    return TensorTable(
        x_cont=torch.stack([a, torch.randn(n, generator=g) * (1 - miss[:, 0])], -1),
        cont_mask=torch.stack([torch.ones(n, dtype=torch.bool), miss[:, 0] == 0], -1),
        x_cat=torch.stack([c, d], -1),
        cat_mask=torch.ones(n, 2, dtype=torch.bool),
        x_miss=miss,
    )


def test_model_and_guide_share_sites_with_expected_shapes():
    module = TabularModel(LAYOUT, latent_dim=3, hidden=(8,))
    data = table(5)
    guide_trace = poutine.trace(module.guide).get_trace(data)
    model_trace = poutine.trace(poutine.replay(module.model, trace=guide_trace)).get_trace(data)
    assert guide_trace.nodes["z"]["value"].shape == (5, 3)
    observed = {
        k for k, s in model_trace.nodes.items() if s["type"] == "sample" and s["is_observed"]
    }
    assert observed == {"x_cont", "x_cat", "x_miss"}
    assert model_trace.nodes["x_cont"]["fn"].event_shape == (2,)
    assert model_trace.nodes["x_cat"]["fn"].event_shape == (2,)
    assert model_trace.nodes["x_miss"]["fn"].event_shape == (1,)
    generated = poutine.trace(module.model).get_trace(None, num_rows=7)
    assert generated.nodes["x_cat"]["value"].shape == (7, 2)
    assert not generated.nodes["x_cat"]["is_observed"]


def test_elbo_equals_hand_computed_value():
    module = TabularModel(LAYOUT, latent_dim=2, hidden=(4,))
    data = table(6).with_features(LAYOUT)
    pyro.set_rng_seed(3)
    loss = ELBO().differentiable_loss(module.model, module.guide, data)
    pyro.set_rng_seed(3)
    loc, scale = module.encoder(data.features)
    z = loc + scale * torch.randn_like(loc)
    cont, logits, miss = module.decoder(z)
    cont = cont.reshape(6, 2, 2)
    sd = torch.nn.functional.softplus(cont[..., 1]) + 1e-3
    # the untrained chain: per slot an equal-weight mixture of Normals at the start offsets
    parts = torch.distributions.Normal(cont[..., 0, None] + OFFSETS, sd[..., None])
    slot = parts.log_prob(data.x_cont[..., None]).logsumexp(-1) - math.log(len(OFFSETS))
    lp = (slot * data.cont_mask).sum()
    lp = lp + torch.log_softmax(logits[:, :3], -1).gather(-1, data.x_cat[:, :1]).sum()
    lp = lp + torch.log_softmax(logits[:, 3:], -1).gather(-1, data.x_cat[:, 1:]).sum()
    lp = lp + torch.distributions.Bernoulli(logits=miss).log_prob(data.x_miss).sum()
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(loc, scale), torch.distributions.Normal(0.0, 1.0)
    ).sum()
    torch.testing.assert_close(loss, kl - lp)


def test_training_recovers_known_marginals():
    """Categorical rates (0.6/0.3/0.1, 0.8) and the 30% missing rate, within 0.03."""
    data = table(3000).with_features(LAYOUT)
    module = TabularModel(LAYOUT, latent_dim=2, hidden=(32,))
    result = train(
        module,
        ELBO(),
        data,
        data[:500],
        epochs=15,
        batch_size=200,
        lr=3e-3,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    with torch.no_grad():
        trace = poutine.trace(module.model).get_trace(None, num_rows=20000)
    cat = trace.nodes["x_cat"]["value"]
    freq = torch.bincount(cat[:, 0], minlength=3).float() / 20000
    torch.testing.assert_close(freq, torch.tensor([0.6, 0.3, 0.1]), atol=0.03, rtol=0)
    assert math.isclose(cat[:, 1].float().mean().item(), 0.8, abs_tol=0.03)
    assert math.isclose(trace.nodes["x_miss"]["value"].mean().item(), 0.3, abs_tol=0.03)
    assert len(result.steps) == 15 * 15 and {"loss", "recon", "kl"} <= set(result.steps.columns)


def test_two_models_in_one_session_train_their_own_parameters():
    data = table(400).with_features(LAYOUT)
    first = TabularModel(LAYOUT, latent_dim=2, hidden=(8,))
    train(
        first,
        ELBO(),
        data,
        None,
        epochs=1,
        batch_size=100,
        lr=1e-2,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    second = TabularModel(LAYOUT, latent_dim=2, hidden=(8,))
    before = {k: v.clone() for k, v in second.state_dict().items()}
    frozen = {k: v.clone() for k, v in first.state_dict().items()}
    train(
        second,
        ELBO(),
        data,
        None,
        epochs=1,
        batch_size=100,
        lr=1e-2,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    assert any(not torch.equal(before[k], v) for k, v in second.state_dict().items())
    assert all(torch.equal(frozen[k], v) for k, v in first.state_dict().items())


# -- the model contract --------------------------------------------------------------------
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
ROOT = Path(__file__).resolve().parents[1]


def conditional_module():
    spec = importlib.util.spec_from_file_location(
        "conditional_vae", MODELS_DIR / "conditional_vae.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["conditional_vae"] = module
    spec.loader.exec_module(module)
    return module


def test_tabular_model_conforms():
    check_model(lambda layout: TabularModel(layout, latent_dim=3, hidden=(8,)))
    check_model(TabularModel(LAYOUT, latent_dim=2, hidden=(), likelihood="student_t"))


def test_conditional_model_conforms():
    cvae = conditional_module().ConditionalVAE
    check_model(lambda layout: cvae(layout, label="c", latent_dim=3, hidden=(8,)))


def test_conditional_model_copies_nothing_from_the_default_one():
    source = (MODELS_DIR / "conditional_vae.py").read_text()
    assert "def guide" not in source and "Encoder(" not in source and "Decoder(" not in source


class _GlobalParams(TabularModel):
    """Breaks the contract: registers its networks in Pyro's global param store."""

    def model(self, data=None, num_rows=None):
        pyro.module("decoder", self.decoder)
        return super().model(data, num_rows)


class _MissingGroup(TabularModel):
    """Breaks the contract: does not observe the missingness slots."""

    def observe(self, raw, data):
        keep = [(g, r) for g, r in zip(self.slot_groups, raw) if g.name != "x_miss"]
        for group, params in keep:
            pyro.sample(
                group.name,
                group.distribution(params, None if data is None else data.mask(group.name)),
                obs=None if data is None else data[group.name],
            )


@pytest.mark.parametrize(
    "broken, message",
    [(_GlobalParams, "global param store"), (_MissingGroup, "not observed sites")],
)
def test_conformance_catches_broken_models(broken, message):
    with pytest.raises(AssertionError, match=message):
        check_model(lambda layout: broken(layout, latent_dim=2, hidden=(4,)))


# -- a new column kind: a Poisson count group, registered here, no library file touched -----
class CountSlots(SlotGroup):
    """Counts: independent Poissons with rate ``softplus(raw)``."""

    def __init__(self, layout: Layout):
        super().__init__("x_count", layout)

    @property
    def num_params(self) -> int:
        return self.width

    def distribution(self, raw, mask):
        fn = dist.Poisson(torch.nn.functional.softplus(raw) + 1e-3)
        return (fn if mask is None else fn.mask(mask)).to_event(1)


COUNT_LAYOUT = Layout(
    columns=("a", "c", "k"),
    cont_names=("a",),
    cat_names=("c",),
    cat_cardinalities=(2,),
    extra_slots=(("x_count", ("k",)),),
)


def count_table(n: int, seed: int = 0) -> TensorTable:
    """Counts with rate 1 in class 0 and 6 in class 1 (class 1 in 30% of rows)."""
    g = torch.Generator().manual_seed(seed)
    c = (torch.rand(n, generator=g) < 0.3).long()
    k = torch.poisson(torch.where(c == 1, 6.0, 1.0), generator=g)
    return TensorTable(
        x_cont=torch.randn(n, 1, generator=g) + c[:, None],
        cont_mask=torch.ones(n, 1, dtype=torch.bool),
        x_cat=c[:, None],
        cat_mask=torch.ones(n, 1, dtype=torch.bool),
        x_miss=torch.zeros(n, 0),
        x_count=k[:, None],
        count_mask=torch.ones(n, 1, dtype=torch.bool),
    )


def test_a_poisson_count_group_plugs_in():
    ppvae.slot_groups.register("x_count")(CountSlots)
    assert Layout.from_dict(COUNT_LAYOUT.to_dict()) == COUNT_LAYOUT
    data = count_table(2000).with_features(COUNT_LAYOUT)
    assert data.features.shape == (2000, COUNT_LAYOUT.input_dim) == (2000, 4)
    module = TabularModel(COUNT_LAYOUT, latent_dim=2, hidden=(32,))
    check_model(module, table=count_table(9))
    train(
        module,
        ELBO(),
        data,
        None,
        epochs=20,
        batch_size=200,
        lr=1e-2,
        patience=None,
        generator=torch.Generator().manual_seed(0),
        verbose=False,
    )
    with torch.no_grad():
        generated = module.generate(20_000)
        counts = generated.x_count[:, 0]
        assert torch.equal(counts, counts.round()) and (counts >= 0).all()
        # the mixture's mean 0.7 * 1 + 0.3 * 6 = 2.5 and the class-wise means
        assert math.isclose(counts.mean().item(), 2.5, abs_tol=0.25)
        by_class = [counts[generated.x_cat[:, 0] == j].mean().item() for j in (0, 1)]
        assert by_class[0] < 2.0 < 4.5 < by_class[1]
        # per-column log-likelihood of the count column: the Poisson formula at the guide's z
        rows = data[:50]
        pyro.set_rng_seed(4)
        _, z = module.posterior(rows)
        per_column = module.column_log_prob(rows, z=z)
        rate = torch.nn.functional.softplus(module.decoder(z)[-1][:, 0]) + 1e-3
        k = rows.x_count[:, 0]
        expected = k * rate.log() - rate - torch.lgamma(k + 1)
        torch.testing.assert_close(per_column[:, 2], expected)


# -- no hidden state -------------------------------------------------------------------------
def _small_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"x": rng.normal(size=n), "y": rng.choice(["a", "b", "c"], size=n), "k": rng.poisson(3, n)}
    )


def test_a_users_own_pyro_module_is_untouched_by_a_fit():
    net = torch.nn.Linear(3, 2)
    pyro.module("encoder", net)
    pyro.module("decoder", torch.nn.Linear(2, 3))
    store = pyro.get_param_store()
    before = {k: (store[k], store[k].detach().clone()) for k in store.keys()}
    vae = ppvae.TabularVAE(epochs=2, hidden=(8,), latent_dim=2, verbose=False).fit(_small_frame())
    vae.sample(10, seed=0)
    vae.column_log_likelihood(_small_frame(20))
    assert set(store.keys()) == set(before)
    for name, (tensor, values) in before.items():
        assert store[name] is tensor and torch.equal(tensor, values), name
    assert store["encoder$$$weight"] is net.weight


def test_a_fitted_model_keeps_no_training_tensors():
    df = _small_frame()
    vae = ppvae.TabularVAE(epochs=1, hidden=(8,), latent_dim=2, verbose=False).fit(df)
    held = [k for k, v in vars(vae).items() if isinstance(v, (TensorTable, torch.Tensor))]
    assert not held
    with pytest.raises(ValueError, match="data=df"):
        vae.refit_prior("aggregate", components=2)
    vae.refit_prior("aggregate", data=df, components=2)


def test_importing_ppvae_does_not_import_pyplot():
    code = "import sys, ppvae; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# -- the import graph ------------------------------------------------------------------------
def _import_graph() -> dict[str, set[str]]:
    """ppvae module -> the ppvae modules it imports anywhere (imports under
    ``if TYPE_CHECKING:`` excluded: they never run)."""
    files = {}
    for path in (ROOT / "ppvae").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets |= {resolve(a.name) for a in node.names if a.name.startswith("ppvae")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ppvae"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    targets.add(full if full in files else resolve(node.module))
        graph[module] = targets - {module, None}
    return graph


def test_the_import_graph_has_no_cycles():
    graph = _import_graph()
    assert {"ppvae.vae", "ppvae.spec", "ppvae.persistence", "ppvae.model"} <= set(graph)
    done, stack = set(), []

    def visit(module: str) -> None:
        if module in stack:
            cycle = stack[stack.index(module) :] + [module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        stack.append(module)
        for target in sorted(graph[module]):
            visit(target)
        stack.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_library_below_the_facade_imports_nothing_above_it():
    graph = _import_graph()
    top = {"ppvae", "ppvae.vae", "ppvae.cli", "ppvae.demo", "ppvae.__main__"}
    top |= {m for m in graph if m.startswith("ppvae.diagnostics")}
    for module in ("ppvae.model", "ppvae.training", "ppvae.persistence", "ppvae.spec"):
        assert not graph[module] & top, f"{module} imports {graph[module] & top}"


def test_facade_and_diagnostics_name_no_model_sites():
    sources = [ROOT / "ppvae" / "vae.py", *(ROOT / "ppvae" / "diagnostics").glob("*.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for site in ('"x_cont"', '"x_cat"', '"x_miss"', "poutine.replay", "TensorTable("):
            assert site not in text, f"{path.name} holds {site}"
