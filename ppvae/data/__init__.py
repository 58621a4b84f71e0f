"""Tables in, tensors out: schema inference and reversible column transforms."""

from ppvae.data.errors import DataError
from ppvae.data.layout import Layout, TensorTable
from ppvae.data.schema import Column, Schema, infer_schema
from ppvae.data.transformer import TableTransformer

__all__ = [
    "Column",
    "DataError",
    "Layout",
    "Schema",
    "TableTransformer",
    "TensorTable",
    "infer_schema",
]
