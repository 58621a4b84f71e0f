"""Every tutorial runs top to bottom (small budget), and its committed notebook matches its
source and carries the outputs of a run (scripts/sync-tutorials executes them)."""

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9]*.py"))


def images(notebook: nbformat.NotebookNode) -> list[dict]:
    return [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]


@pytest.mark.parametrize("source", TUTORIALS, ids=lambda p: p.stem)
def test_notebook_is_in_sync_with_source(source):
    """Sources only: the notebook's outputs are allowed (and required, below)."""
    notebook = source.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.name} is missing: run scripts/sync-tutorials"
    expected = [(c.cell_type, c.source) for c in jupytext.read(source).cells]
    actual = [(c.cell_type, c.source) for c in nbformat.read(notebook, as_version=4).cells]
    assert actual == expected, (
        f"{notebook.name} drifted from {source.name}: run scripts/sync-tutorials"
    )


@pytest.mark.parametrize("source", TUTORIALS, ids=lambda p: p.stem)
def test_committed_notebook_has_outputs_and_a_figure(source):
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    fix = f"run scripts/sync-tutorials {source.stem.split('_')[0]}"
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, f"{source.stem}: code cells {unexecuted} were not executed: {fix}"
    assert any(c.get("outputs") for c in code), f"{source.stem} has no outputs: {fix}"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{source.stem}: a cell raised {errors[0].get('ename')}: {fix}"
    assert images(notebook), f"{source.stem} has no figure (image/png output): {fix}"


@pytest.mark.parametrize("source", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_executes(source, tmp_path, monkeypatch):
    monkeypatch.setenv("PPVAE_SMOKE", "1")
    # the kernel imports this checkout's ppvae, whatever is installed
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    )
    notebook = jupytext.read(source)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    assert images(notebook), f"{source.name} rendered no plot"
