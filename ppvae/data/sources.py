"""A table too large for memory, as *pieces* that each read as a sequence of blocks.

- Parquet files (a path, a directory of ``*.parquet`` files or a list of paths): one piece
  per row group, read in record batches of ``block_rows`` rows with pyarrow. The files'
  schemas are checked against the first file's when opened: a column missing or added in
  one file, or a type that changes (other than between integer and float), is a
  :class:`~ppvae.data.errors.DataError` naming the column and both files.
- A CSV file (optionally compressed): one piece, read in chunks of ``block_rows`` rows with
  the separator and encoding :func:`ppvae.data.reader.read_table` would use; text columns
  of dates are parsed as ``read_table`` parses them.
- An iterable of DataFrames, which may be a one-shot generator: spooled once into a
  temporary Parquet directory (removed by :meth:`Source.close`), then read as above.

A piece's blocks carry global row numbers as their index (the piece's first row number
plus the row's position), which is what the row-hash split keys on
(:mod:`ppvae.data.split`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from ppvae.data.errors import DataError

BLOCK_ROWS = 65_536
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class Piece:
    """Part of the table: ``read(block_rows)`` yields its rows as frames indexed by global
    row number; ``label`` names it (file and row group)."""

    read: Callable[[int], Iterator[pd.DataFrame]]
    label: str


@dataclass
class Source:
    """A table as pieces; ``digest`` identifies its files (names, sizes, times)."""

    pieces: list[Piece]
    label: str
    digest: bytes
    temporary: list[Path] = field(default_factory=list)

    def blocks(self, order: Sequence[int] | None = None, block_rows: int = BLOCK_ROWS):
        """Every block of the pieces in ``order`` (default: file order)."""
        for i in range(len(self.pieces)) if order is None else order:
            yield from self.pieces[i].read(block_rows)

    def close(self) -> None:
        for path in self.temporary:
            shutil.rmtree(path, ignore_errors=True)
        self.temporary.clear()


def is_stream(data: Any) -> bool:
    """Whether ``fit`` should stream ``data``: a path, a list of paths, or an iterable of
    DataFrames (a DataFrame or array is fitted in memory)."""
    if isinstance(data, (str, os.PathLike)):
        return True
    if isinstance(data, (pd.DataFrame, dict)) or hasattr(data, "__array__"):
        return False
    if hasattr(data, "toarray") or hasattr(data, "tocsr"):  # sparse: refused in memory
        return False
    if isinstance(data, (list, tuple)):  # rows of values (array-like) stay in memory
        return bool(data) and all(isinstance(x, (str, os.PathLike, pd.DataFrame)) for x in data)
    return isinstance(data, Iterable)


def open_source(
    data: Any,
    *,
    sep: str | None = None,
    encoding: str | None = None,
    missing_values: Sequence[Any] = (),
) -> Source:
    """The pieces of ``data`` (see the module docstring)."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in PARQUET_SUFFIXES)
            if not files:
                raise DataError(f"{path} is a directory without .parquet files")
            return _parquet(files)
        if not path.is_file():
            raise DataError(f"no such file: {path}")
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return _parquet([path])
        return _csv(path, sep, encoding, missing_values)
    items = list(data) if isinstance(data, (list, tuple)) else None
    if items and all(isinstance(p, (str, os.PathLike)) for p in items):
        return _parquet([Path(p) for p in items])
    return _spool(items if items is not None else data)


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DataError(
            "streaming Parquet or frames needs pyarrow: pip install 'ppvae[parquet]'"
        ) from None
    return pyarrow


