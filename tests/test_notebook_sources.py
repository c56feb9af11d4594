"""Each notebook has a jupytext ``py:percent`` twin (``notebooks/NN_name.py``, paired by
``notebooks/jupytext.toml``) that reads as code in reviews and diffs: the two must hold the same
cells, and the twins must pass the project's linter (ruff, configured in pyproject.toml).

After editing either file: ``jupytext --sync notebooks/NN_name.ipynb``.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glscl_lite.notebooks import NOTEBOOK_DIR, list_notebooks

NOTEBOOKS = list_notebooks()
ROOT = NOTEBOOK_DIR.parent


def cells(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    import jupytext

    book = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in book.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_and_text_twin_in_sync(path):
    twin = path.with_suffix(".py")
    assert twin.is_file(), f"{twin.name} missing: jupytext --sync {path.relative_to(ROOT)}"
    ipynb, py = cells(path), cells(twin)
    assert len(ipynb) == len(py), (f"{path.name}: {len(ipynb)} cells, {twin.name}: {len(py)}; "
                                   f"run jupytext --sync {path.relative_to(ROOT)}")
    for i, (a, b) in enumerate(zip(ipynb, py)):
        assert a == b, f"cell {i} differs between {path.name} and {twin.name}; run jupytext --sync"
    assert "# %%" in twin.read_text(), "not a py:percent file"


def test_every_twin_has_a_notebook():
    twins = {p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py")}
    assert twins == {p.stem for p in NOTEBOOKS}


def test_text_twins_pass_the_linter():
    ruff = [sys.executable, "-m", "ruff"]
    if subprocess.run([*ruff, "--version"], capture_output=True).returncode != 0:
        if shutil.which("ruff") is None:
            pytest.fail("ruff is not installed (pip install -e '.[dev]')")
        ruff = ["ruff"]
    twins = sorted(str(p.relative_to(ROOT)) for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
    assert twins
    out = subprocess.run([*ruff, "check", "--no-cache", *twins], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
