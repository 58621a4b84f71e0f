r"""Teach the encoder partial rows, after the model is fitted: the proposal phase of ``fit``.

Conditional sampling and imputation need :math:`q(z \mid x_S)` for any observed subset S of
a row's cells: :mod:`ppvae.posterior_resampling` uses it as its importance proposal for the
posterior :math:`p(z \mid x_S)`. A proposal must cover the posterior's mass; being too wide
costs particles, being too narrow silently loses whatever lies outside it, and no effective
sample size reveals that loss.

So the encoder is trained by the *forward* KL, not the ELBO. The encoder as fitted,
:math:`q_T(z \mid x)` (frozen: the teacher), draws :math:`z` for full training rows; the
encoder then learns to predict those draws from random partial rows (hiding a share
:math:`u \sim U(0, 2r)` of each row's columns, :func:`ppvae.input_masking.hide_cells`):

.. math::  \min_q\; \mathbb E_{x}\, \mathbb E_{S}\, \mathbb E_{z \sim q_T(z \mid x)}
           \bigl[-\log q(z \mid x_S)\bigr]
           = \mathbb E_{x_S}\, \mathrm{KL}\bigl(\bar q(z \mid x_S) \,\|\, q(z \mid x_S)\bigr)
           + \text{const},

with :math:`\bar q(z \mid x_S) = \mathbb E_{x \mid x_S}[q_T(z \mid x)]` the codes of every
row that agrees with :math:`x_S` (the aggregate posterior's conditional, which stands in for
:math:`p(z \mid x_S)`). The forward KL is mass-covering: where the hidden cells leave the
code free (a column the others do not predict), :math:`q(z \mid x_S)` spreads over every
code those rows have. The ELBO of the observed cells, :math:`\mathrm{KL}(q \,\|\, p(z \mid
x_S))`, is mode-seeking instead: a Gaussian q fitted by it sits inside one mode of the
posterior, and the resampled imputations came out too sharp (docs/partial_rows.md).

With nothing hidden the target is the teacher itself, so full rows keep their posterior.
The model's parameters are untouched, so unconditional synthesis is exactly what it was
(``sample`` never calls the encoder): masked training costs no fidelity by construction, and
importance weighting corrects whatever gap is left between q and the posterior.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from pyro import poutine

from ppvae.data.layout import TensorTable
from ppvae.input_masking import hide_cells
from ppvae.model import TableModel

#: epochs of the proposal phase: this share of the epochs the model trained, within bounds
EPOCH_SHARE, MIN_EPOCHS, MAX_EPOCHS = 0.25, 5, 50


def guide_only_parameters(module: TableModel, batch: TensorTable) -> list[torch.nn.Parameter]:
    """The parameters the guide uses and the model does not (found by autograd on one
    batch): the encoder, for the default model."""
    params = [p for p in module.parameters() if p.requires_grad]
    guide_trace = poutine.trace(module.guide).get_trace(batch)
    used_by_guide = torch.autograd.grad(
        guide_trace.log_prob_sum(), params, allow_unused=True, retain_graph=False
    )
    z = {
        name: node["value"].detach()
        for name, node in guide_trace.nodes.items()
        if node["type"] == "sample" and not node["is_observed"]
    }
    model_trace = poutine.trace(poutine.condition(module.model, data=z)).get_trace(batch)
    used_by_model = torch.autograd.grad(model_trace.log_prob_sum(), params, allow_unused=True)
    return [
        p for p, g, m in zip(params, used_by_guide, used_by_model) if g is not None and m is None
    ]


def proposal_epochs(model_epochs: int) -> int:
    """Epochs of the proposal phase after a fit of ``model_epochs`` epochs."""
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(EPOCH_SHARE * model_epochs))))


@contextmanager
def swapped(params: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> Iterator[None]:
    """Inside the block ``params`` hold ``values`` (in place, no autograd); restored after."""
    with torch.no_grad():
        kept = [p.detach().clone() for p in params]
        for p, v in zip(params, values):
            p.copy_(v)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, v in zip(params, kept):
                p.copy_(v)


def latent_values(trace: poutine.Trace) -> dict[str, torch.Tensor]:
    """``{site: value}`` of the latent (unobserved) sample sites of a guide trace, detached."""
    return {
        name: node["value"].detach()
        for name, node in trace.nodes.items()
        if node["type"] == "sample" and not node["is_observed"]
    }


def forward_kl_loss(
    module: TableModel, partial: TensorTable, targets: dict[str, torch.Tensor]
) -> torch.Tensor:
    """:math:`-\\log q(z \\mid x_S)` summed over rows and latent sites: the guide on the
    ``partial`` rows, scored at the teacher's draws ``targets`` ``{site: [n, ...]}``."""
    trace = poutine.trace(poutine.condition(module.guide, data=targets)).get_trace(partial)
    return -sum(trace.nodes[name]["fn"].log_prob(value).sum() for name, value in targets.items())


def fit_proposal(
    module: TableModel,
    data: TensorTable,
    rate: float,
    epochs: int,
    batch_size: int,
    lr: float,
) -> list[float]:
    """Train the guide-only parameters of ``module`` on partial rows of ``data`` by the
    forward KL to the fitted encoder (module docstring); returns the mean loss (nats per row)
    of each epoch."""
    n = len(data)
    batch_size = max(1, min(int(batch_size), n))
    params = guide_only_parameters(module, data[:batch_size])
    if not params:
        return []
    teacher = [p.detach().clone() for p in params]  # the encoder as fitted
    optimizer = torch.optim.Adam(params, lr=lr)
    was_training = module.training
    module.eval()  # the cells are hidden here, once: not again by the encoder's input masking
    losses = []
    try:
        for _ in range(int(epochs)):
            order = torch.randperm(n, device=data.x_cont.device)
            total = 0.0
            for start in range(0, n, batch_size):
                batch = data[order[start : start + batch_size]]
                with swapped(params, teacher), torch.no_grad():
                    targets = latent_values(poutine.trace(module.guide).get_trace(batch))
                partial = hide_cells(module.layout, batch, rate)
                loss = forward_kl_loss(module, partial, targets) / len(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            losses.append(total / n)
    finally:
        module.train(was_training)
    for p in module.parameters():
        p.grad = None
    return losses