def _digest(paths: Iterable[Path]) -> bytes:
    h = hashlib.sha256()
    for p in paths:
        stat = p.stat()
        h.update(f"{p.resolve()}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return h.digest()


def _compatible(a: Any, b: Any) -> bool:
    """Arrow types a column may take in different files: equal, both numbers, or a column
    that is entirely null in one of them."""
    pa = _pyarrow()
    t = pa.types
    number = lambda x: t.is_integer(x) or t.is_floating(x)  # noqa: E731
    return a == b or t.is_null(a) or t.is_null(b) or (number(a) and number(b))


def check_schema(reference: Any, schema: Any, first: str, other: str) -> None:
    """Refuse ``schema`` (of ``other``) unless it has ``reference``'s columns (of ``first``)
    with compatible types."""
    names, ref_names = list(schema.names), list(reference.names)
    missing = [c for c in ref_names if c not in names]
    extra = [c for c in names if c not in ref_names]
    if missing or extra:
        parts = [f"lacks column(s) {missing}"] if missing else []
        parts += [f"has column(s) {extra} that {first} has not"] if extra else []
        raise DataError(
            f"{other} {' and '.join(parts)}: every file of a table needs the same columns; "
            "add the missing ones (empty if need be) or drop the extra ones"
        )
    for name in ref_names:
        a, b = reference.field(name).type, schema.field(name).type
        if not _compatible(a, b):
            raise DataError(
                f"column {name!r} is {a} in {first} but {b} in {other}: the schema changes "
                f"between files; write every file with the same type for {name!r}"
            )


def _parquet(paths: list[Path]) -> Source:
    pa = _pyarrow()
    pieces, reference, first, start = [], None, "", 0
    for path in paths:
        if not path.is_file():
            raise DataError(f"no such file: {path}")
        try:
            with pa.parquet.ParquetFile(path) as file:
                schema, meta = file.schema_arrow, file.metadata
        except Exception as exc:  # pyarrow's own errors: not a parquet file, truncated
            raise DataError(f"{path} could not be read as Parquet: {exc}") from None
        if reference is None:
            reference, first = schema, str(path)
        check_schema(reference, schema, first, str(path))
        for group in range(meta.num_row_groups):
            rows = meta.row_group(group).num_rows
            read = partial(_read_row_group, path, group, start, reference.names)
            pieces.append(Piece(read, f"{path}#{group}"))
            start += rows
    if start == 0:
        raise DataError(f"{paths[0]} holds no data rows")
    return Source(
        pieces, str(paths[0]) if len(paths) == 1 else f"{len(paths)} files", _digest(paths)
    )


def _read_row_group(
    path: Path, group: int, start: int, columns: list[str], block_rows: int
) -> Iterator[pd.DataFrame]:
    pa = _pyarrow()
    try:
        with pa.parquet.ParquetFile(path) as file:
            batches = file.iter_batches(batch_size=block_rows, row_groups=[group], columns=columns)
            for batch in batches:
                frame = batch.to_pandas()
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path} (row group {group}) could not be read: {exc}") from None


def _csv(path: Path, sep: str | None, encoding: str | None, missing: Sequence[Any]) -> Source:
    from ppvae.data.reader import OPENERS, _check_header, _decode, _head, _looks_binary, _sniff

    head = _head(path)
    if _looks_binary(head):
        raise DataError(f"{path} is not a CSV file (it contains binary data)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and encoding is None:
        encoding = "utf-16"
    text, encoding = _decode(head, encoding, path)
    sep = _sniff(text, path) if sep is None else sep
    if len(sep) != 1:
        raise DataError(f"--sep must be one character, got {sep!r}")
    _check_header(text, sep, path)
    compressed = path.suffix.lower() in (*OPENERS, ".zip")
    options = {
        "sep": sep,
        "encoding": encoding,
        "na_values": [str(m) for m in missing] or None,
        "compression": "infer" if compressed else None,
        "low_memory": False,
    }
    read = partial(_read_csv, path, options)
    return Source([Piece(read, str(path))], str(path), _digest([path]))


def _read_csv(path: Path, options: dict[str, Any], block_rows: int) -> Iterator[pd.DataFrame]:
    try:
        with pd.read_csv(path, chunksize=block_rows, **options) as chunks:
            yield from _csv_chunks(path, chunks)
    except DataError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path} could not be read as a CSV file: {exc}") from None


def _csv_chunks(path: Path, chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Chunks with parsed dates, indexed by row number."""
    from ppvae.data.reader import parse_dates

    start = 0
    for chunk in chunks:
        if not isinstance(chunk.index, pd.RangeIndex):
            raise DataError(
                f"{path}: some rows have more fields than the header has names; fix those "
                "rows or the header (is --sep right?)"
            )
        with warnings.catch_warnings():  # the in-memory reader warns which; once is enough
            if start:
                warnings.simplefilter("ignore", UserWarning)
            chunk = parse_dates(chunk, str(path))
        chunk.index = pd.RangeIndex(start, start + len(chunk))
        start += len(chunk)
        yield chunk


def _spool(frames: Iterable[Any]) -> Source:
    """Write an iterable of DataFrames once to a temporary Parquet directory, one file per
    run of frames with the same schema, and read that."""
    pa = _pyarrow()
    folder = Path(tempfile.mkdtemp(prefix="ppvae-spool-"))
    files: list[Path] = []
    writer = schema = None
    try:
        for i, frame in enumerate(frames):
            if not isinstance(frame, pd.DataFrame):
                raise DataError(
                    f"item {i} of the iterable is a {type(frame).__name__}, not a DataFrame: "
                    "fit takes a DataFrame, a file path, or an iterable of DataFrames"
                )
            if not len(frame):
                continue
            try:
                table = pa.Table.from_pandas(frame, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise DataError(
                    f"frame {i} cannot be streamed ({exc}); give each column values of one "
                    "type, e.g. df[column] = df[column].astype(str)"
                ) from None
            if schema is None or not table.schema.equals(schema):
                if schema is not None:
                    check_schema(schema, table.schema, "the first frame", f"frame {i}")
                    writer.close()
                schema = table.schema
                files.append(folder / f"part-{len(files):05d}.parquet")
                writer = pa.parquet.ParquetWriter(files[-1], schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()
        if not files:
            raise DataError("the iterable held no DataFrame with rows")
        source = _parquet(files)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    source.label, source.temporary = "frames", [folder]
    return source
