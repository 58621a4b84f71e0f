"""Property-based tests (hypothesis): any small mixed-type table either fits, saves, loads and
samples with the same columns and dtypes, or is refused with ppvae's own documented error
(``DataError``, ``ParameterError``, ``TrainingError``) -- never a raw exception from pandas,
numpy or torch. Seeded (``derandomize=True``) and fast (tiny frames, one epoch).

Each table that once raised a raw exception is kept as an ``@example``.
"""

from __future__ import annotations

import datetime
import decimal
import tempfile
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import ppvae
from ppvae.data.errors import DataError
from ppvae.params import CHECKS, ParameterError
from ppvae.training import TrainingError

DOCUMENTED = (DataError, ParameterError, TrainingError)
TINY = {"epochs": 1, "hidden": (4,), "latent_dim": 2, "batch_size": 8, "verbose": False}
UTC = datetime.timezone.utc
PLUS2 = datetime.timezone(datetime.timedelta(hours=2))
DATES = {"min_value": datetime.datetime(1700, 1, 1), "max_value": datetime.datetime(2200, 1, 1)}


def _cells(n: int) -> st.SearchStrategy:
    """One column of ``n`` cells, as (values, dtype or None)."""
    ints = st.integers(-(2**63), 2**63 - 1)
    return st.one_of(
        st.tuples(st.lists(ints, min_size=n, max_size=n), st.just("int64")),
        st.tuples(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n), st.just("uint64")),
        st.tuples(st.lists(st.integers(0, 255), min_size=n, max_size=n), st.just("uint8")),
        st.tuples(
            st.lists(st.integers(-5, 5) | st.none(), min_size=n, max_size=n), st.just("Int64")
        ),
        st.tuples(st.lists(st.floats(), min_size=n, max_size=n), st.just("float64")),
        st.tuples(st.lists(st.floats(width=32), min_size=n, max_size=n), st.just("float32")),
        st.tuples(st.lists(st.text(max_size=3) | st.none(), min_size=n, max_size=n), st.just(None)),
        st.tuples(st.lists(st.text(max_size=2), min_size=n, max_size=n), st.just("string")),
        st.tuples(st.lists(st.text(max_size=2), min_size=n, max_size=n), st.just("category")),
        st.tuples(st.lists(st.booleans(), min_size=n, max_size=n), st.just("bool")),
        st.tuples(st.lists(st.booleans() | st.none(), min_size=n, max_size=n), st.just("boolean")),
        st.tuples(
            st.lists(st.datetimes(**DATES) | st.none(), min_size=n, max_size=n), st.just(None)
        ),
        st.tuples(
            st.lists(
                st.datetimes(**DATES, timezones=st.sampled_from([UTC, PLUS2])),
                min_size=n,
                max_size=n,
            ),
            st.just(None),
        ),
        st.tuples(
            st.lists(
                st.timedeltas(max_value=datetime.timedelta(days=10**4)), min_size=n, max_size=n
            ),
            st.just(None),
        ),
        st.tuples(
            st.lists(st.decimals(allow_nan=False, places=2), min_size=n, max_size=n), st.just(None)
        ),
        st.tuples(
            st.lists(
                st.integers(0, 600).map(lambda m: pd.Period("2000-01", "M") + m),
                min_size=n,
                max_size=n,
            ),
            st.just("period[M]"),
        ),
        st.tuples(
            st.lists(
                st.one_of(
                    st.binary(max_size=2),
                    st.tuples(st.integers(0, 2)),
                    st.lists(st.integers(0, 2), max_size=2),
                    st.complex_numbers(allow_nan=False, allow_infinity=False),
                    st.text(max_size=2),
                    st.integers(0, 3),
                ),
                min_size=n,
                max_size=n,
            ),
            st.just(None),
        ),
    )


@st.composite
def tables(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 14))
    names = draw(st.lists(st.text(max_size=4), min_size=1, max_size=3, unique=True))
    data = {}
    for name in names:
        values, dtype = draw(_cells(n))
        data[name] = column(values, dtype)
    return pd.DataFrame(data)


