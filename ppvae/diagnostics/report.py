"""``diagnose``: collapse, holes and posterior predictive checks of a fitted model, as numbers,
figures and a Markdown report (``write_report``; ``ppvae diagnose`` on the command line).
Definitions and references: ``docs/diagnostics.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ppvae.diagnostics.collapse import Collapse, collapse
from ppvae.diagnostics.holes import Holes, holes
from ppvae.diagnostics.latent import encode
from ppvae.diagnostics.ppc import PPC, posterior_predictive_check

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_ROWS = 2000
MIN_ROWS = 10
HOLE_LIMIT = 0.03  # share of prior draws in holes; 0.01 is ideal
MARGINAL_LIMIT = 0.1  # KS / TV of one column
PAIR_LIMIT = 0.1  # mean |association difference|


@dataclass
class Report:
    collapse: Collapse
    holes: Holes
    ppc: PPC
    info: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    def headline(self) -> dict[str, Any]:
        c, h, p = self.collapse, self.holes, self.ppc
        return {
            "collapse": c.verdict,
            "active units": f"{c.active_units} of {c.latent_dim}",
            "mutual information I(x;z)": f"{c.mutual_information:.2f} nats",
            "KL(q(z) || p(z))": kl_bracket(h),
            "hole fraction": f"{h.hole_fraction:.3f} (0.01 when the prior matches q(z))",
            "MMD(prior, aggregate posterior)": f"{h.mmd:.4f}",
            "mean marginal distance": f"{p.mean_marginal_distance:.3f} (worst: {p.marginals.idxmax()} {p.marginals.max():.3f})",
            "mean pairwise association difference": f"{p.mean_pair_difference:.3f}",
        }

    def next_steps(self) -> list[str]:
        """What to try next, each step grounded in a number this report computed."""
        return next_steps(self)

    def summary(self) -> pd.DataFrame:
        """One row per diagnostic: its value and what it means."""
        c, h, p = self.collapse, self.holes, self.ppc
        rows = [
            ("collapsed dimensions", c.collapsed, c.verdict),
            ("active units", c.active_units, "Cov_x E[z_d|x] > 0.01 (Burda et al. 2016)"),
            (
                "active subspace",
                c.active_subspace,
                "eigenvalues of Cov_x E[z|x] > 0.01 (rotation invariant)",
            ),
            (
                "total KL per row (nats)",
                float(c.kl_per_dim.sum()),
                "sum over dimensions of E_x KL(q(z_d|x) || p(z_d))",
            ),
            (
                "mutual information (nats)",
                c.mutual_information,
                "I(x;z), ELBO surgery (Hoffman & Johnson 2016)",
            ),
            (
                "KL(q(z) || p(z)), low (nats)",
                min(h.kl_aggregate_prior, h.kl_aggregate_prior_upper),
                "aggregate posterior vs prior, held-out mixture: biased low",
            ),
            (
                "KL(q(z) || p(z)), high (nats)",
                max(h.kl_aggregate_prior, h.kl_aggregate_prior_upper),
                "aggregate posterior vs prior, in-sample mixture: biased high",
            ),
            ("MMD", h.mmd, "prior draws vs aggregate-posterior draws"),
            (
                "hole fraction",
                h.hole_fraction,
                "prior draws where q(z) is below its 1st percentile; 0.01 is ideal",
            ),
            (
                "mean marginal distance",
                p.mean_marginal_distance,
                "KS (numeric) / TV (categorical), 0 is ideal",
            ),
            (
                "mean pairwise association difference",
                p.mean_pair_difference,
                "abs. Pearson r, Cramér's V, correlation ratio; 0 is ideal",
            ),
        ]
        return pd.DataFrame(rows, columns=["diagnostic", "value", "meaning"]).set_index(
            "diagnostic"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": self.info,
            "headline": self.headline(),
            "summary": {k: float(v) for k, v in self.summary()["value"].items()},
            "kl_per_dim": self.collapse.kl_per_dim.tolist(),
            "activity": self.collapse.activity.tolist(),
            "kl_closed_form": self.collapse.kl_closed_form,
            "marginal_distance": {str(k): float(v) for k, v in self.ppc.marginals.items()},
            "next_steps": self.next_steps(),
        }

    def __str__(self) -> str:
        """The headline as aligned ``name: value`` lines (``print(report)``)."""
        lines = self.headline()
        info = ", ".join(f"{k} {v}" for k, v in self.info.items() if np.ndim(v) == 0)
        width = max(map(len, lines))
        body = "\n".join(f"  {k.ljust(width)}  {v}" for k, v in lines.items())
        return f"ppvae diagnostics{f' ({info})' if info else ''}\n{body}"

    def __repr__(self) -> str:
        return str(self)

    def plot(self) -> dict[str, Figure]:
        """Figures: ``latent`` (KL and activity per dimension), ``holes`` (PCA of prior vs
        aggregate-posterior draws), ``marginals``, ``pairs`` and ``training``."""
        import matplotlib.pyplot as plt  # on use: importing ppvae must not load pyplot

        figs: dict[str, Figure] = {}
        c = self.collapse
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        dims = np.arange(c.latent_dim)
        axes[0].bar(dims, c.kl_per_dim, color="tab:blue")
        axes[0].set(title="KL per latent dimension", xlabel="dimension", ylabel="nats")
        axes[1].bar(
            dims, c.activity, color=["tab:green" if a > 0.01 else "tab:red" for a in c.activity]
        )
        axes[1].axhline(0.01, color="k", lw=0.8, ls="--")
        axes[1].set(
            title=f"activity Cov_x E[z_d|x] — {c.verdict}", xlabel="dimension", yscale="log"
        )
        fig.tight_layout()
        figs["latent"] = fig

        h = self.holes
        post = h.posterior_z - h.posterior_z.mean(0)
        _, _, vt = np.linalg.svd(post, full_matrices=False)
        basis = vt[:2].T
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.scatter(
            *(h.prior_z - h.posterior_z.mean(0)).dot(basis).T,
            s=4,
            alpha=0.35,
            label="prior draws p(z)",
            color="tab:orange",
        )
        ax.scatter(*post.dot(basis).T, s=4, alpha=0.35, label="encoded rows q(z)", color="tab:blue")
        ax.set(
            title=f"latent space (PCA); hole fraction {h.hole_fraction:.3f}",
            xlabel="PC 1",
            ylabel="PC 2",
        )
        ax.legend(markerscale=3)
        fig.tight_layout()
        figs["holes"] = fig

        p = self.ppc
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(p.marginals) + 1))
        p.marginals.sort_values().plot.barh(ax=ax, color="tab:purple")
        ax.set(title="marginal distance, real vs generated", xlabel="KS / TV (0 is ideal)")
        fig.tight_layout()
        figs["marginals"] = fig

        fig, ax = plt.subplots(figsize=(7, 6))
        im = ax.imshow(
            p.pairs.to_numpy(),
            cmap="magma_r",
            vmin=0,
            vmax=max(0.2, float(p.pairs.to_numpy().max())),
        )
        ax.set_xticks(range(len(p.pairs)), p.pairs.columns, rotation=90)
        ax.set_yticks(range(len(p.pairs)), p.pairs.index)
        ax.set_title("|association difference|, real vs generated")
        fig.colorbar(im, ax=ax, shrink=0.8)
        fig.tight_layout()
        figs["pairs"] = fig

        if len(self.history):
            fig, ax = plt.subplots(figsize=(6, 3))
            cols = [k for k in ("train_loss", "val_loss") if k in self.history]
            self.history.plot(x="epoch", y=cols, ax=ax)
            ax.set(title="training", ylabel="negative ELBO per row (nats)")
            fig.tight_layout()
            figs["training"] = fig
        return figs

    def to_markdown(self, figures: dict[str, str] | None = None) -> str:
        lines = ["# ppvae diagnostics", ""]
        for k, v in self.info.items():
            lines.append(f"- {k}: {v}")
        lines += ["", "## Headline", ""]
        lines += [f"- **{k}**: {v}" for k, v in self.headline().items()]
        lines += ["", "## All diagnostics", "", "| diagnostic | value | meaning |", "|---|---|---|"]
        for name, row in self.summary().iterrows():
            lines.append(f"| {name} | {row['value']:.4g} | {row['meaning']} |")
        if not self.collapse.kl_closed_form:
            lines += [
                "",
                "KL per dimension is against a Gaussian with the prior's marginal moments (the prior is not a standard normal).",
            ]
        lines += ["", "## Per-column marginal distance", "", "| column | distance |", "|---|---|"]
        lines += [
            f"| {k} | {v:.3f} |" for k, v in self.ppc.marginals.sort_values(ascending=False).items()
        ]
        for name, path in (figures or {}).items():
            lines += ["", f"### {name}", "", f"![{name}]({path})"]
        lines += ["", "## What to try next", ""]
        lines += [f"- {step}" for step in self.next_steps()]
        lines += ["", "Definitions and references: docs/diagnostics.md in the ppvae repository."]
        return "\n".join(lines) + "\n"


def kl_bracket(h: Holes) -> str:
    """KL(q(z) || p(z)) as ``low to high`` nats, low <= high always.

    Both ends are Monte Carlo estimates on different draws, so the held-out (biased-low)
    estimate can come out above the in-sample (biased-high) one; then the bias is smaller
    than the noise, the two agree, and the bracket is stated as such."""
    low, high = h.kl_aggregate_prior, h.kl_aggregate_prior_upper
    if low <= high:
        return f"{low:.2f} to {high:.2f} nats (held-out estimate biased low, in-sample biased high)"
    return (
        f"{high:.2f} to {low:.2f} nats (the biased-low and biased-high estimates crossed: they "
        f"agree within Monte Carlo noise, KL ≈ {(low + high) / 2:.2f})"
    )


def next_steps(report: Report) -> list[str]:
    """Advice from the report's numbers (thresholds: the 'meaning' column of ``summary``)."""
    c, h, p = report.collapse, report.holes, report.ppc
    steps = []
    if c.collapsed and c.collapsed >= c.latent_dim / 2:
        steps.append(
            f"{c.verdict}: try objective 'free_bits' or 'geco' to keep dimensions in use, or a "
            f"smaller latent_dim (about {max(c.active_units, 2)})"
        )
    elif c.collapsed:
        steps.append(
            f"{c.verdict}: unused dimensions cost little; latent_dim={max(c.active_units, 2)} "
            "would fit the same"
        )
    if h.hole_fraction > HOLE_LIMIT:
        steps.append(
            f"hole fraction {h.hole_fraction:.3f} (0.01 when the prior matches q(z)): prior "
            "mass where no row lives; try prior 'vamp' or 'mixture', or "
            "vae.refit_prior('aggregate') without retraining"
        )
    worst = p.marginals.idxmax()
    if p.marginals.max() > MARGINAL_LIMIT:
        steps.append(
            f"column {worst!r} has marginal distance {p.marginals.max():.3f}: check its kind "
            f"(kinds={{{str(worst)!r}: ...}}) or try continuous='mode_specific'"
        )
    if p.mean_pair_difference > PAIR_LIMIT:
        steps.append(
            f"mean pairwise association difference {p.mean_pair_difference:.3f}: the decoder "
            "misses dependencies; train longer or widen hidden"
        )
    hist = report.history
    if len(hist) > 2 and "val_loss" in hist and int(hist["val_loss"].idxmin()) >= len(hist) - 2:
        steps.append(
            f"the validation loss was still falling at the last epoch ({len(hist)}): raise epochs"
        )
    if not steps:
        steps.append(
            f"no diagnostic crosses its limit ({c.verdict}, hole fraction "
            f"{h.hole_fraction:.3f}, worst marginal distance {p.marginals.max():.3f}): compare "
            "alternatives on held-out rows with ppvae.compare"
        )
    return steps


