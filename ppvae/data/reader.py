"""Reading a table file as the user meant it (``ppvae fit`` / ``ppvae diagnose``).

- CSV, optionally compressed (``.gz``, ``.bz2``, ``.xz``, ``.zip``, by extension), or
  Parquet (``.parquet``, with pyarrow installed).
- Separator: ``sep`` if given, else sniffed from the first lines among ``, ; TAB |`` (a
  warning says which one was guessed when it is not a comma).
- Encoding: ``encoding`` if given, else UTF-8 (with or without BOM), falling back to latin-1
  with a warning.
- Header: duplicate names are refused (pandas would silently rename the second ``a`` to
  ``a.1``).
- Dates: text columns whose every value looks like a date or timestamp (ISO ``2020-01-31``,
  ``2020-01-31 12:00``, ``2020/01/31``) are parsed; a warning lists them.

Everything that cannot be read is a :class:`~ppvae.data.errors.DataError` naming the fix.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ppvae.data.errors import DataError

SEPARATORS = ",;\t|"
HEAD_BYTES = 64 * 1024
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
DATE_PATTERN = re.compile(
    r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}"
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
DATE_PROBE = 200  # distinct values checked against the date pattern


def _head(path: Path) -> bytes:
    """The first bytes of the (decompressed) file."""
    suffix = path.suffix.lower()
    try:
        if suffix in OPENERS:
            with OPENERS[suffix](path, "rb") as fh:
                return fh.read(HEAD_BYTES)
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                if len(names) != 1:
                    raise DataError(f"{path} must hold exactly one CSV file, it holds {len(names)}")
                with zf.open(names[0]) as fh:
                    return fh.read(HEAD_BYTES)
        with open(path, "rb") as fh:
            return fh.read(HEAD_BYTES)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise DataError(f"{path} could not be read: {exc}") from None


def _looks_binary(head: bytes) -> bool:
    """NUL bytes (outside UTF-16) or many control characters: not a text file."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    control = sum(b < 32 and b not in (9, 10, 13) for b in head)
    return b"\x00" in head or control > 0.05 * len(head)


def _decode(head: bytes, encoding: str | None, path: Path) -> tuple[str, str]:
    """The head as text and the encoding to read the file with."""
    if encoding is not None:
        try:
            return head.decode(encoding, errors="strict"), encoding
        except LookupError:
            raise DataError(f"--encoding {encoding!r} is not an encoding Python knows") from None
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not just a character cut by the head's end
                raise DataError(
                    f"{path} is not valid {encoding} ({exc.reason} at byte {exc.start}); pass "
                    "the file's encoding, e.g. --encoding latin-1"
                ) from None
            return head.decode(encoding, errors="ignore"), encoding
    try:
        return head.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:
            return head.decode("utf-8-sig", errors="ignore"), "utf-8-sig"
    warnings.warn(
        f"{path} is not UTF-8; read as latin-1. Pass --encoding if that is wrong "
        "(e.g. --encoding cp1252)",
        UserWarning,
        stacklevel=3,
    )
    return head.decode("latin-1"), "latin-1"


def _sniff(text: str, path: Path) -> str:
    """The separator of ``text`` (the file's first lines); a comma when unsure."""
    lines = text.splitlines()
    sample = "\n".join(lines[:50] if len(lines) > 1 else lines)
    try:
        sep = csv.Sniffer().sniff(sample, delimiters=SEPARATORS).delimiter
    except csv.Error:
        return ","
    if sep != ",":
        header = lines[0] if lines else ""
        if header.count(sep) == 0:
            return ","
        warnings.warn(
            f"{path}: guessed the separator {sep!r}; pass --sep if that is wrong",
            UserWarning,
            stacklevel=3,
        )
    return sep


def _check_header(text: str, sep: str, path: Path) -> None:
    rows = list(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=sep))
    names = rows[0] if rows else []
    seen, dup = set(), []
    for name in names:
        if name in seen and name not in dup:
            dup.append(name)
        seen.add(name)
    if dup:
        raise DataError(
            f"{path} has duplicate column name(s) {dup} in its header: rename them so each "
            "column has a unique name"
        )


def parse_dates(df: pd.DataFrame, source: str = "the table") -> pd.DataFrame:
    """Parse the text columns of ``df`` whose every value looks like a date (warns which)."""
    parsed = []
    out = df
    for name in df.columns:
        s = df[name]
        if s.dtype != object:
            continue
        values = s.dropna()
        if values.empty or not all(isinstance(v, str) for v in values.iloc[:DATE_PROBE]):
            continue
        probe = values.drop_duplicates().iloc[:DATE_PROBE]
        if not all(DATE_PATTERN.match(v.strip()) for v in probe):
            continue
        aware = any(re.search(r"(Z|[+-]\d{2}:?\d{2})$", v.strip()) for v in probe)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                stamps = pd.to_datetime(s, errors="raise", format="mixed", utc=aware)
            except (ValueError, TypeError, OverflowError):
                continue
        if out is df:
            out = df.copy()
        out[name] = stamps
        parsed.append(name)
    if parsed:
        warnings.warn(
            f"{source}: parsed column(s) {parsed} as dates; convert them back with "
            "df[col].astype(str) if they are labels",
            UserWarning,
            stacklevel=2,
        )
    return out


def read_table(
    path: str | Path,
    sep: str | None = None,
    encoding: str | None = None,
    missing_values: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a CSV (or Parquet) file as described in the module docstring."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {path}")
    if p.suffix.lower() == ".parquet":
        try:
            df = pd.read_parquet(p)
        except ImportError:
            raise DataError("reading .parquet needs pyarrow: pip install pyarrow") from None
        except Exception as exc:  # pyarrow's own errors: not a parquet file, truncated
            raise DataError(f"{path} could not be read as Parquet: {exc}") from None
    else:
        head = _head(p)
        compressed = p.suffix.lower() in (*OPENERS, ".zip")
        if _looks_binary(head):
            raise DataError(f"{path} is not a CSV file (it contains binary data)")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")) and encoding is None:
            encoding = "utf-16"
        text, encoding = _decode(head, encoding, p)
        if sep is None:
            sep = _sniff(text, p)
        if len(sep) != 1:
            raise DataError(f"--sep must be one character, got {sep!r}")
        _check_header(text, sep, p)
        try:
            df = pd.read_csv(
                p,
                sep=sep,
                encoding=encoding,
                na_values=list(missing_values) or None,
                keep_default_na=True,
                compression="infer" if compressed else None,
                low_memory=False,
            )
        except (
            pd.errors.ParserError,
            pd.errors.EmptyDataError,
            UnicodeDecodeError,
            OSError,
            EOFError,
            ValueError,
        ) as exc:
            raise DataError(f"{path} could not be read as a CSV file: {exc}") from None
        if not isinstance(df.index, pd.RangeIndex):
            raise DataError(
                f"{path}: some rows have more fields than the header has names; fix those rows "
                "or the header (is --sep right?)"
            )
        df = parse_dates(df, str(path))
    if df.shape[1] == 0 or len(df) == 0:
        raise DataError(f"{path} holds no data rows")
    return df
