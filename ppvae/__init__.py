"""ppvae: probabilistic-programming variational auto-encoders for tabular data, on Pyro."""

__version__ = "0.1.0"
