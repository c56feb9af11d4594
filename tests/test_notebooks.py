"""Every notebook: committed without outputs, a ``parameters`` cell first, and it runs headlessly
with papermill (smoke=True) -- new notebooks join automatically."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from glscl_lite.notebooks import execute, failed_copy, list_notebooks, parameters_of
from glscl_lite.nb import SERIES_PARAMETERS, parameters_cell

NOTEBOOKS = list_notebooks()
ARTEFACTS = Path(__file__).resolve().parent.parent / "runs" / "notebooks-failed"
CELL_TIMEOUT = 300


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_clean_with_parameters_cell_first(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "no code cells"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        "notebook committed with outputs (strip them; executed copies are artefacts)"
    assert "parameters" in code[0].get("metadata", {}).get("tags", []), "first code cell must be tagged parameters"
    params = parameters_of(path)
    assert set(SERIES_PARAMETERS) <= set(params), f"missing series parameters {set(SERIES_PARAMETERS) - set(params)}"
    assert "".join(code[0]["source"]).startswith(parameters_cell()), \
        "the parameters cell must start with the shared block (glscl_lite.nb.parameters_cell())"
    assert nb["cells"][0]["cell_type"] == "markdown", "start with a markdown title"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_papermill(path, corpus, frame_cache, notebook_work_dir, tmp_path):
    out = tmp_path / path.name
    try:
        execute(path, out, {"smoke": True, "data_dir": str(corpus), "work_dir": str(notebook_work_dir)},
                timeout=CELL_TIMEOUT)
    except Exception:
        assert not out.exists()  # no half-run notebook under the final name
        if failed_copy(out).exists():  # keep the executed copy (with the failing cell marked) as a CI artefact
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(failed_copy(out), ARTEFACTS / path.name)
        raise


@pytest.fixture(scope="session")
def notebook_work_dir(tmp_path_factory) -> Path:
    """One work folder for the whole series, so later notebooks reuse earlier runs."""
    return tmp_path_factory.mktemp("notebook_work")


def test_run_notebooks_resolves_paths_and_keeps_failures_apart(tmp_path, monkeypatch, capfd):
    """Relative path parameters are the caller's (the kernel runs in the notebooks' folder); a
    failing notebook leaves only its ``.failed`` copy, and the series goes on after it.  Each
    notebook is announced before it runs, and the kernels print none of jupyter's alarming lines
    (IPC transport; no SIGINT before shutdown -- issue 13)."""
    import nbformat

    from glscl_lite.notebooks import run_notebooks

    src = tmp_path / "nbs"
    src.mkdir()
    for name, body in (("00_ok", "from pathlib import Path\nassert Path(data_dir).is_absolute(), data_dir\n"
                                 "assert (Path(data_dir) / 'marker').is_file()\n"),
                       ("01_bad", "raise RuntimeError('boom')\n"),
                       ("02_after", "x = 1\n")):
        params = nbformat.v4.new_code_cell("smoke = True\ndata_dir = 'nowhere'\n")
        params.metadata["tags"] = ["parameters"]
        book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), params,
                                               nbformat.v4.new_code_cell(body)],
                                        metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"}})
        nbformat.write(book, src / f"{name}.ipynb")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "marker").write_text("")
    monkeypatch.chdir(tmp_path)
    import jupyter_client.manager

    interrupts = []  # jupyter_client's own kernel manager interrupts every kernel it shuts down

    async def record_interrupt(self):
        interrupts.append(self)

    monkeypatch.setattr(jupyter_client.manager.AsyncKernelManager, "_async_interrupt_kernel", record_interrupt)
    failures = run_notebooks(Path("out"), parameters={"data_dir": "data"}, directory=src, timeout=60)
    assert failures == ["01_bad.ipynb"]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["00_ok.ipynb", "01_bad.failed.ipynb", "02_after.ipynb"]
    assert "boom" in (out / "01_bad.failed.ipynb").read_text()
    printed = capfd.readouterr()
    assert "[2/3] 01_bad.ipynb ..." in printed.out and "FAIL  01_bad.ipynb" in printed.out
    assert "without encryption" not in printed.err and "KeyboardInterrupt" not in printed.err, printed.err
    assert interrupts == []  # no SIGINT on the way out, also after a failed cell


def non_smoke_parameters(corpus: Path, tmp: Path) -> dict:
    """Every series parameter away from its default, on the tiny corpus: ``smoke=False`` with the
    ``smoke`` preset takes the non-smoke code paths (preset config, full schedule, own run and cache
    folders) at the tiny model's cost."""
    return {"smoke": False, "preset": "smoke", "pretrained": "random", "data_dir": str(corpus),
            "video_dir": str(corpus / "videos"), "frame_cache": str(tmp / "frames-64"),
            "run_dir": str(tmp / "run"), "device": "cpu", "work_dir": str(tmp / "work")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_series_parameters_reach_the_notebook(path, corpus, tmp_path, monkeypatch):
    """papermill's parameters reach each notebook's setup (``nb.series(globals())``): papermill
    injects every shared parameter changed (``parameterize_notebook``, what ``execute`` does), and
    the notebook's cells up to its setup cell run in one namespace -- in this process, not a kernel
    (the full papermill path is what the smoke runs and the non-smoke run of 06 take)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from glscl_lite import nb as nbmod

    book = load_notebook_node(str(path))  # papermill's loader (adds the metadata it expects)
    cut = next((i for i, c in enumerate(book.cells)
                if c.cell_type == "code" and "nb.series(globals())" in c.source), None)
    assert cut is not None, "the setup cell must call nb.series(globals())"
    book.cells = book.cells[:cut + 1]
    # the setup cell only up to the series line (07 goes on to train its run in that cell)
    lines = book.cells[cut].source.splitlines()
    upto = next(i for i, ln in enumerate(lines) if "nb.series(globals())" in ln)
    book.cells[cut].source = "\n".join(lines[:upto + 1])
    params = non_smoke_parameters(corpus, tmp_path)
    book = parameterize_notebook(book, params, kernel_name="python3", language="python")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in book.cells)
    monkeypatch.chdir(path.parent)
    monkeypatch.setattr(nbmod, "LAST_SERIES", None)
    namespace = {"__name__": "__notebook__", "display": lambda *a, **k: None}
    import matplotlib

    matplotlib.use("Agg")
    for cell in book.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, f"{path.name}", "exec"), namespace)
    s = nbmod.LAST_SERIES
    assert s is not None and namespace["S"] is s
    assert {k: v for k, v in s.as_dict().items()} == params
    c = s.config()
    assert {k: getattr(c, k) for k in ("pretrained", "device", "frame_cache", "video_path", "anno_path",
                                        "base_encoder")} == {
        "pretrained": None, "device": "cpu", "frame_cache": params["frame_cache"], "video_path": params["video_dir"],
        "anno_path": params["data_dir"], "base_encoder": "glscl-synthetic-hybrid"}


@pytest.mark.notebook
def test_training_notebook_non_smoke_paths(corpus, tmp_path):
    """Notebook 06 with ``smoke=False`` and the ``smoke`` preset: the preset's full schedule (no
    16-step cap), its own run folder and frame cache -- the paths a GPU box takes, at tiny cost."""
    path = next(p for p in NOTEBOOKS if p.name.startswith("06"))
    params = non_smoke_parameters(corpus, tmp_path)
    execute(path, tmp_path / path.name, params, timeout=CELL_TIMEOUT)
    run = Path(params["run_dir"])
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] > 16  # the full schedule, not the smoke cap
    assert json.loads((run / "config.json").read_text())["frame_cache"] == params["frame_cache"]
    assert (Path(params["frame_cache"]) / "index.json").is_file()
