r"""Stop a large table's ELBO fit early once its latent code has collapsed, so that the
free-bits refit (``ppvae.budget.refit_objective``) does not wait for the whole first fit.

From 5,000 training rows ``objective="auto"`` is the ELBO, and a fit that ends with no active
latent unit on a table with a strong association is refitted once with free bits. Collapse
under the ELBO sets in early and stays: on the four shared tables' validation splits (ELBO,
active units :math:`\operatorname{Var}_x(\mathbb{E}_q[z_d \mid x]) > 0.01` on the validation
rows every 5 epochs, 60 epochs), Adult had no active unit from epoch 5 on (largest activity
0.002-0.006) and Shoppers none from epoch 15 on (one at epoch 10, 0.013), while Default and
diamonds kept one unit from epoch 5 on, with activity 0.87-1.15 at every check. Until
2026-11-29 the first fit ran to its early stop (Adult: about 90 epochs) before the refit, and
a refitted fit cost both (Adult 186-221 s on the bench).

So after ``WATCH_EPOCHS`` epochs :func:`collapse_watch` measures the active units as the
post-fit check does (``ppvae.diagnostics.health``), on the validation rows, and raises
:class:`CollapsedEarly` when there is none; ``TabularVAE.fit`` then refits at once. The
measurement draws from a forked random stream and leaves the module's mode as it was, so a
fit the watch lets through is exactly the fit without it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ppvae.data.layout import TensorTable
from ppvae.diagnostics.collapse import ACTIVE_THRESHOLD, activity

WATCH_EPOCHS = 20
MAX_ROWS = 2000  # rows encoded for the measurement, as the post-fit check


class CollapsedEarly(Exception):
    """Raised from a fit whose latent code had no active unit after ``epochs`` epochs."""

    def __init__(self, epochs: int):
        super().__init__(f"no active latent unit after {epochs} epochs")
        self.epochs = epochs


@torch.no_grad()
def active_units(module: torch.nn.Module, rows: TensorTable) -> int:
    """Latent dimensions whose posterior mean varies across ``rows`` by more than
    ``ACTIVE_THRESHOLD`` (Burda et al. 2016), measured without touching torch's random
    stream or the module's train/eval mode."""
    device = rows.x_cont.device
    devices = [device.index or 0] if device.type == "cuda" else []
    was_training = module.training
    module.eval()
    try:
        with torch.random.fork_rng(devices=devices):
            q, _ = module.posterior(rows[:MAX_ROWS])
    finally:
        module.train(was_training)
    return int((activity(q.mean) > ACTIVE_THRESHOLD).sum())


def collapse_watch(
    module: torch.nn.Module, rows: TensorTable, epochs: int = WATCH_EPOCHS
) -> Callable[[int, dict[str, float]], None]:
    """An ``on_epoch_end`` for ``ppvae.training.train`` that raises :class:`CollapsedEarly`
    after the ``epochs``-th epoch if ``module`` has no active latent unit on ``rows``."""

    def on_epoch_end(epoch: int, row: dict[str, float]) -> None:
        if epoch + 1 == epochs and active_units(module, rows) == 0:
            raise CollapsedEarly(epochs)

    return on_epoch_end
