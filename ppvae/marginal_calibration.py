r"""Marginals calibrated ex post: generated rows have the training rows' column marginals.

A VAE fitted by the ELBO and sampled through z ~ p(z) need not reproduce one column's
marginal: the prior it samples from only approximates the aggregate posterior, and the
decoder was fitted on posterior draws, not prior ones. On the shared tables' validation
splits the default model's ``occupation`` came back 4.3 % off in total variation (Adult) and
the bill amounts of Default 2-3 % off in Kolmogorov-Smirnov distance. After the fit, two
maps, both fitted on rows generated through the sampling prior, correct the generator:

**Categorical slots** (levels, point masses): one offset per level :math:`b_{jk}` is added
to the decoder's logits,

.. math::  p_b(x_j = k \mid z) = \operatorname{softmax}_k\big(\ell_{jk}(z) + b_{jk}\big),
           \qquad \mathbb{E}_{z \sim p(z)}\, p_b(x_j = k \mid z) = \hat\pi_{jk},

with :math:`\hat\pi` the training frequencies and the expectation estimated on
``draws_for(n)`` prior draws (20 per training row, 2,000 to ``CALIBRATION_DRAWS``: the
training frequencies of n rows are noisier than that); a column's frequencies depend on its
own offsets only (chained slots: and on those of the slots before it, so they are solved in
slot order, :func:`_solve_in_order`), and its offsets minimise a convex function whose
gradient is the frequency gap, solved by Newton steps (:func:`_solve_offsets`). An offset scales every z's probability of a
level by the same factor, so how the level depends on z is the decoder's.

**Continuous slots**: a generated value :math:`y` of slot :math:`j` becomes
:math:`G_j^{-1}(F_j(y))`, with :math:`F_j` the generated slot's distribution and :math:`G_j`
the training rows', both estimated by ``CALIBRATION_KNOTS`` quantiles over the rows where the
inverse transform reads the slot (not missing, off a point mass); :math:`F_j` on
``draws_for(n, MAP_DRAWS)`` generated rows (up to 100,000, generated ``MAP_CHUNK`` at a time):
the noise of the source quantiles adds to every sample's own, and with 10,000 rows it left
Default's numeric columns a mean Kolmogorov-Smirnov distance of 0.0094 to the training rows
where 100,000 left 0.0063 (one fit, three samples of 24,000 rows; 2 s more). The map is monotone, so
every rank, hence the copula of the generated rows, is kept; a slot whose meaning depends on
a category (mode-specific normalisation) is left alone.

``TabularVAE(calibrate=...)`` chooses: ``"all"`` (the default: both), ``"categories"`` or
``"none"``. On the shared tables' validation splits (docs/marginal_calibration.md, two draws
of one default fit per table) the offsets, matched in the delivered rows, raised Column Shapes
on all four tables and lowered the mean detection AUC (0.677 -> 0.675); the continuous maps on
top raised Column Shapes to 0.990-0.993 and lowered the mean detection AUC to 0.671 (Shoppers
0.617 -> 0.588; Adult, Default and diamonds +0.004 to +0.005), while diamonds' Pair Trends fell
(0.960 -> 0.933, SDMetrics binning each table on its own range): a per-column map matches a
marginal, not the relations between columns.

**Through the value rules.** Rows reach the user decoded, with the table's value rules
applied (``ppvae.data.dependencies``: ``Informational = 0 -> Informational_Duration = 0``).
A rule overwrites a level the decoder drew, so level frequencies matched before the rules
drift after them: on Shoppers' validation split, the offsets alone gave
``Informational_Duration`` 83.0 % zeros against 80.4 % in the training rows. When the caller
passes ``through`` (generated slots -> the rows as delivered, encoded again), the offsets
are re-solved ``RULE_ROUNDS`` times for the frequencies

.. math::  a_{jk} = \max\big(\hat\pi_{jk} - (\tilde\pi_{jk} - \pi_{jk}),\;
           m\,\hat\pi_{jk}\big) \quad\text{(renormalised per column)},

with :math:`\pi` and :math:`\tilde\pi` the level frequencies of the same generated rows
before and after the rules (from the last solve) and :math:`m` = ``MIN_AIM``: the decoder is
asked for the training frequencies less what the rules add. A column no rule touches has
:math:`\tilde\pi = \pi` and keeps its target exactly. A column the rules overwrite in more
than ``MAX_OVERWRITTEN`` of the rows (Adult's ``education-num``, decided by ``education``)
also keeps its target: its delivered frequencies are the deciding column's.

Both live in the slot groups (saved with the model) and act only when the model *generates*
(:meth:`ppvae.model.TableModel.generate`: ``sample``, ``reconstruct``); likelihoods,
imputation and ``sample(given=...)`` use the decoder as fitted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger
from scipy.special import ndtr

from ppvae.data.layout import CATEGORICAL, CONTINUOUS, TensorTable
from ppvae.data.transforms import quantile_probs

#: ``TabularVAE(calibrate=...)`` values: what is calibrated after the fit
CALIBRATIONS = ("categories", "all", "none")

CALIBRATION_DRAWS = 10_000  # prior draws at most; fewer for a small table (``draws_for``)
DRAWS_PER_ROW = 20  # draw noise ~ 1/sqrt(20) of the training frequencies' own noise
MIN_DRAWS = 2_000
MAP_DRAWS = 100_000  # generated rows at most for the continuous maps (``draws_for``)
MAP_CHUNK = 10_000  # rows generated at a time for the continuous maps
CALIBRATION_KNOTS = 1001  # quantiles per continuous slot (``calibration_probs``)
TAIL_SCORE = 5.0  # the outermost tail knots: probabilities Phi(-5) and Phi(5)
MIN_ROWS = 100  # fewer generated or training values in use than this: the slot is not mapped
ITERATIONS = 50  # Newton steps per column
RULE_ROUNDS = 4  # corrections for levels the value rules overwrite (``through``)
MAX_OVERWRITTEN = 0.5  # a column overwritten in more rows is left to the rules
MIN_AIM = 0.25  # a level is solved for at least this share of its training frequency
SCALING_GAP = 1.0  # a larger log-ratio gap: iterative-scaling steps, not Newton's (_solve_offsets)
TOLERANCE = 1e-3  # stop when every level's log-ratio log(target / sampled) is below this
RIDGE = 1e-9  # added to the Hessian's diagonal (it is singular along b + constant)
PSEUDO_COUNT = 0.5  # added to each level's training count (a level absent from the rows)

#: ``table -> (in_use [n, n_cont] bool, mappable per slot)``: where the inverse transform
#: reads each continuous slot (``TableTransformer.continuous_in_use``).
InUse = Callable[[TensorTable], tuple[torch.Tensor, list[bool]]]
#: generated slots -> the rows as the user receives them (decoded, value rules applied),
#: encoded again (``TabularVAE``: inverse transform, then transform)
Through = Callable[[TensorTable], TensorTable]


class CalibratedSampling(Messenger):
    """Effect handler: an unobserved categorical site is drawn from its calibrated logits
    (``logits + offsets`` of the module's categorical slot group)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.offsets = category_offsets(module)

    def _pyro_sample(self, msg: dict) -> None:
        if msg["name"] != CATEGORICAL or msg["is_observed"] or self.offsets is None:
            return
        msg["fn"] = msg["fn"].shifted(self.offsets)


def _group(module: torch.nn.Module, name: str) -> torch.nn.Module | None:
    for group in getattr(module, "slot_groups", ()):
        if group.name == name:
            return group
    return None


def category_offsets(module: torch.nn.Module) -> torch.Tensor | None:
    """The module's categorical logit offsets ``[sum K]``, or None (no categorical slots, or
    a custom group without offsets)."""
    return getattr(_group(module, CATEGORICAL), "offsets", None)


def map_continuous(module: torch.nn.Module, values: torch.Tensor) -> torch.Tensor:
    """Generated continuous slot values ``[n, n_cont]`` through the fitted monotone maps."""
    group = _group(module, CONTINUOUS)
    if group is None or not hasattr(group, "calibrated") or not group.calibrated.any():
        return values
    out = values.clone()
    for j in torch.nonzero(group.calibrated).flatten().tolist():
        source, target = group.calibration[j]
        out[:, j] = _interpolate(values[:, j], source, target).to(values.dtype)
    return out


def reset(module: torch.nn.Module) -> None:
    """Drop every calibration: the model generates as fitted."""
    offsets = category_offsets(module)
    if offsets is not None:
        offsets.zero_()
    group = _group(module, CONTINUOUS)
    if group is not None and hasattr(group, "calibrated"):
        group.calibrated.zero_()


@torch.no_grad()
def calibrate(
    module: torch.nn.Module,
    table: TensorTable,
    in_use: InUse,
    continuous: bool = False,
    draws: int | None = None,
    seed: int = 0,
    through: Through | None = None,
) -> dict[str, float | int | None]:
    """Fit the categorical calibration of ``module`` to the training rows ``table``, and with
    ``continuous`` the continuous maps too (fitted on rows whose point masses are already
    calibrated). With ``through``, the level frequencies matched are those of the rows as
    delivered (module docstring).
    Returns ``{"category_gap": largest remaining |log(target / sampled)|, "mapped_slots": n}``.
    The prior draws use a generator forked from torch's global one and seeded with ``seed``:
    the caller's random stream is left where it was; ``draws`` (of both) defaults to
    ``draws_for(n)`` for the offsets and ``draws_for(n, MAP_DRAWS)`` for the maps."""
    reset(module)
    map_draws = draws_for(len(table[CATEGORICAL]), MAP_DRAWS) if draws is None else draws
    draws = draws_for(len(table[CATEGORICAL])) if draws is None else draws
    devices = [table[CATEGORICAL].device] if table[CATEGORICAL].device.type == "cuda" else []
    was_training = module.training
    module.eval()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            gap = calibrate_categories(module, table, draws, through)
            mapped = _fit_continuous_maps(module, table, in_use, map_draws) if continuous else 0
    finally:
        module.train(was_training)
    return {"category_gap": gap, "mapped_slots": mapped}


@torch.no_grad()
def calibrate_categories(
    module: torch.nn.Module,
    table: TensorTable,
    draws: int = CALIBRATION_DRAWS,
    through: Through | None = None,
) -> float | None:
    """Set the categorical offsets so that rows generated through the prior (and, with
    ``through``, delivered) have the level frequencies of ``table`` (observed cells); returns
    the largest remaining log-ratio of the last solve (None: nothing to calibrate). Draws from
    torch's global generator."""
    offsets = category_offsets(module)
    if offsets is None or table[CATEGORICAL].shape[1] == 0:
        return None
    offsets.zero_()
    group = _group(module, CATEGORICAL)
    cardinalities = group.groups.cardinalities
    target = _frequencies(table, cardinalities).to(torch.float64)
    gap = _solve(module, offsets, target, _draw(module, draws))
    if through is None:
        return gap
    for _ in range(RULE_ROUNDS):  # one set of draws: the rule effect and the solve
        nodes = _draw(module, draws)
        generated = module.rows_from_trace(nodes, draws)
        delivered = through(generated)
        effect = _frequencies(delivered, cardinalities) - _frequencies(generated, cardinalities)
        effect = effect.to(target) * _left_to_model(generated, delivered, cardinalities).to(target)
        aim = _normalise(torch.maximum(target - effect, target * MIN_AIM), cardinalities)
        gap = _solve(module, offsets, aim, nodes)
    return gap


def _left_to_model(
    generated: TensorTable, delivered: TensorTable, cardinalities: tuple[int, ...]
) -> torch.Tensor:
    """Per level ``[sum K]``: 1 for a column whose generated level the value rules overwrite
    in at most ``MAX_OVERWRITTEN`` of the rows, else 0 (a column the rules decide)."""
    before, after = generated[CATEGORICAL].cpu(), delivered[CATEGORICAL].cpu()
    mask = delivered.mask(CATEGORICAL)
    seen = torch.ones_like(after, dtype=torch.bool) if mask is None else mask.cpu().bool()
    share = ((before != after) & seen).double().sum(0) / seen.double().sum(0).clamp_min(1)
    return torch.repeat_interleave((share <= MAX_OVERWRITTEN).double(), torch.tensor(cardinalities))


def draws_for(num_rows: int, most: int = CALIBRATION_DRAWS) -> int:
    """Prior draws for calibrating to ``num_rows`` training rows: ``DRAWS_PER_ROW`` per row,
    clipped to [``MIN_DRAWS``, ``most``] (the continuous maps: ``MAP_DRAWS``)."""
    return int(min(most, max(MIN_DRAWS, DRAWS_PER_ROW * num_rows)))


def _draw(module: torch.nn.Module, draws: int) -> dict[str, dict]:
    """The nodes of one trace of ``module.model`` over ``draws`` rows generated through the
    prior with the offsets so far."""
    with CalibratedSampling(module):
        return poutine.trace(module.model).get_trace(None, num_rows=draws).nodes


def _solve(
    module: torch.nn.Module, offsets: torch.Tensor, target: torch.Tensor, nodes: dict[str, dict]
) -> float:
    """Solve ``offsets`` for ``target`` on the z of the generated rows of ``nodes``; returns
    the largest remaining log-ratio."""
    group = _group(module, CATEGORICAL)
    fn = nodes[CATEGORICAL]["fn"]
    logits = fn.logits.double() - offsets.double()  # [draws, sum K], from z as fitted
    cardinalities = group.groups.cardinalities
    if getattr(fn, "chain", None) is not None:
        return _solve_in_order(logits, fn.chain, target.to(logits), offsets)
    return _solve_columns(logits, target.to(logits), offsets, cardinalities)


def _solve_in_order(
    logits: torch.Tensor, chain: torch.nn.Module, target: torch.Tensor, offsets: torch.Tensor
) -> float:
    """Chained slots (``ppvae.chained_categories``): a slot's frequencies depend on its own
    offsets and on those of the slots before it, not after. So the slots are solved in
    order, each on its logits given levels drawn, row by row, with the offsets already
    solved for the slots before it: one pass solves every slot. (Re-solving all slots at
    once on draws made with the last offsets left Default's chained zero amounts 0.027 off
    after three rounds, and further rounds oscillated.)"""
    readout = (chain.readout * chain.level_chained).to(logits)
    embedding = (chain.embedding * chain.level_chained[:, None]).to(logits)
    context = logits.new_zeros(len(logits), embedding.shape[1])
    gap = 0.0
    for a, b in chain.bounds:
        slot = logits[:, a:b] + context @ readout[:, a:b]
        solved, slot_gap = _solve_offsets(slot, target[a:b])
        offsets[a:b] = solved.to(offsets)
        level = torch.distributions.Categorical(logits=slot + solved).sample()
        context = context + embedding[a:b][level]
        gap = max(gap, slot_gap)
    return gap


def _normalise(p: torch.Tensor, cardinalities: tuple[int, ...]) -> torch.Tensor:
    """``p`` ``[sum K]`` with each column's block rescaled to sum to one."""
    blocks = torch.split(p, list(cardinalities))
    return torch.cat([b / b.sum() for b in blocks])


def _solve_columns(
    logits: torch.Tensor, target: torch.Tensor, offsets: torch.Tensor, cardinalities
) -> float:
    """Set ``offsets`` column by column from the generated ``logits``; the largest gap."""
    gap, start = 0.0, 0
    for k in cardinalities:  # a column's frequencies depend on its own offsets only
        s = slice(start, start + k)
        solved, column_gap = _solve_offsets(logits[:, s], target[s])
        offsets[s] = solved.to(offsets)
        gap, start = max(gap, column_gap), start + k
    return gap


@torch.no_grad()
def _fit_continuous_maps(
    module: torch.nn.Module, table: TensorTable, in_use: InUse, draws: int
) -> int:
    """Fit the continuous slots' quantile maps on ``draws`` generated rows; returns how many
    slots are mapped."""
    group = _group(module, CONTINUOUS)
    if group is None or not hasattr(group, "calibrated") or table[CONTINUOUS].shape[1] == 0:
        return 0
    sources: list[list[torch.Tensor]] = [[] for _ in range(table[CONTINUOUS].shape[1])]
    for start in range(0, draws, MAP_CHUNK):  # in chunks: only the values in use are kept
        generated = module.generate(min(MAP_CHUNK, draws - start))
        gen_use, mappable = in_use(generated)
        values = generated[CONTINUOUS].double().cpu()
        for j, kept in enumerate(sources):
            kept.append(values[:, j][gen_use[:, j].cpu()])
    real_use, _ = in_use(table)
    probs = calibration_probs()
    for j, ok in enumerate(mappable):
        source = torch.cat(sources[j])
        target = table[CONTINUOUS][:, j][real_use[:, j].to(table[CONTINUOUS].device)]
        if not ok or len(source) < MIN_ROWS or len(target) < MIN_ROWS:
            continue
        knots = torch.stack(
            [torch.quantile(v.detach().double().cpu(), probs) for v in (source, target)]
        )
        group.calibration[j] = knots.to(group.calibration)
        group.calibrated[j] = True
    return int(group.calibrated.sum())


def calibration_probs() -> torch.Tensor:
    r"""The ``CALIBRATION_KNOTS`` probabilities ``[K]`` at which a continuous map's source and
    target quantiles are taken (``quantile_probs``: denser in the tails, down to
    :math:`\Phi(-5)`).

    Interpolating linearly between evenly spaced quantiles alone (0.999 and 1 the last two)
    drew the generated rows of that last interval evenly between the two scores, though
    nearly all of the training rows' lie close to the lower one, and thinned the tail: on
    diamonds' validation split no sample reached 3.0 carat where 18 training rows do, and the
    0.9995 quantile was 2.68 against 3.01.
    """
    return torch.from_numpy(quantile_probs(CALIBRATION_KNOTS, float(ndtr(-TAIL_SCORE))))


def _interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``fp(xp)`` at ``x`` (``xp`` non-decreasing), constant beyond the ends."""
    x = x.to(xp.dtype)
    i = torch.searchsorted(xp, x.contiguous(), right=True).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    width = x1 - x0
    w = torch.where(width > 0, (x - x0) / torch.where(width > 0, width, 1.0), 0.5)
    out = f0 + w.clamp(0, 1) * (f1 - f0)
    return torch.where(x <= xp[0], fp[0], torch.where(x >= xp[-1], fp[-1], out))


def _solve_offsets(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, float]:
    r"""Offsets ``b`` ``[K]`` with ``mean_n softmax(logits_n + b) = target`` for one column's
    ``logits`` ``[n, K]``: the minimiser of the convex
    :math:`f(b) = \frac1n \sum_n \operatorname{logsumexp}(\ell_n + b) - \hat\pi^\top b`
    (gradient :math:`m(b) - \hat\pi`), by Newton steps with backtracking; while some level
    is off by more than ``SCALING_GAP`` in log-ratio, by iterative-scaling steps
    :math:`b \leftarrow b + \log(\hat\pi / m(b))` instead (each row draws exactly one level, so
    they decrease ``f`` (generalised iterative scaling) however little mass a level has, where a
    Newton step's quadratic model is useless). Returns ``b`` and the largest remaining
    ``|log(target / sampled)|``."""

    def objective(b: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(logits + b, dim=-1).mean() - target @ b

    b = torch.zeros_like(target)
    ridge = RIDGE * torch.eye(len(target), dtype=target.dtype, device=target.device)
    gap = float("inf")
    for _ in range(ITERATIONS):
        log_p = torch.log_softmax(logits + b, dim=-1)
        log_sampled = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))  # no underflow
        p, sampled = log_p.exp(), log_sampled.exp()
        ratio = target.log() - log_sampled
        gap = float(ratio.abs().max())
        if gap < TOLERANCE:
            break
        if gap > SCALING_GAP:  # far off (a level the decoder all but never draws): scaling
            b = b + ratio
            continue
        grad = sampled - target
        hessian = torch.diag(sampled) - p.T @ p / len(p) + ridge
        step = torch.linalg.solve(hessian, grad)
        value, t = objective(b), 1.0
        while objective(b - t * step) > value - 1e-4 * t * (grad @ step) and t > 1e-6:
            t /= 2
        b = b - t * step
    return b, gap


def _frequencies(table: TensorTable, cardinalities: tuple[int, ...]) -> torch.Tensor:
    """Training level frequencies ``[sum K]`` (each column's block sums to one)."""
    values = table[CATEGORICAL].long()
    mask = table.mask(CATEGORICAL)
    blocks = []
    for j, k in enumerate(cardinalities):
        column = values[:, j] if mask is None else values[:, j][mask[:, j].bool()]
        counts = torch.bincount(column.cpu(), minlength=k)[:k].double() + PSEUDO_COUNT
        blocks.append(counts / counts.sum())
    return torch.cat(blocks)
