"""Run the notebook series headlessly with papermill (``glscl-lite notebooks``).

Notebooks are committed without outputs; executed copies go to ``out_dir`` and are build
artefacts.  Every notebook's first code cell is tagged ``parameters`` and defines at least
``smoke``; papermill injects overrides in a cell right after it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable, Optional

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def list_notebooks(directory: Path = NOTEBOOK_DIR, only: Optional[Iterable[str]] = None) -> list[Path]:
    """Notebooks in order (``NN_topic.ipynb``), optionally filtered by name prefixes."""
    books = sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))
    if only:
        prefixes = tuple(only)
        books = [b for b in books if b.name.startswith(prefixes)]
    return books


def parameters_of(path: Path) -> dict[str, str]:
    """Names and default-value source text of a notebook's ``parameters`` cell."""
    import ast

    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"])
            out = {}
            for node in ast.parse(src).body:
                if isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        if isinstance(t, ast.Name):
                            out[t.id] = ast.get_source_segment(src, node.value) or ""
            return out
    raise ValueError(f"{path}: no cell tagged 'parameters'")


def _convert(value: Any) -> Any:
    """papermill's CLI conversion for ``NAME=VALUE`` strings: bool/None, int, float, else str."""
    if not isinstance(value, str):
        return value
    if value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[value]
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


PATH_PARAMETERS = ("data_dir", "work_dir", "video_dir", "frame_cache", "run_dir", "results_csv", "gallery_config")
"""Parameters that name files or folders: the notebooks run with ``notebooks/`` as working folder,
so ``run_notebooks`` makes relative values given on the command line absolute first."""


def failed_copy(out_path: Path) -> Path:
    """Where :func:`execute` leaves the executed copy of a notebook that failed."""
    return out_path.with_name(out_path.stem + ".failed.ipynb")


def execute(path: Path, out_path: Path, parameters: dict[str, Any], timeout: int = 600,
            kernel: str = "python3") -> Path:
    """Execute one notebook with papermill (working folder: the notebook's); unknown parameter
    names are an error (not a warning).  ``out_path`` appears only when every cell ran; a failed
    run leaves its executed copy, failing cell marked, at :func:`failed_copy` instead."""
    import papermill

    known = parameters_of(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{path.name}: unknown parameter(s) {unknown}; it takes {sorted(known)}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.stem + ".partial.ipynb")
    try:
        papermill.execute_notebook(
            str(path), str(partial), parameters=parameters, kernel_name=kernel,
            cwd=str(path.parent), execution_timeout=timeout, progress_bar=False,
            request_save_on_cell_execute=True,
        )
    except BaseException:
        if partial.exists():
            partial.replace(failed_copy(out_path))
        raise
    partial.replace(out_path)
    failed_copy(out_path).unlink(missing_ok=True)
    return out_path


def run_notebooks(out_dir: Path, smoke: bool = True, only: Optional[Iterable[str]] = None,
                  timeout: int = 600, parameters: Optional[dict[str, Any]] = None,
                  directory: Path = NOTEBOOK_DIR) -> list[str]:
    """Execute the series in ``directory`` in order into ``out_dir``; returns the names of the
    notebooks that failed.

    Parameters given are passed to each notebook that declares them; relative paths among them
    (:data:`PATH_PARAMETERS`) are taken relative to the current folder.
    """
    out_dir = Path(out_dir).resolve()
    failures = []
    extra = {k: _convert(v) for k, v in (parameters or {}).items()}
    extra.update({k: str(Path(v).resolve()) for k, v in extra.items()  # relative to the caller, not notebooks/
                  if k in PATH_PARAMETERS and isinstance(v, str)})
    for nb in list_notebooks(directory, only=only):
        params = {"smoke": smoke, **{k: v for k, v in extra.items() if k in parameters_of(nb)}}
        t0 = time.time()
        try:
            execute(nb, out_dir / nb.name, params, timeout=timeout)
            print(f"ok    {nb.name}  ({time.time() - t0:.1f} s)")
        except Exception as exc:  # report and continue with the next notebook
            failures.append(nb.name)
            print(f"FAIL  {nb.name}  ({time.time() - t0:.1f} s): {type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}")
    print(f"{len(failures)} failed" if failures else "all notebooks ran", f"-> {out_dir}")
    return failures
