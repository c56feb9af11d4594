"""The corpus on disk: :func:`generate_corpus` writes the MSR-VTT layout (json, CSVs, videos, probes).

Part of :mod:`glscl_lite.data.synthetic` (the package re-exports every name).
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import errno
import io
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from glscl_lite import storage
from glscl_lite.data.synthetic.captions import make_captions
from glscl_lite.data.synthetic.rendering import encode_video, render_video
from glscl_lite.data.synthetic.sampling import _pick_weighted, make_hard_negative, sample_scene, scene_rng
from glscl_lite.data.synthetic.scenes import Caption, Scene
from glscl_lite.data.synthetic.settings import (
    DEFAULT_FPS,
    DEFAULT_SIZE,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    HARD_NEGATIVE_ATTRIBUTES,
    HARD_NEGATIVE_PAIR_PROB,
    HARD_NEGATIVE_WEIGHTS,
    MIN_TEST_VIDEOS,
    MIN_VIDEOS,
    SEVEN_K_FRACTION,
    TEST_FRACTION,
    VALIDATE_FRACTION,
)
from glscl_lite.data.synthetic.vocabulary import BACKGROUND_KINDS, CAPTION_KINDS, SynthesisError
from glscl_lite.utils import OutputError, PathLike, ensure_writable_dir


@dataclass(frozen=True)
class _VideoJob:
    index: int
    video_id: str
    scene: Scene
    caption_seed: tuple[int, int]


def _process_chunk(jobs: Sequence[_VideoJob], video_dir: str, size: tuple[int, int],
                   fps: int) -> list[tuple[int, list[Caption], int]]:
    """Worker: render, encode and caption a few videos; returns (index, captions, n_frames).
    A full disk is re-raised as a plain ``OSError(ENOSPC)`` (PyAV's errors do not cross processes)."""
    from glscl_lite.storage import is_disk_full

    out = []
    for job in jobs:
        frames = render_video(job.scene, size, fps)
        path = Path(video_dir) / f"{job.video_id}.mp4"
        try:
            encode_video(frames, path, fps)
        except OSError as exc:
            if is_disk_full(exc):
                raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
            raise
        captions = make_captions(job.scene, scene_rng(job.caption_seed[0], job.caption_seed[1], 2))
        out.append((job.index, captions, len(frames)))
    return out


def _split_plan(n_videos: int, seed: int) -> dict[str, list[int]]:
    """Indices per list, with MSR-VTT's proportions.

    Like the real archive, the 7k list is a prefix of the ids (json split train + validate),
    the other videos are json split "test", and the 1k-A (JSFUSION) test videos are a random
    subset of those; the 9k list is every video not in the JSFUSION test list.
    """
    n_test = max(MIN_TEST_VIDEOS, int(round(n_videos * TEST_FRACTION)))
    n_9k = n_videos - n_test
    n_7k = int(round(n_9k * SEVEN_K_FRACTION))
    n_val = max(1, int(round(n_7k * VALIDATE_FRACTION)))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), n_videos, 9]))
    json_test = np.arange(n_7k, n_videos)
    jsfusion = rng.permutation(json_test)[:n_test]
    in_test = set(int(i) for i in jsfusion)
    return {
        "train": list(range(0, n_7k - n_val)),
        "validate": list(range(n_7k - n_val, n_7k)),
        "json_test": [int(i) for i in json_test],
        "7k": list(range(n_7k)),
        "9k": [i for i in range(n_videos) if i not in in_test],
        "jsfusion": [int(i) for i in jsfusion],
    }