def diagnose(vae, df: pd.DataFrame, max_rows: int = MAX_ROWS, seed: int = 0) -> Report:
    """Collapse, holes and posterior predictive checks of ``vae`` on (a subsample of) ``df``."""
    vae._check_fitted()
    if not isinstance(df, pd.DataFrame) or len(df) < MIN_ROWS:
        from ppvae.data.errors import DataError

        raise DataError(
            f"diagnose needs at least {MIN_ROWS} rows to estimate covariances and densities, "
            f"got {len(df) if isinstance(df, pd.DataFrame) else type(df).__name__}: pass more "
            "rows (e.g. the training table)"
        )
    rows = df.sample(min(max_rows, len(df)), random_state=seed)
    enc = encode(vae, rows, max_rows=max_rows, seed=seed)
    real = vae.transformer_.prepare(rows)
    generated = vae.transformer_.prepare(vae.sample(len(rows), seed=seed))  # as `real`
    info = {
        "rows diagnosed": len(rows),
        "latent_dim": vae.latent_dim,
        "prior": json.dumps(vae.model_.prior.config()),
        "objective": json.dumps(vae.objective_.config()),
        "epochs": len(vae.history_),
    }
    return Report(
        collapse=collapse(vae, enc),
        holes=holes(vae, enc, seed=seed),
        ppc=posterior_predictive_check(*_modelled(vae, real, generated), seed=seed),
        info=info,
        history=vae.history_,
    )


