"""The error raised for tables ppvae cannot model as given."""


class DataError(ValueError):
    """The input table has a problem; the message names the column and what to do."""
