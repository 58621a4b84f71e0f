"""Regenerate and execute the tutorial notebooks (run through ``scripts/sync-tutorials``).

Each ``tutorials/NN_*.py`` (jupytext percent format) becomes ``tutorials/NN_*.ipynb``, executed
top to bottom at full budget (``PPVAE_SMOKE`` unset) in ``tutorials/`` with this checkout's
``ppvae`` first on the kernel's path, so the notebook holds its outputs and figures. Progress
is printed per cell; a failing cell stops the run and leaves the old notebook in place.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"


def sources(names: list[str]) -> list[Path]:
    """The tutorial sources named by number (``03``), stem or path; all of them if none."""
    every = sorted(TUTORIALS.glob("[0-9]*.py"))
    if not names:
        return every
    chosen = []
    for name in names:
        stem = Path(name).stem
        found = [p for p in every if p.stem == stem or p.stem.split("_")[0] == stem]
        if not found:
            raise SystemExit(
                f"sync-tutorials: no tutorial {name!r}; have {', '.join(p.stem for p in every)}"
            )
        chosen.extend(found)
    return chosen


def execute(notebook: nbformat.NotebookNode, label: str, timeout: int) -> None:
    """Run every cell in ``tutorials/``, printing one line per code cell."""
    code = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    start = time.monotonic()

    def done(cell, cell_index, execute_reply):
        n = code.index(cell_index) + 1
        print(f"  {label}: cell {n}/{len(code)} done, {time.monotonic() - start:.0f}s", flush=True)

    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(TUTORIALS)}},
        on_cell_executed=done,
    ).execute()


def write(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Write ``notebook`` to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(notebook, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sync-tutorials", description=__doc__.split("\n\n")[0].strip()
    )
    parser.add_argument("tutorials", nargs="*", help="numbers, stems or paths (default: all)")
    parser.add_argument(
        "--no-execute", action="store_true", help="write the notebooks without running them"
    )
    parser.add_argument(
        "--timeout", type=int, default=1800, help="seconds one cell may run (default 1800)"
    )
    args = parser.parse_args(argv)
    os.environ.pop("PPVAE_SMOKE", None)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    for src in sources(args.tutorials):
        notebook = jupytext.read(src)
        target = src.with_suffix(".ipynb")
        if not args.no_execute:
            print(f"{src.stem}: executing at full budget", flush=True)
            start = time.monotonic()
            execute(notebook, src.stem.split("_")[0], args.timeout)
            print(f"{src.stem}: executed in {time.monotonic() - start:.0f}s", flush=True)
        write(notebook, target)
        print(f"wrote {target.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
