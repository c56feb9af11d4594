"""Fetch the public MSR-VTT archives: resumable HTTP download, zip check, atomic unpack, data check.

Result under ``dest``::

    dest/msrvtt_data/            MSRVTT_data.json, MSRVTT_train.9k.csv, MSRVTT_train.7k.csv,
                                 MSRVTT_JSFUSION_test.csv      (CLIP4Clip's msrvtt_data.zip)
    dest/MSRVTT/videos/all/      video0.mp4 ... video9999.mp4  (Frozen-in-Time's MSRVTT.zip)

Every step is skipped when its result is already there, so the command can simply be run again
after an interruption: a partial download (``<archive>.part``) is resumed with an HTTP Range
request, a corrupt archive is set aside (``<archive>.corrupt``) and fetched again.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Optional, Union

from glscl_lite.errors import DataError, OfflineError
from glscl_lite.utils import atomic_path, ensure_writable_dir

PathLike = Union[str, os.PathLike]

ANNO_URL = "https://github.com/ArrowLuo/CLIP4Clip/releases/download/v0.0/msrvtt_data.zip"
VIDEO_URL = "https://www.robots.ox.ac.uk/~maxbain/frozen-in-time/data/MSRVTT.zip"
ANNO_DIRNAME = "msrvtt_data"
VIDEO_SUBDIR = Path("MSRVTT") / "videos" / "all"
ANNO_FILES = ("MSRVTT_data.json", "MSRVTT_train.9k.csv", "MSRVTT_train.7k.csv",
              "MSRVTT_JSFUSION_test.csv")
USER_AGENT = "glscl-lite/0.1 (+https://github.com/zchoi/GLSCL reproduction)"

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSAT = re.compile(r"bytes\s+\*/(\d+)")


def _by_hand(url: str, dest: Path) -> str:
    return (f"Download it by hand (e.g. `curl -L -C - -o {dest} {url}`) and put it at {dest}, "
            f"then run the command again.")


def _offline(url: str, dest: Path, part: Path, reason: str) -> OfflineError:
    kept = ""
    if part.exists() and part.stat().st_size > 0:
        kept = f" {part.stat().st_size} bytes are kept in {part}; running again resumes from there."
    return OfflineError(f"could not download {url}: {reason}.{kept} {_by_hand(url, dest)}")


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, url: str, expected_size: Optional[int], sha256: Optional[str]) -> None:
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DataError(f"{path}: downloaded from {url} has {size} bytes, expected {expected_size}")
    if sha256 is not None:
        got = _sha256(path)
        if got.lower() != sha256.lower():
            raise DataError(f"{path}: sha256 {got} does not match the expected {sha256} ({url})")


def download_file(url: str, dest: PathLike, expected_size: Optional[int] = None,
                  sha256: Optional[str] = None, progress: bool = True, chunk: int = 1 << 20,
                  timeout: float = 30) -> Path:
    """Stream ``url`` to ``dest`` through ``dest.part``; rename only when complete.

    An existing ``.part`` is resumed with ``Range: bytes=<size>-`` (a 206 reply appends, a 200
    reply from a server without range support restarts from zero).  The size is checked against
    Content-Length / the Content-Range total (and ``expected_size``), optionally the sha256.
    An existing ``dest`` is trusted (and checked against ``expected_size`` / ``sha256`` if given).
    Network failures raise :class:`OfflineError` (the ``.part`` is kept for the next try); a
    size or checksum mismatch raises :class:`DataError` (the bad ``.part`` is deleted).
    """
    dest = Path(dest)
    ensure_writable_dir(dest.parent)
    if dest.is_file():
        _verify(dest, url, expected_size, sha256)
        return dest
    part = dest.with_name(dest.name + ".part")
    for _attempt in range(2):  # a second pass only after a stale/unusable .part was dropped
        offset = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
        req = urllib.request.Request(url, headers=headers)
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset > 0:
                m = _CONTENT_RANGE_UNSAT.search(exc.headers.get("Content-Range", "") or "")
                exc.close()
                if m and int(m.group(1)) == offset:  # the .part already holds everything
                    break
                part.unlink()  # stale partial file (the remote file changed): start over
                continue
            reason = f"HTTP {exc.code} {exc.reason}"
            exc.close()
            raise _offline(url, dest, part, reason) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise _offline(url, dest, part, f"{type(exc).__name__}: {reason}") from None
        with resp:
            status = resp.status
            if status == 206:
                m = _CONTENT_RANGE.search(resp.headers.get("Content-Range", "") or "")
                if not m or int(m.group(1)) != offset:
                    raise _offline(url, dest, part, f"server sent a bad Content-Range "
                                   f"{resp.headers.get('Content-Range')!r} for a resume at byte {offset}")
                total = int(m.group(3)) if m.group(3) != "*" else None
                mode = "ab"
            elif status == 200:
                offset = 0  # no range support: restart from zero
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                mode = "wb"
            else:
                raise _offline(url, dest, part, f"unexpected HTTP status {status}")
            from tqdm.auto import tqdm

            done = offset
            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=dest.name, disable=not progress)
            try:
                with open(part, mode) as f:
                    while True:
                        try:
                            block = resp.read(chunk)
                        except (OSError, http.client.HTTPException) as exc:
                            f.flush()
                            raise _offline(url, dest, part, f"connection lost after {done} bytes "
                                           f"({type(exc).__name__}: {exc})") from None
                        if not block:
                            break
                        f.write(block)
                        done += len(block)
                        bar.update(len(block))
            finally:
                bar.close()
            if total is not None and done < total:
                raise _offline(url, dest, part, f"connection closed after {done} of {total} bytes")
            if total is not None and done > total:
                part.unlink()
                raise DataError(f"{url}: received {done} bytes, more than the announced {total}; "
                                f"the partial file was deleted, run again")
        break
    else:  # pragma: no cover - the loop always breaks or raises
        raise _offline(url, dest, part, "could not resume the partial download")
    try:
        _verify(part, url, expected_size, sha256)
    except DataError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


# ------------------------------------------------------------------------------------- archives
def check_zip(path: PathLike) -> None:
    """Open ``path`` as a zip and CRC-check every member; :class:`DataError` if anything is wrong."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            names = z.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a valid zip archive ({exc})") from None
    if bad is not None:
        raise DataError(f"{path}: corrupt zip archive (bad CRC or data in member {bad})")
    for n in names:
        p = Path(n)
        if p.is_absolute() or ".." in p.parts:
            raise DataError(f"{path}: unsafe member name {n!r} in zip archive")