def _modelled(vae, *frames: pd.DataFrame) -> list[pd.DataFrame]:
    """The frames without generated identifier columns (fresh by design, nothing to check)."""
    ids = [c.name for c in vae.transformer_.schema_.columns if c.kind == "identifier"]
    return [f.drop(columns=ids) for f in frames]


def write_report(
    vae,
    df: pd.DataFrame,
    out_dir: str | Path,
    force: bool = False,
    max_rows: int = MAX_ROWS,
    synthetic: pd.DataFrame | None = None,
) -> Path:
    """Write ``report.md``, the figures (PNG) and ``report.json`` to ``out_dir``, atomically;
    with ``synthetic`` rows, also ``ppvae.evaluate(df, synthetic)`` under ``evaluate/``."""
    from ppvae.outputs import atomic_dir, check_target, save_figures

    target = check_target(out_dir, "report", force)
    report = diagnose(vae, df, max_rows=max_rows)
    with atomic_dir(target, "report", force) as tmp:
        paths = save_figures(report.plot(), tmp)
        markdown = report.to_markdown(paths)
        if synthetic is not None:
            from ppvae.synthetic_report import evaluate

            found = evaluate(df, synthetic)
            found.write(tmp / "evaluate")
            markdown += (
                f"\n## What gives synthetic rows away\n\n```\n{found}\n```\n\n"
                "Full report: [evaluate/report.md](evaluate/report.md)\n"
            )
        (tmp / "report.md").write_text(markdown, encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return target / "report.md"
