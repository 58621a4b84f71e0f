"""Every tutorial runs top to bottom (small budget) and its notebook matches its source."""

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9]*.py"))


@pytest.mark.parametrize("source", TUTORIALS, ids=lambda p: p.stem)
def test_notebook_is_in_sync_with_source(source):
    notebook = source.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.name} is missing: run scripts/sync-tutorials"
    expected = [(c.cell_type, c.source) for c in jupytext.read(source).cells]
    actual = [(c.cell_type, c.source) for c in nbformat.read(notebook, as_version=4).cells]
    assert actual == expected, (
        f"{notebook.name} drifted from {source.name}: run scripts/sync-tutorials"
    )


@pytest.mark.parametrize("source", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_executes(source, tmp_path, monkeypatch):
    monkeypatch.setenv("PPVAE_SMOKE", "1")
    notebook = jupytext.read(source)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    images = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert images, f"{source.name} rendered no plot"