def _fetch_checked_zip(url: str, archive: Path, progress: bool) -> Path:
    """Download (or reuse) ``archive`` and verify it; a corrupt one is set aside as ``.corrupt``."""
    download_file(url, archive, progress=progress)
    try:
        check_zip(archive)
    except DataError as exc:
        bad = archive.with_name(archive.name + ".corrupt")
        os.replace(archive, bad)
        raise DataError(f"{exc}; moved to {bad}, run the command again to download it anew") from None
    return archive


def _find_dir(root: Path, predicate) -> Optional[Path]:
    for d in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if "__MACOSX" in d.parts:
            continue
        if predicate(d):
            return d
    return None


def _unpack(archive: Path, target: Path, locate, what: str) -> Path:
    """Extract ``archive`` into a temp folder, find the wanted folder with ``locate`` and rename it
    onto ``target`` in one step."""
    work = archive.parent / f".{archive.stem}.unpack-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(work)
        found = _find_dir(work, locate)
        if found is None:
            raise DataError(f"{archive}: archive does not contain {what} (wrong URL? delete the "
                            f"archive to download it again)")
        with atomic_path(target) as tmp:
            os.replace(found, tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _anno_complete(d: Path) -> bool:
    return all((d / f).is_file() for f in ANNO_FILES)


def _videos_complete(d: Path) -> bool:
    return d.is_dir() and any(d.glob("*.mp4"))


def download_msrvtt(dest: PathLike, anno_url: Optional[str] = None, video_url: Optional[str] = None,
                    videos: bool = True, check: bool = True, progress: bool = True,
                    keep_archives: bool = False) -> dict[str, Path]:
    """Download and unpack the MSR-VTT annotations (and videos), then check the result.

    Returns ``{"anno_dir": dest/msrvtt_data, "video_dir": dest/MSRVTT/videos/all}``.  Steps whose
    result exists are skipped.  With ``check`` runs :func:`~glscl_lite.data.msrvtt.check_dataset`
    (annotations only when ``videos=False``) and raises :class:`DataError` listing the first
    problems.  Archives are deleted after a successful unpack unless ``keep_archives``.
    """
    dest = ensure_writable_dir(dest)
    anno_url = anno_url or ANNO_URL
    video_url = video_url or VIDEO_URL
    anno_dir = dest / ANNO_DIRNAME
    video_dir = dest / VIDEO_SUBDIR

    if not _anno_complete(anno_dir):
        archive = _fetch_checked_zip(anno_url, dest / "msrvtt_data.zip", progress)
        _unpack(archive, anno_dir, _anno_complete, f"a folder with {', '.join(ANNO_FILES)}")
        if not keep_archives:
            archive.unlink()
    if videos and not _videos_complete(video_dir):
        archive = _fetch_checked_zip(video_url, dest / "MSRVTT.zip", progress)
        _unpack(archive, video_dir, lambda d: d.name == "all" and d.parent.name == "videos"
                and _videos_complete(d), "a videos/all/ folder of .mp4 files")
        if not keep_archives:
            archive.unlink()

    if check:
        from glscl_lite.data import msrvtt

        if videos:
            problems = msrvtt.check_dataset(anno_dir, video_dir, progress=progress)
        else:
            problems = []
            try:
                anno = msrvtt.load_annotations(anno_dir)
                msrvtt.training_pairs(anno, anno_dir / msrvtt.TRAIN_9K_CSV)
                msrvtt.read_caption_csv(anno_dir / msrvtt.TEST_CSV)
            except DataError as exc:
                problems = [str(exc)]
        if problems:
            head = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise DataError(f"{dest}: downloaded data failed the check ({len(problems)} problem(s)):"
                            f"\n  {head}{more}")
    return {"anno_dir": anno_dir, "video_dir": video_dir}
