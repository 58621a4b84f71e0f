"""ppvae: probabilistic-programming variational auto-encoders for tabular data, on Pyro."""

__version__ = "0.1.0"

from ppvae import datasets, objectives, priors  # noqa: E402
from ppvae.data import DataError, TableTransformer  # noqa: E402
from ppvae.diagnostics import compare, diagnose, fit_seeds, to_inference_data  # noqa: E402
from ppvae.likelihoods import likelihoods  # noqa: E402
from ppvae.model import TabularModel, models  # noqa: E402
from ppvae.persistence import load  # noqa: E402
from ppvae.registry import SpecError  # noqa: E402
from ppvae.synthetic_report import evaluate  # noqa: E402
from ppvae.vae import TabularVAE  # noqa: E402

__all__ = [
    "DataError",
    "SpecError",
    "TableTransformer",
    "TabularModel",
    "TabularVAE",
    "compare",
    "datasets",
    "diagnose",
    "evaluate",
    "fit_seeds",
    "likelihoods",
    "load",
    "models",
    "objectives",
    "priors",
    "to_inference_data",
]
