r"""Teach the encoder partial rows, after the model is fitted: the proposal phase of ``fit``.

Conditional sampling and imputation need :math:`q(z \mid x_S)` for any observed subset S of
a row's cells (:mod:`ppvae.posterior_resampling` uses it as its importance proposal). Once
the model p(z) p(x | z) is fitted, the guide's own parameters (those the model does not use:
the encoder) are trained further on random partial rows (:func:`ppvae.input_masking.hide_cells`)
to maximise the ELBO of the *observed cells only*,

.. math::  \mathcal L_S = \mathbb E_{q(z \mid x_S)}[\log p(x_S \mid z)]
           - \mathrm{KL}(q(z \mid x_S) \,\|\, p(z)) \le \log p(x_S),

whose maximiser over q is the exact posterior :math:`p(z \mid x_S)`. The rows keep a random
share :math:`u \sim U(0, 2r)` of their columns, so full rows (u near 0) stay in the mix.

The model's parameters are untouched, so unconditional synthesis is exactly what it was
(``sample`` never calls the encoder): masked training costs no fidelity by construction, and
importance weighting corrects whatever gap is left between q and the posterior.
"""

from __future__ import annotations

import math

import torch
from pyro import poutine
from pyro.infer import Trace_ELBO

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


def fit_proposal(
    module: TableModel,
    data: TensorTable,
    rate: float,
    epochs: int,
    batch_size: int,
    lr: float,
) -> list[float]:
    """Train the guide-only parameters of ``module`` on partial rows of ``data`` (module
    docstring); returns the mean loss (nats per row) of each epoch."""
    n = len(data)
    batch_size = max(1, min(int(batch_size), n))
    params = guide_only_parameters(module, data[:batch_size])
    if not params:
        return []
    optimizer = torch.optim.Adam(params, lr=lr)
    elbo = Trace_ELBO()
    was_training = module.training
    module.train()
    losses = []
    try:
        for _ in range(int(epochs)):
            order = torch.randperm(n, device=data.x_cont.device)
            total = 0.0
            for start in range(0, n, batch_size):
                batch = hide_cells(module.layout, data[order[start : start + batch_size]], rate)
                loss = elbo.differentiable_loss(module.model, module.guide, batch) / len(batch)
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
