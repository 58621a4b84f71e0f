r"""Draws of the latent code given a partial row: self-normalised importance resampling.

For a row whose observed cells are :math:`x_S` (the other cells hidden, see
:mod:`ppvae.input_masking`), the posterior over the latent code is
:math:`p(z \mid x_S) \propto p(x_S \mid z)\, p(z)`. With K particles from the encoder on the
partial row, :math:`z_k \sim q(z \mid x_S)`,

.. math::  \log w_k = \log p(x_S \mid z_k) + \log p(z_k) - \log q(z_k \mid x_S)
           + \log P(\text{range conditions} \mid z_k),
           \qquad \mathrm{ESS} = \frac{(\sum_k w_k)^2}{\sum_k w_k^2},

and draws are resampled from the particles in proportion to :math:`w_k` (SIR). With
``complete`` (:class:`ppvae.slot_completion.SlotCompletion`), each particle also carries a
completion of the hidden slots of the model's chained sites, drawn slot by slot, and the
weight gains the fixed slots' sequential densities instead: the completions are resampled
with their z and returned with it, keyed by site, after ``refresh_steps`` independent
Metropolis-Hastings moves of each draw's completion given its z (which make the copies of
one particle distinct). The weights
are read from Pyro traces of the model replayed on the guide, so any
:class:`~ppvae.model.TableModel` whose observed sites honour the table's masks gets this (the
masks are how ``poutine`` sees which cells are observed).

Rows whose ESS is below ``min_ess`` are redrawn with 4x the particles (up to
``max_particles``); rows whose ESS is still below the number of draws asked for get
``mcmc_steps`` random-walk Metropolis moves in z targeting :math:`p(z \mid x_S)` after
resampling (resample-move), which spreads duplicated particles (with completions, moves in z
given the row and its completion, a Gibbs step of :math:`p(z, x_M \mid x_S)`). Nothing is ever rejected
wholesale, so a request for a rare condition costs a bounded number of model evaluations.

Monte Carlo summaries of the posterior (the predictive mean behind an imputation's best
guess) need more draws than the m completions a user asks for: ``summary_draws`` more are
resampled from the same final weights (no new model evaluations), so the summary's noise
from resampling shrinks as 1 / (m + summary_draws) instead of 1 / m.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from pyro import poutine

from ppvae.data.layout import TensorTable
from ppvae.evaluation import repeat_rows, row_log_weights
from ppvae.model import TableModel
from ppvae.objectives.terms import importance_traces, to_rows
from ppvae.slot_completion import SlotCompletion, completed_table

# extra log-likelihood of latent draws ``[N, d]`` for the rows they belong to ``[N]``
ExtraLogLik = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class PosteriorDraws:
    """Latent draws for each partial row and how good they are.

    ``latents``: ``{site: [n, m, ...]}`` (m draws per row; completed observed sites too,
    with ``complete``); ``ess``: the effective sample
    size of the final importance weights ``[n]``; ``particles``: particles used per row
    ``[n]``; ``acceptance``: the Metropolis acceptance rate per row ``[n]`` (NaN where no
    moves were made); ``summary``: ``{site: [n, m + s, ...]}``, the m draws followed by
    ``s = summary_draws`` more resampled from the same weights (None when s = 0)."""

    latents: dict[str, torch.Tensor]
    ess: torch.Tensor
    particles: torch.Tensor
    acceptance: torch.Tensor
    summary: dict[str, torch.Tensor] | None = None


def effective_sample_size(log_weights: torch.Tensor) -> torch.Tensor:
    """Kish's ESS of each row of unnormalised log-weights ``[n, K]`` -> ``[n]``."""
    w = torch.softmax(log_weights, dim=-1)
    return 1.0 / (w**2).sum(-1)


