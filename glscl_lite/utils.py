"""Small shared helpers: atomic file writes, seeding, device choice."""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

import numpy as np

from glscl_lite.errors import UserError

PathLike = Union[str, os.PathLike]


class OutputError(UserError, OSError):
    """An output location that cannot be written."""


class DeviceError(UserError, RuntimeError):
    """A device that this machine does not have."""


def ensure_writable_dir(path: PathLike) -> Path:
    """Create ``path`` (and parents) and check that files can be created in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: output directory is not writable ({exc.strerror or exc})") from None
    return path


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    Works for files and directories: whatever the body creates at the temporary path replaces
    ``path`` in one rename, so an interrupted write never leaves a half-written ``path``.
    """
    path = Path(path)
    ensure_writable_dir(path.parent)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}{suffix}"
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()


def write_text_atomic(path: PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: PathLike, obj: Any, indent: int = 2) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available on this machine; "
                          "use device=cpu (or auto)")
    return dev


def sync(device) -> None:
    """Wait for queued CUDA work on ``device`` (timing); a no-op on CPU."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def use_bf16(cfg, device) -> bool:
    """The one bf16 decision: autocast to bf16 on CUDA unless ``cfg.precision`` is ``fp32``."""
    return device.type == "cuda" and cfg.precision in ("auto", "bf16")


def autocast(cfg, device):
    """``torch.autocast`` as :func:`use_bf16` decides (training, evaluation, feature caches)."""
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16(cfg, device))


def machine_name() -> str:
    """A short description of the machine for benchmark JSON files."""
    import platform

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} CPU x{os.cpu_count()}"


def machine_slug(name: "str | None" = None) -> str:
    """``name`` (default :func:`machine_name`) as a file-name part: ``x86_64 CPU x2`` -> ``x86_64_cpu_x2``."""
    import re

    return re.sub(r"[^A-Za-z0-9]+", "_", name or machine_name()).strip("_").lower()
