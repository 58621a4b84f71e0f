"""Every file and folder ppvae writes (models, tables, reports, the demo), written atomically.

- :func:`check_target` runs *before* the work: the location must be writable, and an
  existing path is replaced only with ``force`` and only when it is a ppvae output of the
  same kind (a model by a model, a report by a report, a table file by a table file).
- :func:`atomic_dir` yields a hidden temporary folder beside the target and renames it into
  place when the block succeeds; :func:`write_table` streams data-frame chunks into a hidden
  temporary file the same way. Either is removed on any failure, on Ctrl-C and on SIGTERM.
- Tables are CSV, compressed by the name's extension (``.gz``, ``.bz2``, ``.xz``, ``.zip``),
  or Parquet (``.parquet``, when pyarrow is installed).
- Modes honour the umask (folders ``0777 & ~umask``, files ``0666 & ~umask``), like any file
  a program opens.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import lzma
import os
import shutil
import signal
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd

KINDS = ("model", "report", "demo", "table")
COMPRESSION = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
REPLACEABLE_TABLES = (
    ".parquet",
    *(f".{base}{suffix}" for base in ("csv", "tsv") for suffix in ("", ".zip", *COMPRESSION)),
)
DISK_MARGIN = 1.1  # refuse a table whose estimated size exceeds free space / margin


class OutputError(ValueError):
    """An output path cannot be written, or is something ``--force`` must not replace."""


def umask() -> int:
    """The process umask (from /proc on Linux, else set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_output_of_kind(path: Path, kind: str) -> bool:
    """Whether ``path`` is a ppvae output of ``kind`` (what ``force`` may replace)."""
    if path.is_symlink():
        return False
    if kind == "table":  # a data file by its full extension, never e.g. notes.txt
        return path.is_file() and path.name.lower().endswith(REPLACEABLE_TABLES)
    if not path.is_dir():
        return False
    if kind == "model":
        try:
            meta = json.loads((path / "ppvae.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(meta, dict) and meta.get("format") == "ppvae-model"
    if kind == "report":
        return (path / "report.json").is_file() and (path / "report.md").is_file()
    if kind == "demo":
        return (path / "README.md").is_file() and _is_output_of_kind(path / "model", "model")
    raise ValueError(f"unknown output kind {kind!r}; one of {KINDS}")


def table_format(path: Path) -> str | None:
    """``csv``, ``csv.gz``/``csv.bz2``/``csv.xz``/``csv.zip`` or ``parquet`` from the name."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix in COMPRESSION or suffix == ".zip":
        return f"csv{suffix}"
    if suffix in (".csv", ".tsv", ".txt", ""):
        return "csv"
    return None


def _writable_ancestor(path: Path) -> Path:
    """The nearest existing folder above ``path``; an :class:`OutputError` if it is a file
    or cannot be written."""
    parent = path.parent.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(
            f"cannot write {path}: {parent} is a file, not a folder; choose another output path"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {path}: no permission to write in {parent}; choose another output "
            "path (-o) or fix the folder's permissions"
        )
    return parent


def check_target(path: str | os.PathLike, kind: str, force: bool = False) -> Path:
    """Check, before any work, that ``path`` can receive a ppvae output of ``kind``.

    Raises ``FileExistsError`` if it exists and ``force`` is false, :class:`OutputError` if
    it exists and is not a ppvae ``kind`` output, or if its folder cannot be written.
    """
    target = Path(path)
    if kind == "table" and table_format(target) is None:
        raise OutputError(
            f"cannot write a table to {target}: use a .csv name (optionally .csv.gz, .csv.bz2, "
            ".csv.xz, .csv.zip) or .parquet"
        )
    if kind == "table" and table_format(target) == "parquet":
        _require_pyarrow()
    if target.exists() or target.is_symlink():
        if not force:
            raise FileExistsError(
                f"{target} already exists; pass --force to overwrite it (force=True in Python)"
            )
        if not _is_output_of_kind(target, kind):
            raise OutputError(
                f"{target} exists and is not a ppvae {kind}; --force replaces only a ppvae "
                f"{kind}, never other files: choose another output path or remove it yourself"
            )
    _writable_ancestor(target)
    return target


def replace_path(tmp: Path, target: Path, force: bool) -> None:
    """Move ``tmp`` (a file or folder) to ``target``; replace an existing target only if
    ``force``, keeping the old one until the new one is in place."""
    if target.exists() or target.is_symlink():
        if not force:
            raise FileExistsError(
                f"{target} already exists; pass --force to overwrite it (force=True in Python)"
            )
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, backup)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(backup, target)
            raise
        if backup.is_dir():
            shutil.rmtree(backup)
        else:
            backup.unlink()
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` so ``finally`` clauses clean up
    (only in the main thread, and only where no handler of the caller's is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, kind: str, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` (see :func:`check_target`)."""
    target = check_target(path, kind, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _sigterm_raises():
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            os.chmod(tmp, 0o777 & ~umask())
            yield tmp
            check_target(target, kind, force)
            replace_path(tmp, target, force)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise OutputError(
            "writing .parquet needs pyarrow: pip install pyarrow, or write .csv / .csv.gz"
        ) from None


@contextlib.contextmanager
def _text_handle(path: Path, fmt: str, member: str) -> Iterator[IO[str]]:
    """A text handle on ``path`` that compresses as ``fmt`` says."""
    suffix = fmt[3:]
    if suffix in COMPRESSION:
        with COMPRESSION[suffix](path, "wt", encoding="utf-8", newline="") as fh:
            yield fh
    elif suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            with zf.open(member, "w", force_zip64=True) as raw:
                with io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
                    yield fh
    else:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            yield fh


def _write_chunks(chunks: Iterable[pd.DataFrame], fh: IO[str]) -> int:
    rows = 0
    for i, chunk in enumerate(chunks):
        chunk.to_csv(fh, header=i == 0, index=False)
        rows += len(chunk)
    return rows


def _write_parquet(chunks: Iterable[pd.DataFrame], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, writer = 0, None
    try:
        for chunk in chunks:
            batch = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema)
            writer.write_table(batch)
            rows += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    return rows


def write_table(
    data: pd.DataFrame | Iterable[pd.DataFrame], path: str | os.PathLike, force: bool = False
) -> int:
    """Write a frame, or an iterable of frames (streamed chunk by chunk), to ``path``.

    ``"-"`` writes CSV to stdout. Otherwise the format follows the name (see
    :func:`table_format`) and the file appears only once complete. Returns the row count.
    """
    chunks = [data] if isinstance(data, pd.DataFrame) else data
    if str(path) == "-":
        return _write_chunks(chunks, sys.stdout)
    target = check_target(path, "table", force)
    fmt = table_format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _sigterm_raises():
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            os.chmod(tmp, 0o666 & ~umask())
            if fmt == "parquet":
                rows = _write_parquet(chunks, tmp)
            else:
                member = target.name[:-4] if fmt == "csv.zip" else target.name
                with _text_handle(tmp, fmt, member) as fh:
                    rows = _write_chunks(chunks, fh)
            replace_path(tmp, target, force=force)
        finally:
            if tmp.exists():
                tmp.unlink()
    return rows


def estimated_bytes(sample: pd.DataFrame, n_rows: int, path: str | os.PathLike) -> int:
    """Bytes that ``n_rows`` rows like ``sample`` take in ``path``'s format (by writing the
    sample to memory and scaling)."""
    fmt = table_format(Path(path)) or "csv"
    text = sample.to_csv(index=False)
    raw = text.encode("utf-8")
    if fmt[3:] in (".gz", ".zip"):
        size = len(gzip.compress(raw, compresslevel=6))
    elif fmt[3:] == ".bz2":
        size = len(bz2.compress(raw))
    elif fmt[3:] == ".xz":
        size = len(lzma.compress(raw))
    else:
        size = len(raw)  # parquet is smaller than CSV: CSV's size bounds it
    return int(size / max(len(sample), 1) * n_rows)


def check_disk_space(sample: pd.DataFrame, n_rows: int, path: str | os.PathLike) -> None:
    """Refuse (:class:`OutputError`) a table of ``n_rows`` rows that cannot fit on the disk."""
    target = Path(path)
    need = estimated_bytes(sample, n_rows, target)
    free = shutil.disk_usage(_writable_ancestor(target)).free
    if need * DISK_MARGIN > free:
        raise OutputError(
            f"{n_rows} rows would take about {need / 1e9:.3g} GB in {target}, but only "
            f"{free / 1e9:.3g} GB are free there: ask for fewer rows (-n), a compressed output "
            "(.csv.gz) or another disk"
        )


def save_figures(figures: Mapping[str, Any], folder: Path, dpi: int = 110) -> dict[str, str]:
    """Save matplotlib figures ``{name: Figure}`` as ``folder/<name>.png`` and close them;
    returns ``{name: file name}`` for the report's links."""
    import matplotlib.pyplot as plt

    paths = {}
    for name, fig in figures.items():
        fig.savefig(folder / f"{name}.png", dpi=dpi)
        plt.close(fig)
        paths[name] = f"{name}.png"
    return paths
