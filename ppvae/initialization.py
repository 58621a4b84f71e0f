"""How a VAE's weights start before SVI: a registry of initialization strategies.

``TabularVAE(init=...)`` picks one by name or ``{"name": ..., **options}``:

- ``random`` (default): PyTorch's random initialisation of every layer, seeded by ``seed``.
- ``autoencoder``: ``epochs`` epochs of KL-free training first (a beta-VAE with
  :math:`\beta = 0`, i.e. a plain auto-encoder whose code is a draw of q(z|x) with no pull
  toward the prior), then the ELBO (or the chosen objective) from those weights with a fresh
  optimiser. The encoder has learned to put information in z before the KL term can shut
  dimensions down, the remedy for posterior collapse of Bowman et al. (2016) taken to its
  limit as a warm start (cf. Li et al. 2019, "A surprisingly effective fix for deep latent
  variable modeling of text").

A strategy is a callable object registered with ``@initializations.register(name)``:
``strategy(module, train_data, *, batch_size, lr, generator)`` changes the module's weights
in place, using only the training rows and the given torch generator (so a seed fixes it).
"""

from __future__ import annotations

from typing import Any

import torch

from ppvae.data.layout import TensorTable
from ppvae.registry import Registry


class Initialization:
    """Base class: a strategy that sets a model's weights before training."""

    registry_name: str = ""

    def __call__(
        self,
        module: torch.nn.Module,
        train_data: TensorTable,
        *,
        batch_size: int,
        lr: float,
        generator: torch.Generator,
    ) -> None:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The spec that rebuilds this strategy: ``{"name": ..., **options}``."""
        return {"name": type(self).registry_name, **vars(self)}


initializations: Registry[Initialization] = Registry("initialization", base=Initialization)


@initializations.register("random")
class RandomInit(Initialization):
    """PyTorch's default random initialisation, as the module was built."""

    def __call__(self, module, train_data, *, batch_size, lr, generator) -> None:
        return None


@initializations.register("autoencoder")
class AutoencoderInit(Initialization):
    """``epochs`` epochs of the KL-free bound (beta = 0) before the real objective."""

    def __init__(self, epochs: int = 10):
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(
                f"autoencoder: epochs must be a positive integer (KL-free epochs before the "
                f"objective), got {epochs!r}"
            )
        self.epochs = epochs

    def __call__(self, module, train_data, *, batch_size, lr, generator) -> None:
        from ppvae.objectives import objectives
        from ppvae.training import train

        train(
            module,
            objectives.build({"name": "beta", "beta": 0.0}),
            train_data,
            None,
            epochs=self.epochs,
            batch_size=batch_size,
            lr=lr,
            patience=None,
            generator=generator,
            verbose=False,
        )
