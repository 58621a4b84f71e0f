"""ppvae: probabilistic-programming variational auto-encoders for tabular data, on Pyro."""

from ppvae import datasets, objectives, priors  # noqa: E402
from ppvae.data import DataError, TableTransformer  # noqa: E402
from ppvae.diagnostics import compare, diagnose, fit_seeds, to_inference_data  # noqa: E402
from ppvae.initialization import initializations  # noqa: E402
from ppvae.likelihoods import likelihoods, slot_groups  # noqa: E402
from ppvae.model import TableModel, TabularModel, models  # noqa: E402
from ppvae.model_conformance import check_model  # noqa: E402
from ppvae.registry import SpecError  # noqa: E402
from ppvae.synthetic_report import evaluate  # noqa: E402
from ppvae.vae import TabularVAE, load  # noqa: E402
from ppvae.version import __version__  # noqa: E402

__all__ = [
    "DataError",
    "SpecError",
    "TableTransformer",
    "TableModel",
    "TabularModel",
    "__version__",
    "TabularVAE",
    "compare",
    "datasets",
    "diagnose",
    "evaluate",
    "fit_seeds",
    "initializations",
    "likelihoods",
    "check_model",
    "load",
    "models",
    "objectives",
    "priors",
    "slot_groups",
    "to_inference_data",
]
