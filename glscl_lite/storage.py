"""Safe writing of outputs: one writer at a time, a full disk said plainly, no orphans.

* :func:`exclusive_lock` -- an ``fcntl.flock`` on a lock file; a second writer gets a one-line
  :class:`LockedError` naming the holder's pid.
* :func:`building` -- the way every derived folder (frame cache, feature cache, search index,
  synthetic corpus) is written: lock its sibling ``.<name>.lock``, remove temporary folders left by
  dead processes, build under a temporary name, rename at the end (:func:`glscl_lite.utils.atomic_path`).
* :func:`require_free_space` / :func:`reserve` / :func:`disk_full_error` -- check free space up front
  where the size is known, allocate memmap files for real (``posix_fallocate``: a full disk becomes
  an error at allocation instead of a ``Bus error`` while writing), and turn ``ENOSPC`` into a
  :class:`DiskFullError` naming the path and the bytes needed.
* :func:`die_with_parent` -- initializer of worker pools: a worker exits when its parent dies
  (``kill -9`` of ``cache frames`` or ``synth`` leaves no workers blocked on a pipe).
* :func:`remove_stale_temps` -- temporary ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` siblings
  whose process is gone.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator, Optional, Union

from glscl_lite.errors import UserError

PathLike = Union[str, os.PathLike]


class LockedError(UserError, RuntimeError):
    """Another process is writing the same output."""


class DiskFullError(UserError, OSError):
    """Not enough free space for an output (``errno`` ENOSPC; ``str()`` is the message alone)."""

    def __str__(self) -> str:
        return str(self.strerror)


# ------------------------------------------------------------------------------------------- lock
def _holder(lock_file: Path) -> str:
    try:
        text = lock_file.read_text().strip()
    except OSError:
        return "unknown"
    return text.split()[0] if text else "unknown"


@contextlib.contextmanager
def exclusive_lock(lock_file: PathLike, what: str) -> Iterator[Path]:
    """Hold an exclusive, non-blocking ``flock`` on ``lock_file`` (created, with this pid in it).

    ``what`` names the output in the error: ``"<what>: another process (pid N) is writing it;
    wait for it to finish or use another output"``.  The file is removed on release; a writer that
    locked a file which was meanwhile removed retries on the new one, so removal is race-free.
    """
    import fcntl

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(f"{what}: another process (pid {_holder(lock_file)}) is writing it; "
                              "wait for it to finish or use another output") from None
        try:
            same = os.stat(lock_file).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file between our open and our lock
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock_file
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)
        os.close(fd)


# -------------------------------------------------------------------------------- stale temps
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)(?:\..*)?$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def remove_stale_temps(path: PathLike) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>*`` / ``.<name>.old-<pid>*`` siblings of ``path`` whose owner
    process is gone (left by ``kill -9``); returns what was removed."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        m = _TEMP.match(entry.name)
        if not m or m.group("name") != path.name or pid_alive(int(m.group("pid"))):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            removed.append(entry)
    return removed


@contextlib.contextmanager
def building(out: PathLike, what: str) -> Iterator[Path]:
    """Write the folder or file ``out`` as one writer: lock ``.<name>.lock`` beside it, clean temps
    of dead builders, yield a temporary path that replaces ``out`` only on success.  ``ENOSPC``
    raised inside becomes a :class:`DiskFullError` naming ``out``."""
    from glscl_lite.utils import atomic_path, ensure_writable_dir

    out = Path(out)
    ensure_writable_dir(out.parent)
    with exclusive_lock(out.parent / f".{out.name}.lock", f"{out} ({what})"):
        remove_stale_temps(out)
        try:
            with atomic_path(out) as tmp:
                yield tmp
        except OSError as exc:
            if isinstance(exc, UserError) or not is_disk_full(exc):
                raise
            raise disk_full_error(out, None, exc) from None


# ------------------------------------------------------------------------------------------ disk
def is_disk_full(exc: BaseException) -> bool:
    """``ENOSPC`` / ``EDQUOT`` (also inside torch's zip writer messages)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


def free_bytes(path: PathLike) -> int:
    """Free bytes on the filesystem holding ``path`` (its nearest existing ancestor)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return int(shutil.disk_usage(p).free)


def human_bytes(n: Optional[float]) -> str:
    if n is None:
        return "an unknown amount"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def disk_full_error(path: PathLike, needed: Optional[int], exc: Optional[BaseException] = None) -> DiskFullError:
    """The one message for a full disk: where, how much is needed, how much is free."""
    free = free_bytes(path)
    need = f"needs {human_bytes(needed)} ({needed} bytes)" if needed is not None else "could not finish writing"
    return DiskFullError(errno.ENOSPC, f"{path}: disk full: {need}, {human_bytes(free)} free on its "
                                       "filesystem; free space or write elsewhere (nothing was left half-written)")


def require_free_space(path: PathLike, needed: int, margin: int = 16 << 20) -> None:
    """Raise :class:`DiskFullError` unless ``needed`` bytes (plus a small margin) are free at ``path``."""
    if free_bytes(path) < int(needed) + margin:
        raise disk_full_error(path, int(needed))


def reserve(file: PathLike, nbytes: int) -> None:
    """Allocate ``nbytes`` of ``file`` on disk now (a sparse memmap would die with ``SIGBUS`` on a
    full disk while being written); ``ENOSPC`` -> :class:`DiskFullError`."""
    require_free_space(file, nbytes)
    if nbytes <= 0 or not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, int(nbytes))
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(file, int(nbytes), exc) from None
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------- workers
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: Optional[int] = None) -> None:
    """Pool-worker initializer: exit when the parent process dies.

    On Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; elsewhere (or if prctl fails) a daemon thread
    polls the parent pid once a second.  ``parent_pid`` closes the race of a parent that died
    before the worker got here.
    """
    parent = parent_pid if parent_pid is not None else os.getppid()
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:
        os._exit(1)
    if not armed:
        def watch() -> None:
            import time

            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()