def _plan_scenes(n_videos: int, seed: int, groups: Sequence[Sequence[int]]
                 ) -> tuple[list[Scene], dict[int, tuple[int, str]]]:
    """Scenes for every video; consecutive videos of a group may form hard-negative pairs.

    Returns the scenes and ``{copy_index: (base_index, attribute)}``.  Each group with at least
    two videos gets at least one pair; pairs never cross groups (no train/test leakage).
    """
    structure = np.random.default_rng(np.random.SeedSequence([int(seed), n_videos, 7]))
    pair_of: dict[int, tuple[int, str]] = {}
    base_requirement: dict[int, str] = {}
    for group in groups:
        members = sorted(group)
        pairs = [(members[i], members[i + 1]) for i in range(0, len(members) - 1, 2)]
        chosen = [p for p in pairs if structure.random() < HARD_NEGATIVE_PAIR_PROB]
        if pairs and not chosen:
            chosen = [pairs[int(structure.integers(len(pairs)))]]
        for a, b in chosen:
            attribute = _pick_weighted(structure, HARD_NEGATIVE_ATTRIBUTES, HARD_NEGATIVE_WEIGHTS)
            pair_of[b] = (a, attribute)
            base_requirement[a] = attribute
    scenes: list[Optional[Scene]] = [None] * n_videos
    for i in range(n_videos):
        if i not in pair_of:
            scenes[i] = sample_scene(scene_rng(seed, i, 0), require=base_requirement.get(i))
    for b, (a, attribute) in pair_of.items():
        base = scenes[a]
        assert base is not None
        scenes[b] = make_hard_negative(base, attribute, scene_rng(seed, b, 1))
    return [s for s in scenes if s is not None], pair_of


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue())


def _resolve(size: Optional[tuple[int, int]], fps: Optional[int], workers: Optional[int],
             n_videos: int) -> tuple[tuple[int, int], int, int]:
    width, height = size if size is not None else DEFAULT_SIZE
    fps = DEFAULT_FPS if fps is None else int(fps)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if n_videos < MIN_VIDEOS:
        raise SynthesisError(f"--videos {n_videos}: need at least {MIN_VIDEOS} "
                             f"({MIN_TEST_VIDEOS} test videos and at least as many for training)")
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise SynthesisError(f"--size {width}x{height}: width and height must be even and at least 32 "
                             "(H.264 yuv420p needs even sizes)")
    if not 1 <= fps <= 60:
        raise SynthesisError(f"--fps {fps}: must be between 1 and 60")
    if workers < 1:
        raise SynthesisError(f"--workers {workers}: must be at least 1")
    return (int(width), int(height)), fps, workers


def _generator_params(n_videos: int, seed: int, size: tuple[int, int], fps: int) -> dict[str, Any]:
    return {"name": GENERATOR_NAME, "version": GENERATOR_VERSION, "seed": int(seed),
            "n_videos": int(n_videos), "size": [size[0], size[1]], "fps": int(fps)}


def _existing_corpus(out: Path) -> Optional[dict[str, Any]]:
    """The parsed MSRVTT_data.json of a synthetic corpus at ``out``, or None."""
    anno = out / "MSRVTT_data.json"
    if not anno.is_file():
        return None
    try:
        data = json.loads(anno.read_text())
    except (OSError, ValueError):
        return None
    generator = data.get("info", {}).get("generator") if isinstance(data, dict) else None
    return data if isinstance(generator, dict) and generator.get("name") == GENERATOR_NAME else None


def _is_complete(out: Path, data: dict[str, Any], params: dict[str, Any]) -> bool:
    if data["info"].get("generator") != params:
        return False
    names = ("MSRVTT_train.9k.csv", "MSRVTT_train.7k.csv", "MSRVTT_JSFUSION_test.csv")
    if not all((out / n).is_file() for n in names):
        return False
    videos = out / "videos"
    for v in data["videos"]:
        path = videos / f"{v['video_id']}.mp4"
        if not path.is_file() or path.stat().st_size == 0:
            return False
    from glscl_lite.data.probes import probes_complete

    return probes_complete(out)


def _summary(data: dict[str, Any], out: Path, seconds: float, workers: int,
             reused: bool) -> dict[str, Any]:
    videos = data["videos"]
    info = data["info"]
    params = info["generator"]
    frames = [v["synthetic"]["n_frames"] for v in videos]
    durations = [v["end time"] - v["start time"] for v in videos]
    return {
        "out_dir": str(out),
        "n_videos": len(videos),
        "n_train": info["n_train_9k"],
        "n_train_7k": info["n_train_7k"],
        "n_test": info["n_test"],
        "n_captions": len(data["sentences"]),
        "n_hard_negative_pairs": len(info["hard_negative_pairs"]),
        "seed": params["seed"],
        "size": f"{params['size'][0]}x{params['size'][1]}",
        "fps": params["fps"],
        "total_frames": int(sum(frames)),
        "mean_duration_s": round(float(np.mean(durations)), 3),
        "videos_under_12s": int(sum(d < 12 for d in durations)),
        "workers": workers,
        "reused": reused,
        "seconds": round(seconds, 3),
        "videos_per_minute": None if reused or seconds <= 0 else round(60.0 * len(videos) / seconds, 1),
        "probes": _probe_summary(out),
    }


