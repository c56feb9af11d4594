"""Clips per second per CPU core: decode + preprocess on the fly vs reading the frame cache.

Two sets of videos are timed, at image sizes 64 and 224 (``max_frames`` 12, 1 frame/s):

* ``synthetic``: :func:`glscl_lite.data.synthetic.generate_corpus` (160x120, 4 fps);
* ``msrvtt_like``: 320x240, 30 fps, 15 s H.264 clips (the size of raw MSR-VTT videos), written
  with PyAV (moving texture, x264 ``veryfast``).

Each mode runs in this one process with one decoder thread and one torch thread; the per-core
rate is clips per second of this process's CPU time (robust to other jobs on a shared machine),
best of ``--repeats`` passes, with the wall-clock rate next to it.  "decoded" is ``DecodedVideos.get`` (decord ``get_batch`` of the 12 sampled frames +
PIL bicubic resize + center crop + zero padding); "cache" is ``FrameCache.get`` plus the copy into
a torch tensor that ``PairDataset`` makes, with the cache file in the page cache (warm).  The cache
build time (process pool) is reported too.  Writes ``benchmarks/results/decode_<machine>.json``::

    python benchmarks/bench_decode.py                 # 24 videos per set
    python benchmarks/bench_decode.py --videos 48 --repeats 3
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def write_msrvtt_like(video_dir: Path, n: int, seconds: int = 15, fps: int = 30,
                      size: tuple[int, int] = (320, 240), seed: int = 0) -> list[str]:
    import av

    video_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    ids = []
    for k in range(n):
        vid = f"video{k}"
        texture = rng.integers(0, 256, (h, 2 * w, 3), dtype=np.uint8)
        with av.open(str(video_dir / f"{vid}.mp4"), "w") as c:
            s = c.add_stream("libx264", rate=fps)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.options = {"preset": "veryfast", "crf": "23"}
            for i in range(seconds * fps):
                x = (2 * i) % w
                frame = np.ascontiguousarray(texture[:, x:x + w])
                for pkt in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        ids.append(vid)
    return ids


def _time_source(source, ids: list[str], repeats: int, to_tensor: bool) -> dict:
    """Best pass of ``repeats`` passes over ``ids``: wall clock and CPU time of this process.

    CPU time (``time.process_time``, all threads of this process) per clip is the per-core cost
    and is robust to other jobs sharing the machine; the wall clock of the best pass is given too.
    """
    import torch

    for vid in ids[: min(2, len(ids))]:  # warm-up (imports, page cache)
        source.get(vid)
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        for vid in ids:
            frames, mask = source.get(vid)
            if to_tensor:
                torch.from_numpy(np.array(frames, copy=True))
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    n = len(ids)
    wall, cpu = min(walls), min(cpus)
    return {"clips_per_pass": n, "passes": repeats,
            "clips_per_cpu_s": round(n / cpu, 2) if cpu > 0 else None,
            "cpu_ms_per_clip": round(1000 * cpu / n, 3),
            "clips_per_s_wall": round(n / wall, 2),
            "wall_ms_per_clip": round(1000 * wall / n, 3)}


def bench_set(name: str, video_dir: Path, ids: list[str], sizes: list[int], repeats: int,
              workers: int, work: Path) -> list[dict]:
    from glscl_lite.data.cache import DecodedVideos, FrameCache, build_frame_cache

    rows = []
    for size in sizes:
        dec = DecodedVideos(video_dir, max_frames=12, image_size=size)
        rows.append({"set": name, "image_size": size, "mode": "decoded",
                     **_time_source(dec, ids, repeats, to_tensor=True)})
        cache_dir = work / f"cache_{name}_{size}"
        info = build_frame_cache(ids, video_dir, cache_dir, max_frames=12, image_size=size,
                                 workers=workers, progress=False)
        fc = FrameCache(cache_dir)
        rows.append({"set": name, "image_size": size, "mode": "cache",
                     **_time_source(fc, ids, max(repeats, 5), to_tensor=True),
                     "cache_bytes_per_clip": info["bytes"] // len(ids),
                     "cache_build_wall_s": info["seconds"], "cache_build_workers": workers,
                     "cache_build_clips_per_s_wall": round(len(ids) / info["seconds"], 2)})
        shutil.rmtree(cache_dir, ignore_errors=True)
        for r in rows[-2:]:
            print(f"{r['set']:>12} S={size:<3} {r['mode']:>7}: {r['clips_per_cpu_s']:>9} clips/CPU-s "
                  f"({r['cpu_ms_per_clip']} CPU-ms/clip; wall {r['clips_per_s_wall']} clips/s)")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=24, help="videos per set")
    p.add_argument("--repeats", type=int, default=3, help="passes over the videos (best is kept)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--workers", type=int, default=None, help="cache build processes (default: CPUs)")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    import torch

    from glscl_lite.utils import machine_name, machine_slug, write_json_atomic

    torch.set_num_threads(1)
    workers = args.workers or os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-decode-"))
    rows, sets = [], {}
    try:
        from glscl_lite.data.synthetic import generate_corpus

        summary = generate_corpus(work / "synthetic", n_videos=args.videos, seed=0, progress=False)
        syn_dir = work / "synthetic" / "videos"
        syn_ids = sorted(p.stem for p in syn_dir.glob("*.mp4"))
        sets["synthetic"] = {"videos": len(syn_ids), "size": summary["size"], "fps": summary["fps"],
                             "mean_duration_s": summary["mean_duration_s"],
                             "mean_file_kb": round(np.mean([p.stat().st_size for p in syn_dir.glob("*.mp4")]) / 1024, 1)}
        rows += bench_set("synthetic", syn_dir, syn_ids, args.sizes, args.repeats, workers, work)

        real_dir = work / "msrvtt_like"
        t0 = time.perf_counter()
        real_ids = write_msrvtt_like(real_dir, args.videos)
        sets["msrvtt_like"] = {"videos": len(real_ids), "size": "320x240", "fps": 30,
                               "mean_duration_s": 15.0, "write_seconds": round(time.perf_counter() - t0, 1),
                               "mean_file_kb": round(np.mean([p.stat().st_size for p in real_dir.glob("*.mp4")]) / 1024, 1)}
        rows += bench_set("msrvtt_like", real_dir, real_ids, args.sizes, args.repeats, workers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    import decord

    machine = machine_name()
    result = {
        "machine": machine,
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "decord": decord.__version__,
        "max_frames": 12,
        "framerate": 1,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "note": "single process, 1 decoder thread, torch.set_num_threads(1); clips_per_cpu_s = clips "
                "per second of this process's CPU time (= per core, robust to other jobs on the "
                "machine), best of the passes; cache reads are warm (page cache) and include the "
                "copy into a torch tensor",
        "sets": sets,
        "results": rows,
    }
    slug = machine_slug(machine)
    path = write_json_atomic(args.results / f"decode_{slug}.json", result)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
