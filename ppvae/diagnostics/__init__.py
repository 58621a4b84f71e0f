"""Diagnostics of fitted models: collapse, holes, posterior predictive checks, seeds.

>>> idata = ppvae.to_inference_data(vae, df, num_samples=20)
>>> report = ppvae.diagnose(vae, df); report.summary(); report.plot()
>>> fits = ppvae.fit_seeds("default", train, seeds=range(5)); ppvae.compare(fits, heldout)
"""

from ppvae.diagnostics.elpd import Comparison, compare
from ppvae.diagnostics.inference_data import to_inference_data
from ppvae.diagnostics.report import Report, diagnose, write_report
from ppvae.diagnostics.seeds import SeedFits, fit_seeds

__all__ = [
    "Comparison",
    "Report",
    "SeedFits",
    "compare",
    "diagnose",
    "fit_seeds",
    "to_inference_data",
    "write_report",
]