def column(values: list, dtype: str | None) -> pd.Series:
    if dtype in ("uint64", "int64", "uint8"):
        return pd.Series(np.array(values, dtype=dtype))
    if dtype == "period[M]":
        return pd.Series(pd.PeriodIndex(values))
    if dtype is None:
        return pd.Series(values)
    return pd.Series(values, dtype=dtype)


def expected_dtype(s: pd.Series) -> str:
    """The dtype a sampled column should have (docs/input.md: conversions)."""
    observed = [v for v in s if not pd.isna(v)] if s.dtype == object else []
    if observed and all(isinstance(v, decimal.Decimal) for v in observed):
        return "float64"
    if observed and all(isinstance(v, (datetime.datetime, datetime.date)) for v in observed):
        return "datetime64"
    return str(s.dtype)


def check_round_trip(df: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            vae = ppvae.TabularVAE(**TINY).fit(df)
        except DOCUMENTED as exc:
            assert str(exc)
            event(f"refused: {type(exc).__name__}")
            return
        event("fitted")
        synth = vae.sample(6, seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            loaded = ppvae.load(vae.save(f"{tmp}/m"))
            again = loaded.sample(6, seed=0)
    assert list(synth.columns) == list(df.columns) == list(again.columns)
    for name in df.columns:
        want = expected_dtype(df[name])
        for got in (str(synth[name].dtype), str(again[name].dtype)):
            assert got.startswith(want), f"{name!r}: {df[name].dtype} -> {got}"
    pd.testing.assert_frame_equal(synth, again)


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(tables())
# the types of issue 19, and tables that once raised a raw exception
@example(pd.DataFrame({"t": pd.date_range("2020", periods=12, freq="h", tz="UTC")}))
@example(pd.DataFrame({"d": pd.to_timedelta(np.arange(12), unit="s")}))
@example(pd.DataFrame({"p": pd.period_range("2020-01", periods=12, freq="M")}))
@example(pd.DataFrame({"x": [decimal.Decimal(i) / 3 for i in range(12)]}))
@example(pd.DataFrame({"b": [b"a", b"b"] * 6}))
@example(pd.DataFrame({"t": [(1, 2), (3,)] * 6}))
@example(pd.DataFrame({"l": [[1], {"a": 1}] * 6}))
@example(pd.DataFrame({"c": np.arange(12) + 1j}))
@example(pd.DataFrame({"u": np.arange(12, dtype=np.uint64) + np.uint64(2**63)}))
@example(pd.DataFrame({"t": pd.Series(list(pd.date_range("2020", periods=12)), dtype=object)}))
@example(pd.DataFrame({"i": pd.cut(np.arange(12), 3)}))
@example(pd.DataFrame({"ø": [1.0]}))
def test_any_small_table_round_trips_or_is_refused_clearly(df):
    check_round_trip(df)


FAST = settings(max_examples=100, derandomize=True, deadline=None)
SEPS = st.sampled_from([",", ";", "\t", "|"])
CELL = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6)


@FAST
@given(
    st.lists(st.lists(CELL, min_size=1, max_size=4), min_size=1, max_size=6),
    SEPS,
    st.sampled_from(["utf-8", "latin-1", "utf-16"]),
)
@example([["a", "a"], ["1", "2"]], ",", "utf-8")  # duplicate header
@example([["x"], ["\x00"]], ",", "utf-8")  # a NUL byte
def test_any_small_text_file_reads_or_is_refused_clearly(rows, sep, encoding):
    import csv
    import io
    import os

    from ppvae.data.reader import read_table

    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep).writerows(rows)
    try:
        raw = buffer.getvalue().encode(encoding)
    except UnicodeEncodeError:
        raw = buffer.getvalue().encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.csv")
        with open(path, "wb") as fh:
            fh.write(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                df = read_table(path)
            except DataError as exc:
                assert str(exc)
                return
    assert isinstance(df, pd.DataFrame) and df.shape[1] >= 1 and len(df) >= 1


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.integers(-3, 300) | st.text(max_size=2), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-2, 5) | st.text(max_size=3), max_size=2),
)


@FAST
@given(st.sampled_from(sorted(CHECKS)), VALUES)
def test_any_parameter_value_is_accepted_or_named(name, value):
    from ppvae.params import check_params

    try:
        check_params({name: value})
    except ParameterError as exc:
        assert name in str(exc)