def _probe_summary(out: Path) -> Optional[dict[str, Any]]:
    from glscl_lite.data.probes import probe_summary

    return probe_summary(out)


def generate_corpus(out_dir: PathLike, n_videos: int = 48, seed: int = 0,
                    size: Optional[tuple[int, int]] = None, fps: Optional[int] = None,
                    workers: Optional[int] = None, progress: bool = True) -> dict[str, Any]:
    """Write a synthetic corpus in the MSR-VTT layout to ``out_dir`` and return a summary.

    ``size`` is (width, height), default 160x120; ``fps`` defaults to 4; ``workers`` (default
    ``os.cpu_count()``) processes render and encode videos in parallel.  The corpus is built in
    a temporary sibling folder and renamed onto ``out_dir`` at the end.  If ``out_dir`` already
    holds a complete corpus with the same parameters it is reused (``summary["reused"]``);
    a synthetic corpus with other parameters is replaced.  Raises :class:`OutputError` when
    ``out_dir`` cannot be written or is a non-empty folder that is not a synthetic corpus.
    """
    start = time.perf_counter()
    size, fps, workers = _resolve(size, fps, workers, int(n_videos))
    n_videos, seed = int(n_videos), int(seed)
    out = Path(out_dir).expanduser().absolute()
    params = _generator_params(n_videos, seed, size, fps)

    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; cannot write the synthetic corpus there")
    if out.is_dir():
        existing = _existing_corpus(out)
        if existing is not None and _is_complete(out, existing, params):
            return _summary(existing, out, time.perf_counter() - start, workers, reused=True)
        if existing is None and any(out.iterdir()):
            raise OutputError(f"{out}: folder is not empty and holds no synthetic corpus; "
                              "choose a new or empty folder (it would be replaced)")
    try:
        ensure_writable_dir(out.parent)
    except OutputError as exc:
        raise OutputError(f"{out}: cannot write the synthetic corpus ({exc})") from None

    plan = _split_plan(n_videos, seed)
    scenes, pair_of = _plan_scenes(n_videos, seed, [plan["9k"], plan["jsfusion"]])
    video_ids = [f"video{i}" for i in range(n_videos)]
    jobs = [_VideoJob(i, video_ids[i], scenes[i], (seed, i)) for i in range(n_videos)]
    results: dict[int, tuple[list[Caption], int]] = {}

    try:
        with storage.building(out, "synthetic corpus") as tmp:  # one writer; stale temps removed
            video_dir = tmp / "videos"
            video_dir.mkdir(parents=True)
            try:
                _run_jobs(jobs, str(video_dir), size, fps, workers, progress, results)
            except OSError as exc:
                if not storage.is_disk_full(exc):
                    raise
                raise storage.disk_full_error(out, _estimated_bytes(video_dir, len(jobs))) from None
            data = _annotations(params, plan, scenes, pair_of, video_ids, results, fps)
            (tmp / "MSRVTT_data.json").write_text(json.dumps(data))
            _write_csv(tmp / "MSRVTT_train.9k.csv", ["video_id"], ([video_ids[i]] for i in plan["9k"]))
            seven_k = sorted(video_ids[i] for i in plan["7k"])  # the real file is sorted as strings
            _write_csv(tmp / "MSRVTT_train.7k.csv", ["video_id"], ([v] for v in seven_k))
            _write_csv(tmp / "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"],
                       _jsfusion_rows(plan["jsfusion"], video_ids, results, seed))
            from glscl_lite.data.probes import write_probes

            write_probes(tmp, seed, scenes, plan["jsfusion"], video_ids, size, fps, workers, progress)
    except PermissionError as exc:
        raise OutputError(f"{out}: cannot write the synthetic corpus ({exc.strerror or exc})") from None
    return _summary(data, out, time.perf_counter() - start, workers, reused=False)


