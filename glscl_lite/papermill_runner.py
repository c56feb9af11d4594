"""Run the notebook series headlessly with papermill (``glscl-lite notebooks``).

Notebooks are committed without outputs; executed copies go to ``out_dir`` and are build
artefacts.  Every notebook's first code cell is tagged ``parameters`` and defines at least
``smoke``; papermill injects overrides in a cell right after it.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import uuid
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


class _ParameterLineNotice(logging.Filter):
    """Drops papermill's "Unable to parse line N ..." and "Passed unknown parameter: NAME".

    papermill re-reads the parameters cell line by line with a pattern that allows one ``=`` per
    line, so a comment such as ``# presets: "auto" = cuda if present`` makes it log the first line
    and then the second for a name it did not see.  :func:`execute` checks the names itself on the
    cell's syntax tree (:func:`parameters_of`) and refuses unknown ones before papermill starts, so
    both lines could only be false alarms."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (msg.startswith("Unable to parse line") or msg.startswith("Passed unknown parameter"))


_PARAMETER_NOTICE = _ParameterLineNotice()
_KERNEL_MANAGER = None


def kernel_manager_class() -> type:
    """The kernel manager :func:`execute` gives papermill: jupyter_client's ``AsyncKernelManager``
    with two changes that keep a headless run free of alarming lines (issue 13).

    * **IPC transport** (Unix sockets under the temp folder) instead of TCP on localhost.  ipykernel
      warns "Kernel is running over TCP without encryption" for every kernel started over TCP
      without CurveZMQ keys; a socket file readable by this user only needs neither.
    * **No interrupt before shutdown.**  jupyter_client sends SIGINT to the kernel's process group
      before every shutdown request; when it lands while the kernel is still handling a message,
      ipykernel logs "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel" after a notebook
      that ran fine.  Every cell has finished (or failed, or timed out) by the time papermill shuts
      the kernel down, so the polite shutdown request is enough; a kernel that does not exit is
      still killed after ``shutdown_wait_time``.
    """
    global _KERNEL_MANAGER
    if _KERNEL_MANAGER is None:
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import default

        class HeadlessKernelManager(AsyncKernelManager):
            @default("transport")
            def _default_transport(self) -> str:
                return "ipc" if os.name == "posix" else "tcp"

            @default("ip")
            def _default_ip(self) -> str:
                if self.transport != "ipc":
                    from jupyter_client.localinterfaces import localhost

                    return localhost()
                # socket files are "<ip>-<port>", removed at shutdown; short absolute prefix (108-byte limit)
                return os.path.join(tempfile.gettempdir(), f"glscl-kernel-{uuid.uuid4().hex[:12]}")

            async def _async_interrupt_kernel(self) -> None:
                if self.shutting_down:  # see above: no SIGINT on the way out
                    return
                await super()._async_interrupt_kernel()

        _KERNEL_MANAGER = HeadlessKernelManager
    return _KERNEL_MANAGER


def execute(path: Path, out_path: Path, parameters: dict[str, Any], timeout: int = 600,
            kernel: str = "python3", progress: bool = False) -> Path:
    """Execute one notebook with papermill (working folder: the notebook's); unknown parameter
    names are an error (not a warning).  ``out_path`` appears only when every cell ran; a failed
    run leaves its executed copy, failing cell marked, at :func:`failed_copy` instead.
    ``progress=True`` shows papermill's per-cell progress bar on stderr."""
    import papermill

    known = parameters_of(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{path.name}: unknown parameter(s) {unknown}; it takes {sorted(known)}")
    for name in ("papermill", "papermill.translators"):
        if _PARAMETER_NOTICE not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_PARAMETER_NOTICE)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.stem + ".partial.ipynb")
    try:
        papermill.execute_notebook(
            str(path), str(partial), parameters=parameters, kernel_name=kernel,
            cwd=str(path.parent), execution_timeout=timeout, progress_bar=progress,
            request_save_on_cell_execute=True, kernel_manager_class=kernel_manager_class(),
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
    books = list_notebooks(directory, only=only)
    bar = sys.stderr.isatty()  # per-cell progress bar in a terminal, plain lines in logs and CI
    start = time.time()
    for i, nb in enumerate(books, 1):
        params = {"smoke": smoke, **{k: v for k, v in extra.items() if k in parameters_of(nb)}}
        print(f"[{i}/{len(books)}] {nb.name} ...", flush=True)
        t0 = time.time()
        try:
            execute(nb, out_dir / nb.name, params, timeout=timeout, progress=bar)
            print(f"ok    {nb.name}  ({time.time() - t0:.1f} s)", flush=True)
        except Exception as exc:  # report and continue with the next notebook
            failures.append(nb.name)
            print(f"FAIL  {nb.name}  ({time.time() - t0:.1f} s): {type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
    print(f"{len(failures)} failed" if failures else "all notebooks ran",
          f"in {time.time() - start:.0f} s -> {out_dir}", flush=True)
    return failures
