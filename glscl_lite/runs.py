"""The run folder: its layout, its config, its checkpoints, its metrics log, its writer lock and
the one rule "has this run finished with these settings?".

Layout of ``RUN_DIR``::

    config.json          the full resolved config
    provenance.json      what the run was built from (annotation files, videos or caches, weights)
    metrics.jsonl        one JSON line per logged step and per evaluation
    checkpoints/last.pt  everything needed to resume exactly
    checkpoints/best.pt  model weights with the best validation t2v R@1 (never the test split)
    results.json         final validation and test metrics of the best checkpoint
    .lock                present while a process writes the folder (holds its pid)

Training (:mod:`glscl_lite.train`), evaluation, ablations and the notebooks all go through these
functions; this module imports neither ``train`` nor ``evaluate``.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Optional

from glscl_lite.config import Config, load_config_file
# key categories live in glscl_lite.config; importable from here too
from glscl_lite.config import LENGTH_KEYS, MODEL_KEYS, NEUTRAL_KEYS, RUNTIME_KEYS  # noqa: F401
from glscl_lite.errors import UserError
from glscl_lite.utils import PathLike, atomic_path, write_json_atomic

CONFIG_FILE = "config.json"
PROVENANCE_FILE = "provenance.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = ".lock"

# ------------------------------------------------------------------------------------------ paths
def config_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / CONFIG_FILE


def metrics_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / METRICS_FILE


def results_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / RESULTS_FILE


def provenance_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / PROVENANCE_FILE


def checkpoint_path(run_dir: PathLike, which: str = "best") -> Path:
    """``best`` / ``last`` -> ``RUN_DIR/checkpoints/<which>.pt``; anything else is a path."""
    if which in ("best", "last"):
        return Path(run_dir) / CHECKPOINT_DIR / f"{which}.pt"
    return Path(which)


_ckpt_path = checkpoint_path  # old private name (ablation code of other branches)


# ----------------------------------------------------------------------------------- config/results
def run_config(run_dir: PathLike) -> Config:
    """The run's ``config.json``; a folder without one is not a run folder."""
    path = config_path(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run folder (config.json not found)")
    return load_config_file(path)


def write_config(run_dir: PathLike, cfg: Config) -> Path:
    return write_json_atomic(config_path(run_dir), cfg.to_dict())


def read_results(run_dir: PathLike) -> Optional[dict]:
    """``results.json`` of a finished run, or None."""
    path = results_path(run_dir)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg}); delete it to re-evaluate the run") from None


def write_results(run_dir: PathLike, results: dict) -> Path:
    return write_json_atomic(results_path(run_dir), results)


def is_finished(run_dir: PathLike) -> bool:
    return results_path(run_dir).is_file()


def has_checkpoint(run_dir: PathLike, which: str = "last") -> bool:
    return checkpoint_path(run_dir, which).is_file()


# ------------------------------------------------------------------------------------- provenance
def run_fingerprint(cfg: Config) -> dict:
    """What a run is built from: the annotation files it reads (``MSRVTT_data.json`` and its split
    CSVs; size and mtime), the frame or feature cache it reads (their digest) or else the video
    folder (count and digest of every video's size and mtime), and the pretrained weights when they
    are a local file (sha256)."""
    from glscl_lite import provenance as pv

    files = [Path(cfg.anno_path) / "MSRVTT_data.json",
             *(cfg.resolve(name) for name in (cfg.train_csv, cfg.val_csv, cfg.test_csv) if name)]
    parts: dict[str, Any] = {"annotations": pv.fingerprint_files(files)}
    if cfg.feature_cache:
        parts["feature_cache"] = _artefact_digest(Path(cfg.feature_cache) / "meta.json")
    elif cfg.frame_cache:
        parts["frame_cache"] = _artefact_digest(Path(cfg.frame_cache) / "index.json")
    else:  # decoded on the fly: the video folder, summarised (one scandir, no hashing of videos)
        parts["videos"] = pv.folder_summary(cfg.video_path, ".mp4")
    if cfg.pretrained and Path(cfg.pretrained).is_file():
        parts["pretrained"] = pv.file_sha256(cfg.pretrained)
    return pv.fingerprint(**parts)


def _artefact_digest(index_file: Path) -> Optional[str]:
    try:
        return (json.loads(index_file.read_text()).get("provenance") or {}).get("digest")
    except (OSError, ValueError, AttributeError):
        return None


def write_provenance(run_dir: PathLike, cfg: Config) -> Path:
    return write_json_atomic(provenance_path(run_dir), {"provenance": run_fingerprint(cfg)})


def check_provenance(run_dir: PathLike, cfg: Config) -> None:
    """Refuse a run folder whose inputs (annotations, caches, weights) changed since it trained."""
    from glscl_lite import provenance as pv

    path = provenance_path(run_dir)
    if not path.is_file():
        return
    recorded = json.loads(path.read_text()).get("provenance")
    # a cache that is missing now (rebuilt before training) or had no record then is not compared
    now = {k: v for k, v in run_fingerprint(cfg).items()
           if v is not None and (recorded or {}).get(k, "") is not None}
    pv.check(recorded, now, run_dir, f"glscl-lite train ... --out NEW_RUN_DIR (or delete {run_dir})")