def _estimated_bytes(video_dir: Path, n_videos: int) -> Optional[int]:
    """Bytes the whole corpus needs, extrapolated from the complete videos written so far."""
    sizes = [p.stat().st_size for p in video_dir.glob("*.mp4") if p.stat().st_size > 0]
    return int(sum(sizes) / len(sizes) * n_videos * 1.05) if sizes else None


def _start_method() -> str:
    """``fork`` on Linux: workers start instantly and it works from scripts without a
    ``__main__`` guard and from stdin; workers only use numpy and PyAV, so forking a process
    that has imported torch is harmless.  ``spawn`` elsewhere."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _run_jobs(jobs: list[_VideoJob], video_dir: str, size: tuple[int, int], fps: int, workers: int,
              progress: bool, results: dict[int, tuple[list[Caption], int]]) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="synth", unit="video", disable=not progress)
    try:
        if workers == 1:
            for job in jobs:
                for index, captions, n_frames in _process_chunk([job], video_dir, size, fps):
                    results[index] = (captions, n_frames)
                bar.update(1)
            return
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
        ctx = multiprocessing.get_context(_start_method())
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx,
                                    initializer=storage.die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(_process_chunk, c, video_dir, size, fps) for c in chunks]
            try:
                for fut in cf.as_completed(futures):
                    done = fut.result()
                    for index, captions, n_frames in done:
                        results[index] = (captions, n_frames)
                    bar.update(len(done))
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        bar.close()


def _annotations(params: dict[str, Any], plan: dict[str, list[int]], scenes: list[Scene],
                 pair_of: dict[int, tuple[int, str]], video_ids: list[str],
                 results: dict[int, tuple[list[Caption], int]], fps: int) -> dict[str, Any]:
    """The MSRVTT_data.json object."""
    split_of = {i: "train" for i in plan["train"]}
    split_of.update({i: "validate" for i in plan["validate"]})
    split_of.update({i: "test" for i in plan["json_test"]})
    videos, sentences = [], []
    for i, scene in enumerate(scenes):
        captions, n_frames = results[i]
        base = pair_of.get(i)
        videos.append({
            "category": BACKGROUND_KINDS.index(scene.background.kind),
            "url": f"synthetic://glscl-lite/{video_ids[i]}",
            "video_id": video_ids[i],
            "start time": 0.0,
            "end time": round(n_frames / fps, 4),
            "split": split_of[i],
            "id": i,
            "synthetic": {
                "scene": scene.to_dict(),
                "n_frames": n_frames,
                "caption_kinds": [c.kind for c in captions],
                "caption_objects": [list(c.objects) for c in captions],
                "hard_negative_of": video_ids[base[0]] if base else None,
                "differs_in": base[1] if base else None,
            },
        })
        for cap in captions:
            sentences.append({"caption": cap.text, "video_id": video_ids[i], "sen_id": len(sentences)})
    pairs = [[video_ids[a], video_ids[b], attribute] for b, (a, attribute) in sorted(pair_of.items())]
    info = {
        "contributor": "glscl-lite synthetic generator",
        "description": "Synthetic stand-in for MSR-VTT: coloured shapes moving on varied backgrounds, "
                       "20 template captions per video, hard-negative near copies. Same layout as "
                       "the MSR-VTT annotation archive.",
        "url": "",
        "version": str(GENERATOR_VERSION),
        "generator": params,
        "n_train_9k": len(plan["9k"]),
        "n_train_7k": len(plan["7k"]),
        "n_test": len(plan["jsfusion"]),
        "caption_kinds": list(CAPTION_KINDS),
        "hard_negative_pairs": pairs,
    }
    return {"info": info, "videos": videos, "sentences": sentences}


def _jsfusion_rows(test: list[int], video_ids: list[str], results: dict[int, tuple[list[Caption], int]],
                   seed: int) -> list[list[str]]:
    """One row per test video with one of its captions, chosen deterministically."""
    rows = []
    for key, i in enumerate(test):
        captions = results[i][0]
        choice = int(scene_rng(seed, i, 3).integers(len(captions)))
        rows.append([f"ret{key}", f"msr{i}", video_ids[i], captions[choice].text])
    return rows