def particle_cloud(
    module: TableModel,
    table: TensorTable,
    num_particles: int,
    extra: ExtraLogLik | None = None,
    complete: SlotCompletion | None = None,
    max_rows: int = 65_536,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """K guide draws per row of the partial ``table`` (and completions, with ``complete``)
    and their log-weights: ``({site: [n, K, ...]}, [n, K])``."""
    k = int(num_particles)
    chunk_rows = max(1, max_rows // k)
    latents: dict[str, list[torch.Tensor]] = {}
    weights = []
    for start in range(0, len(table), chunk_rows):
        chunk = table[start : start + chunk_rows]
        rep = repeat_rows(chunk, k)
        model_trace, guide_trace = importance_traces(module.model, module.guide, rep)
        lw = row_log_weights(model_trace, guide_trace)
        sites = {
            name: node["value"]
            for name, node in guide_trace.nodes.items()
            if node["type"] == "sample" and not node["is_observed"]
        }
        if extra is not None:
            rows = torch.arange(start, start + len(chunk)).repeat_interleave(k)
            lw = lw + extra(sites[module.latent_site], rows)
        if complete is not None:
            completions, change = complete(model_trace)
            lw = lw + change
            sites.update(completions)
        weights.append(lw.reshape(len(chunk), k))
        for name, value in sites.items():
            latents.setdefault(name, []).append(value.reshape(len(chunk), k, *value.shape[1:]))
    return {name: torch.cat(parts) for name, parts in latents.items()}, torch.cat(weights)


def log_joint(
    module: TableModel,
    table: TensorTable,
    z: torch.Tensor,
    rows: torch.Tensor,
    extra: ExtraLogLik | None = None,
) -> torch.Tensor:
    """:math:`\\log p(x_S, z)` (+ range terms) per line of ``table`` ``[N]`` at ``z`` ``[N, d]``;
    ``rows`` ``[N]``: the partial row each line belongs to (passed to ``extra``)."""
    model = poutine.condition(module.model, data={module.latent_site: z})
    trace = poutine.trace(model).get_trace(table)
    trace.compute_log_prob()
    total = sum(
        to_rows(node["log_prob"], node) for node in trace.nodes.values() if node["type"] == "sample"
    )
    return total if extra is None else total + extra(z, rows)


def resample_posterior(
    module: TableModel,
    table: TensorTable,
    num_draws: int,
    num_particles: int = 100,
    min_ess: float = 20.0,
    max_particles: int = 6_400,
    mcmc_steps: int = 5,
    extra: ExtraLogLik | None = None,
    summary_draws: int = 0,
    complete: SlotCompletion | None = None,
    refresh_steps: int = 5,
) -> PosteriorDraws:
    """``num_draws`` latent draws per row of the partial ``table`` by SIR, plus
    ``summary_draws`` for summaries (module docstring)."""
    n, m, s = len(table), int(num_draws), int(summary_draws)
    max_particles = max(int(max_particles), int(num_particles))
    k = torch.full((n,), int(num_particles), dtype=torch.long)
    latents, lw = particle_cloud(module, table, int(num_particles), extra, complete)
    ess = effective_sample_size(lw)
    index = torch.multinomial(torch.softmax(lw, -1), m + s, replacement=True)
    draws = {name: _gather(value, index) for name, value in latents.items()}
    todo = torch.nonzero(ess.cpu() < min(min_ess, m)).flatten()
    size = int(num_particles)
    while len(todo) and size < max_particles:  # more particles where the ESS is poor
        size = min(4 * size, int(max_particles))
        sub_extra = None if extra is None else _rows_of(extra, todo)
        sub_latents, sub_lw = particle_cloud(module, table[todo], size, sub_extra, complete)
        sub_ess = effective_sample_size(sub_lw)
        index = torch.multinomial(torch.softmax(sub_lw, -1), m + s, replacement=True)
        for name, value in sub_latents.items():
            draws[name][todo.to(value.device)] = _gather(value, index)
        ess[todo.to(ess.device)] = sub_ess
        k[todo] = size
        todo = todo[sub_ess.cpu() < min(min_ess, m)]
    summary = {name: value.clone() for name, value in draws.items()} if s else None
    draws = {name: value[:, :m] for name, value in draws.items()}
    acceptance = torch.full((n,), float("nan"))
    poor = torch.nonzero(ess.cpu() < m).flatten()
    completions = {name: v for name, v in draws.items() if name in table.keys()}
    if len(poor) and mcmc_steps > 0 and set(draws) - set(completions) == {module.latent_site}:
        z, rate = _metropolis(
            module, table, draws[module.latent_site], poor, mcmc_steps, extra, completions
        )
        draws[module.latent_site] = z
        acceptance[poor] = rate
        if summary is not None:  # the moved draws replace their unmoved originals
            summary[module.latent_site][:, :m] = z
    if completions and refresh_steps > 0:
        completions = _refresh(
            module, table, draws[module.latent_site], completions, complete, refresh_steps
        )
        draws.update(completions)
        if summary is not None:
            for name, value in completions.items():
                summary[name][:, :m] = value
    return PosteriorDraws(
        latents=draws, ess=ess.cpu(), particles=k, acceptance=acceptance, summary=summary
    )


def _refresh(
    module: TableModel,
    table: TensorTable,
    z: torch.Tensor,
    completions: dict[str, torch.Tensor],
    complete: SlotCompletion,
    steps: int,
    max_rows: int = 65_536,
) -> dict[str, torch.Tensor]:
    """The completions ``{site: [n, m, ...]}`` after ``steps`` independent Metropolis-Hastings
    moves each, given the draws ``z`` ``[n, m, d]`` (:meth:`SlotCompletion.refresh`)."""
    n, m = z.shape[:2]
    out = {name: value.clone() for name, value in completions.items()}
    for chunk in torch.arange(n).split(max(1, max_rows // m)):
        rep = repeat_rows(table[chunk], m)
        model = poutine.condition(
            module.model, data={module.latent_site: z[chunk.to(z.device)].flatten(0, 1)}
        )
        trace = poutine.trace(model).get_trace(rep)
        current = {name: v[chunk.to(v.device)].flatten(0, 1) for name, v in out.items()}
        for _ in range(int(steps)):
            current, _ = complete.refresh(trace, current)
        for name, value in current.items():
            out[name][chunk.to(value.device)] = value.reshape(len(chunk), m, *value.shape[1:])
    return out


def _gather(value: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``value[i, index[i, j]]`` for a particle tensor ``[n, K, ...]`` -> ``[n, m, ...]``."""
    rows = torch.arange(len(index), device=value.device)[:, None]
    return value[rows, index.to(value.device)]


def _rows_of(extra: ExtraLogLik, rows: torch.Tensor) -> ExtraLogLik:
    """``extra`` for a subset of the partial rows (row numbers relative to the subset)."""
    return lambda z, sub: extra(z, rows[sub.cpu()])


def _metropolis(
    module: TableModel,
    table: TensorTable,
    z: torch.Tensor,
    rows: torch.Tensor,
    steps: int,
    extra: ExtraLogLik | None,
    completions: dict[str, torch.Tensor],
    max_rows: int = 65_536,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random-walk Metropolis moves of the draws ``z`` ``[n, m, d]`` of ``rows`` (each given
    its completion ``{site: [n, m, ...]}``, if any); proposal scale per row and dimension:
    2.38 / sqrt(d) times the draws' spread (the encoder's scale where they all coincide).
    Returns the new ``z`` and the acceptance rate of each moved row ``[len(rows)]``."""
    out = z.clone()
    m, d = z.shape[1], z.shape[2]
    rates = []
    for chunk in rows.split(max(1, max_rows // m)):
        sub = z[chunk.to(z.device)]  # [r, m, d]
        r = len(chunk)
        spread = sub.std(dim=1, keepdim=True, unbiased=False)
        q_scale = module.posterior(table[chunk])[0].stddev.unsqueeze(1)
        scale = torch.where(spread > 1e-6, spread, q_scale) * (2.38 / math.sqrt(d))
        scale = scale.expand(r, m, d).reshape(r * m, d)
        rep = repeat_rows(table[chunk], m)
        if completions:
            done = {k: v[chunk.to(v.device)].flatten(0, 1) for k, v in completions.items()}
            rep = completed_table(rep, done)
        lines = chunk.repeat_interleave(m)
        current = sub.reshape(r * m, d)
        target = log_joint(module, rep, current, lines, extra)
        accepted = torch.zeros(r * m, device=current.device)
        for _ in range(int(steps)):
            proposal = current + scale * torch.randn_like(current)
            new_target = log_joint(module, rep, proposal, lines, extra)
            accept = torch.log(torch.rand_like(new_target)) < new_target - target
            current = torch.where(accept[:, None], proposal, current)
            target = torch.where(accept, new_target, target)
            accepted += accept.float()
        out[chunk.to(z.device)] = current.reshape(r, m, d)
        rates.append((accepted / int(steps)).reshape(r, m).mean(1).cpu())
    return out, torch.cat(rates)