# ------------------------------------------------------------------------------------ the one rule
def finished(run_dir: PathLike, cfg: Config) -> Optional[dict]:
    """Has ``run_dir`` finished with ``cfg``?  The results dict when it has; None when it holds no
    run, an unfinished one, or a finished one of another length (``max_steps`` / ``epochs``: training
    then resumes or extends it).  A folder holding a run of other settings, or one built from other
    inputs (annotation files, caches, weights), is an error naming the differences."""
    run_dir = Path(run_dir)
    if not config_path(run_dir).is_file():
        return None
    saved = run_config(run_dir).to_dict()
    now = cfg.to_dict()
    diff = [k for k, v in now.items() if k not in RUNTIME_KEYS and saved.get(k) != v]
    if diff:
        state = "a finished run" if is_finished(run_dir) else "a run"
        raise UserError(f"{run_dir}: holds {state} with other settings "
                        f"({', '.join(f'{k}={saved.get(k)!r}, now {now[k]!r}' for k in diff)}); "
                        "use a new --out folder or the same settings to resume")
    check_provenance(run_dir, cfg)
    results = read_results(run_dir)
    if results is None or any(saved.get(k) != now[k] for k in LENGTH_KEYS):
        return None
    return results


# ------------------------------------------------------------------------------------------- lock
@contextlib.contextmanager
def writer_lock(run_dir: PathLike) -> Iterator[Path]:
    """Exclusive lock of a run folder (``RUN_DIR/.lock``); a second writer gets a one-line error
    naming the holder's pid."""
    from glscl_lite.storage import exclusive_lock

    with exclusive_lock(Path(run_dir) / LOCK_FILE, f"{run_dir}: run folder") as lock:
        yield lock


# ------------------------------------------------------------------------------------ checkpoints
def _tensor_bytes(obj: Any) -> int:
    import torch

    if torch.is_tensor(obj):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def save_checkpoint(obj: dict, path: PathLike) -> Path:
    """``torch.save`` through a temporary file renamed at the end.  Free space is checked first
    (tensor bytes + 1 MiB); a full disk is a :class:`~glscl_lite.storage.DiskFullError` naming the
    path and the bytes needed, and the previous checkpoint stays intact."""
    import torch

    from glscl_lite import storage

    path = Path(path)
    needed = _tensor_bytes(obj) + (1 << 20)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.remove_stale_temps(path)  # a save cut short by kill -9 leaves .<name>.tmp-<pid>
    storage.require_free_space(path, needed, margin=0)
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, UserError):
            raise
        if storage.is_disk_full(exc) or storage.free_bytes(path.parent) < needed:
            raise storage.disk_full_error(path, needed, exc) from None
        raise
    return path


def load_checkpoint(run_dir: PathLike, which: str = "best") -> tuple[Path, dict]:
    """``(path, state)`` of a checkpoint; clear errors for a missing or unreadable file."""
    import torch

    path = checkpoint_path(run_dir, which)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found (has the run trained and evaluated yet?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated / not a torch file
        raise UserError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    return path, state


def load_checkpoint_into(model, run_dir: PathLike, which: str = "best") -> dict:
    """Load model weights; clear errors for a missing file or a checkpoint of another model."""
    path, state = load_checkpoint(run_dir, which)
    saved = state.get("config", {})
    diff = [f"{k}={saved.get(k)!r} (model has {getattr(model.cfg, k)!r})"
            for k in MODEL_KEYS if k in saved and saved[k] != getattr(model.cfg, k)]
    if diff:
        raise UserError(f"{path}: checkpoint is from another model: {', '.join(diff)}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"{path}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
    return state


# ------------------------------------------------------------------------------------ metrics log
class MetricsLog:
    """Append-only JSON lines; on resume, lines past the checkpoint's step are dropped."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.exists()):
            return
        keep = [r for r in _parse_lines(self.path) if r["step"] <= step]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def _parse_lines(path: Path) -> list[dict]:
    """Records of a JSON-lines log; a last line cut short by a kill is dropped, any other bad line
    is an error naming the file and line."""
    lines = path.read_text().splitlines()
    out = []
    for i, ln in enumerate(lines, 1):
        if not ln.strip():
            continue
        try:
            out.append(json.loads(ln))
        except json.JSONDecodeError as exc:
            if i == len(lines):  # torn by kill -9 during the append: the resumed run rewrites it
                break
            raise UserError(f"{path}, line {i}: not a JSON record ({exc.msg})") from None
    return out


def read_metrics(run_dir: PathLike) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` (empty when there is none)."""
    path = metrics_path(run_dir)
    return _parse_lines(path) if path.exists() else []
