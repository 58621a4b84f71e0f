"""The diagnose report: the KL bracket reads low <= high, and it ends with what to try next,
grounded in its own numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppvae.diagnostics.collapse import Collapse
from ppvae.diagnostics.holes import Holes
from ppvae.diagnostics.ppc import PPC
from ppvae.diagnostics.report import Report


def make_report(
    active: int = 16,
    low: float = 0.10,
    high: float = 0.30,
    hole: float = 0.01,
    worst: float = 0.02,
    pair: float = 0.02,
    val_loss=(3.0, 2.0, 2.5, 2.6),
):
    d = 16
    activity = np.r_[np.ones(active), np.zeros(d - active)]
    collapse = Collapse(
        kl_per_dim=activity.copy(),
        activity=activity,
        active_units=active,
        active_subspace=active,
        mutual_information=1.0,
        kl_closed_form=True,
    )
    holes = Holes(
        kl_aggregate_prior=low,
        kl_aggregate_prior_upper=high,
        mmd=0.0,
        hole_fraction=hole,
        prior_z=np.zeros((2, d)),
        posterior_z=np.zeros((2, d)),
    )
    cols = ["age", "income"]
    ppc = PPC(
        marginals=pd.Series([0.01, worst], index=cols),
        pairs=pd.DataFrame([[0.0, pair], [pair, 0.0]], index=cols, columns=cols),
    )
    history = pd.DataFrame({"epoch": range(len(val_loss)), "val_loss": list(val_loss)})
    return Report(collapse=collapse, holes=holes, ppc=ppc, history=history)


def test_kl_bracket_is_ordered_and_explained_when_estimates_cross():
    ordered = make_report(low=0.10, high=0.30)
    assert ordered.headline()["KL(q(z) || p(z))"].startswith("0.10 to 0.30 nats")
    crossed = make_report(low=0.16, high=0.15)
    text = crossed.headline()["KL(q(z) || p(z))"]
    assert text.startswith("0.15 to 0.16 nats") and "agree within Monte Carlo noise" in text
    summary = crossed.summary()["value"]
    assert summary["KL(q(z) || p(z)), low (nats)"] <= summary["KL(q(z) || p(z)), high (nats)"]


def test_next_steps_are_grounded_in_the_numbers():
    steps = make_report(active=4, hole=0.08, worst=0.23, pair=0.15, val_loss=(3, 2, 1)).next_steps()
    text = "\n".join(steps)
    assert "12 of 16 dimensions collapsed: try objective 'free_bits' or 'geco'" in text
    assert "hole fraction 0.080" in text and "vamp" in text
    assert "column 'income' has marginal distance 0.230" in text
    assert "0.150" in text and "still falling at the last epoch (3)" in text
    healthy = make_report().next_steps()
    assert len(healthy) == 1 and healthy[0].startswith("no diagnostic crosses its limit")
    markdown = make_report(active=4).to_markdown()
    assert markdown.split("## What to try next")[1].strip().startswith("- 12 of 16")
