"""Frame cache: every video decoded and preprocessed once into one uint8 memmap.

Layout of a cache folder::

    frames.u8    raw uint8, C order, shape [N, max_frames, S, S, 3] (padded frames are zero)
    index.json   {"format", "version", "video_ids", "n_frames" (the masks), "shape", "dtype",
                  "image_size", "max_frames", "framerate", "source_dir", "missing"}

The folder is built next to its destination under a temporary name and renamed at the end, so
an interrupted build leaves nothing half-written; one builder at a time (a lock beside the
folder), the memmap's bytes are allocated up front (a full disk is an error before decoding, not a
``Bus error``), and temporary folders of killed builders are removed by the next build.  Decoding
runs in a process pool whose workers write their slots of the memmap directly (no frames go
through pickling) and exit when the builder dies.  ``index.json`` records the provenance (every
video's size and mtime, the settings); :meth:`FrameCache.check_source` refuses a cache whose videos
changed.

:class:`DecodedVideos` (decode on the fly) and :class:`FrameCache` both implement
:class:`VideoSource`: ``get(video_id, augment=None) -> (uint8 [T, S, S, 3], int64 mask [T])``,
and return identical arrays for the same video.
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from glscl_lite import provenance, storage
from glscl_lite.data.video import VideoRandAugment, load_clip
from glscl_lite.errors import DataError, UserError
from glscl_lite.utils import ensure_writable_dir

PathLike = Union[str, os.PathLike]

CACHE_FORMAT = "glscl-lite-frame-cache"
CACHE_VERSION = 1
FRAMES_FILE = "frames.u8"
INDEX_FILE = "index.json"


@runtime_checkable
class VideoSource(Protocol):
    """Something that returns preprocessed, padded uint8 clips by video id."""

    max_frames: int
    image_size: int

    def get(self, video_id: str, augment: Optional[VideoRandAugment] = None
            ) -> tuple[np.ndarray, np.ndarray]: ...

    def __contains__(self, video_id: object) -> bool: ...


# ------------------------------------------------------------------------------------ on the fly
class DecodedVideos:
    """Decode ``video_dir/<video_id>.mp4`` on every access (:func:`load_clip`).

    With ``augment`` the RandAugment ops run on the original-resolution frames before resizing, as
    in the official loader.  Picklable (DataLoader workers).
    """

    def __init__(self, video_dir: PathLike, max_frames: int = 12, image_size: int = 224,
                 framerate: int = 1, ext: str = ".mp4"):
        self.video_dir = Path(video_dir)
        self.max_frames = int(max_frames)
        self.image_size = int(image_size)
        self.framerate = int(framerate)
        self.ext = ext

    def __repr__(self) -> str:
        return (f"DecodedVideos({str(self.video_dir)!r}, max_frames={self.max_frames}, "
                f"image_size={self.image_size}, framerate={self.framerate})")

    def path(self, video_id: str) -> Path:
        return self.video_dir / f"{video_id}{self.ext}"

    def __contains__(self, video_id: object) -> bool:
        return isinstance(video_id, str) and self.path(video_id).is_file()

    def get(self, video_id: str, augment: Optional[VideoRandAugment] = None
            ) -> tuple[np.ndarray, np.ndarray]:
        return load_clip(self.path(video_id), self.max_frames, self.image_size, self.framerate,
                         augment=augment)


# ---------------------------------------------------------------------------------------- reading
class FrameCache:
    """Read-only view of a cache folder written by :func:`build_frame_cache`.

    ``get`` returns a read-only numpy view into the memmap (no copy) and the int64 mask; with
    ``augment`` the RandAugment ops run on the cached (already resized) real frames and a new
    array is returned.  Pickles without the memmap (reopened lazily in DataLoader workers).
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        index_path = self.path / INDEX_FILE
        if not index_path.is_file():
            raise DataError(f"{self.path}: not a frame cache ({INDEX_FILE} not found)")
        try:
            index = json.loads(index_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{index_path}: not valid JSON ({exc})") from None
        if not isinstance(index, dict) or index.get("format") != CACHE_FORMAT:
            raise DataError(f"{index_path}: not a {CACHE_FORMAT} index")
        if index.get("version") != CACHE_VERSION:
            raise DataError(f"{index_path}: cache format version {index.get('version')} "
                            f"(this code reads version {CACHE_VERSION}); rebuild the cache")
        try:
            shape = tuple(int(s) for s in index["shape"])
            ids = [str(v) for v in index["video_ids"]]
            n_frames = [int(n) for n in index["n_frames"]]
            self.max_frames = int(index["max_frames"])
            self.image_size = int(index["image_size"])
            self.framerate = int(index.get("framerate", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{index_path}: malformed index ({type(exc).__name__}: {exc})") from None
        expected = (len(ids), self.max_frames, self.image_size, self.image_size, 3)
        if shape != expected or len(n_frames) != len(ids):
            raise DataError(f"{index_path}: index/shape mismatch (shape {list(shape)}, expected "
                            f"{list(expected)} for {len(ids)} videos and {len(n_frames)} masks)")
        if any(not 0 <= n <= self.max_frames for n in n_frames):
            raise DataError(f"{index_path}: n_frames outside [0, {self.max_frames}]")
        frames_path = self.path / FRAMES_FILE
        if not frames_path.is_file():
            raise DataError(f"{self.path}: {FRAMES_FILE} not found")
        size = frames_path.stat().st_size
        want = int(np.prod(shape))
        if size != want:
            raise DataError(f"{frames_path}: truncated or wrong size ({size} bytes, expected {want} "
                            f"for shape {list(shape)}); rebuild the cache")
        self.shape = shape
        self.index = index
        self._ids = ids
        self._pos = {v: i for i, v in enumerate(ids)}
        self._n_frames = np.asarray(n_frames, dtype=np.int64)
        self.missing: dict[str, str] = dict(index.get("missing", {}))
        self._frames: Optional[np.memmap] = None

    def settings(self) -> dict:
        return {"max_frames": self.max_frames, "image_size": self.image_size, "framerate": self.framerate}

    def check_source(self, video_dir: PathLike, anno_dir: Optional[PathLike] = None) -> None:
        """Refuse this cache when the videos in ``video_dir`` are not the ones it was decoded from
        (size or mtime of any cached video differs; videos deleted since are not compared)."""
        recorded = self.index.get("provenance")
        current = provenance.fingerprint(videos=provenance.fingerprint_videos(video_dir, self._ids),
                                         settings=self.settings())
        anno = f"--anno {anno_dir} " if anno_dir else "--anno ANNO_DIR "
        provenance.check(recorded, current, f"{self.path} (frame cache)",
                         f"glscl-lite cache frames {anno}--videos {video_dir} --out {self.path} "
                         f"--size {self.image_size} --max-frames {self.max_frames}")

    # memmaps pickle as full copies: drop it and reopen lazily
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_frames"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def frames(self) -> np.memmap:
        if self._frames is None:
            self._frames = np.memmap(self.path / FRAMES_FILE, dtype=np.uint8, mode="r",
                                     shape=self.shape)
        return self._frames

    def __repr__(self) -> str:
        return f"FrameCache({str(self.path)!r}, videos={len(self)}, shape={list(self.shape)})"

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def video_ids(self) -> list[str]:
        return list(self._ids)

    @property
    def n_frames(self) -> np.ndarray:
        return self._n_frames.copy()

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._pos and video_id not in self.missing

    def get(self, video_id: str, augment: Optional[VideoRandAugment] = None
            ) -> tuple[np.ndarray, np.ndarray]:
        if video_id in self.missing:
            raise DataError(f"{self.path}: video {video_id} is recorded as missing in the cache "
                            f"({self.missing[video_id]})")
        i = self._pos.get(video_id)
        if i is None:
            raise DataError(f"{self.path}: video {video_id} is not in the frame cache")
        n = int(self._n_frames[i])
        mask = np.zeros(self.max_frames, dtype=np.int64)
        mask[:n] = 1
        frames = self.frames[i]
        if augment is not None and n > 0:
            out = np.zeros_like(frames)
            out[:n] = augment(np.asarray(frames[:n]))
            return out, mask
        return frames, mask


    def get_batch(self, video_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``[B, T, S, S, 3]`` and masks ``[B, T]`` of several videos in one memmap read
        (no augmentation; the fast path of the training loader)."""
        rows = []
        for video_id in video_ids:
            if video_id in self.missing or video_id not in self._pos:
                self.get(video_id)  # raises the per-video error
            rows.append(self._pos[video_id])
        rows_arr = np.asarray(rows)
        order = np.argsort(rows_arr, kind="stable")
        frames = np.empty((len(rows),) + self.shape[1:], dtype=np.uint8)
        frames[order] = self.frames[rows_arr[order]]  # sorted reads: sequential on disk
        masks = (np.arange(self.max_frames)[None, :] < self._n_frames[rows_arr][:, None]).astype(np.int64)
        return frames, masks


# ---------------------------------------------------------------------------------------- writing
def _decode_into(args: tuple) -> tuple[int, int, Optional[str]]:
    """Worker: decode one video into slot ``i`` of the memmap at ``frames_path``."""
    i, video_id, video_path, frames_path, shape, framerate = args
    try:
        frames, mask = load_clip(video_path, shape[1], shape[2], framerate)
    except DataError as exc:
        return i, 0, str(exc)
    except Exception as exc:  # pragma: no cover - unexpected decoder failure
        return i, 0, f"{video_path}: unexpected error ({type(exc).__name__}: {exc})"
    mm = np.memmap(frames_path, dtype=np.uint8, mode="r+", shape=shape)
    mm[i] = frames
    mm.flush()
    del mm
    return i, int(mask.sum()), None


def _mp_context(name: Optional[str]):
    if name is None:
        name = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(name)


def _guard_pool(results, out_dir: Path):
    """Turn a dead worker pool into an error that says what to do."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        yield from results
    except BrokenProcessPool as exc:
        raise RuntimeError(
            f"a frame-cache worker process died ({exc}): killed by the system (out of memory?) or, with "
            "mp_context='spawn'/'forkserver', build_frame_cache not called under "
            f"`if __name__ == '__main__':`; {storage.human_bytes(storage.free_bytes(out_dir))} free at "
            f"{out_dir.parent}") from None


def check_frame_settings(max_frames: int, image_size: int, framerate: int = 1) -> None:
    """The arguments of ``cache frames``, blamed by name before any video is touched."""
    for name, flag, value in (("max_frames", "--max-frames", max_frames), ("image_size", "--size", image_size),
                              ("framerate", "framerate", framerate)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UserError(f"{flag} {value}: {name} must be a whole number >= 1")


def build_frame_cache(video_ids: Sequence[str], video_dir: PathLike, out_dir: PathLike,
                      max_frames: int = 12, image_size: int = 224, framerate: int = 1,
                      workers: Optional[int] = None, progress: bool = True,
                      skip_bad: bool = False, mp_context: Optional[str] = None) -> dict:
    """Decode every video once into ``out_dir/frames.u8`` + ``out_dir/index.json``.

    ``workers``: processes (default: CPU count; 1 = decode in this process).  A bad video raises
    :class:`DataError` naming it (nothing is left behind); with ``skip_bad=True`` it is recorded
    under ``"missing"`` in the index (zero frames, mask 0) and reading it raises.  An existing
    ``out_dir`` is replaced only when the new cache is complete.  ``mp_context``: start method
    of the pool (default ``"fork"`` where available, as torch's DataLoader: works from scripts
    without a ``__main__`` guard and from stdin; else ``"spawn"``).  Returns a summary
    (path, videos, shape, bytes, missing, seconds).
    """
    t0 = time.perf_counter()
    check_frame_settings(max_frames, image_size, framerate)
    video_ids = [str(v) for v in video_ids]
    video_dir, out_dir = Path(video_dir), Path(out_dir)
    if not video_ids:
        raise DataError(f"{out_dir}: no videos to cache")
    dup = len(video_ids) - len(set(video_ids))
    if dup:
        raise DataError(f"{out_dir}: the video list has {dup} duplicate id(s)")
    if not video_dir.is_dir():
        raise DataError(f"{video_dir}: video folder not found")
    ensure_writable_dir(out_dir.parent)
    shape = (len(video_ids), int(max_frames), int(image_size), int(image_size), 3)
    n_frames = [0] * len(video_ids)
    missing: dict[str, str] = {}
    nbytes = int(np.prod(shape))
    storage.require_free_space(out_dir, nbytes)  # before anything is written
    source = provenance.fingerprint(videos=provenance.fingerprint_videos(video_dir, video_ids),
                                    settings={"max_frames": int(max_frames), "image_size": int(image_size),
                                              "framerate": int(framerate)})
    with storage.building(out_dir, "frame cache") as tmp:
        tmp.mkdir(parents=True)
        frames_path = tmp / FRAMES_FILE
        with open(frames_path, "wb") as f:  # zero file of the final size ...
            f.truncate(nbytes)
        storage.reserve(frames_path, nbytes)  # ... with its blocks allocated: no SIGBUS on a full disk
        jobs = [(i, v, video_dir / f"{v}.mp4", str(frames_path), shape, framerate)
                for i, v in enumerate(video_ids)]
        n_workers = min(workers or os.cpu_count() or 1, len(jobs))
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="frame cache", unit="video", disable=not progress)
        try:
            if n_workers <= 1:
                results = map(_decode_into, jobs)
                pool = None
            else:
                pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=_mp_context(mp_context),
                                           initializer=storage.die_with_parent, initargs=(os.getpid(),))
                chunk = max(1, min(16, math.ceil(len(jobs) / (4 * n_workers))))
                results = pool.map(_decode_into, jobs, chunksize=chunk)
            try:
                for i, n, err in _guard_pool(results, out_dir):
                    bar.update(1)
                    if err is not None:
                        if not skip_bad:
                            raise DataError(f"{video_ids[i]}: {err}")
                        missing[video_ids[i]] = err
                    n_frames[i] = n
            finally:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
        finally:
            bar.close()
        index = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "shape": list(shape),
            "dtype": "uint8",
            "image_size": int(image_size),
            "max_frames": int(max_frames),
            "framerate": int(framerate),
            "source_dir": str(video_dir.resolve()),
            "video_ids": video_ids,
            "n_frames": n_frames,
            "missing": missing,
            "provenance": source,
        }
        (tmp / INDEX_FILE).write_text(json.dumps(index) + "\n")
    return {
        "path": str(out_dir),
        "videos": len(video_ids),
        "shape": list(shape),
        "bytes": nbytes,
        "missing": sorted(missing),
        "seconds": round(time.perf_counter() - t0, 3),
    }
