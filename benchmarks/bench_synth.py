"""Throughput of the synthetic corpus generator (videos per minute).

Generates ``--videos`` videos into a temporary folder (or ``--out``), prints the time and the
rate, and writes ``benchmarks/results/synth_<machine>.json`` (``synth_<machine>_<W>x<H>.json`` for
a non-default size)::

    python benchmarks/bench_synth.py --videos 500
    python benchmarks/bench_synth.py --videos 500 --size 298x224
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import tempfile
from pathlib import Path

from glscl_lite.data.synthetic import DEFAULT_FPS, DEFAULT_SIZE, generate_corpus
from glscl_lite.utils import machine_name, machine_slug, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 160x120")
    return int(m.group(1)), int(m.group(2))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=500)
    p.add_argument("--size", type=_size, default=DEFAULT_SIZE, help="WIDTHxHEIGHT (default 160x120)")
    p.add_argument("--fps", type=int, default=DEFAULT_FPS)
    p.add_argument("--workers", type=int, default=None, help="default: os.cpu_count()")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help="keep the corpus here (default: a temporary folder, deleted afterwards)")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for the result JSON")
    args = p.parse_args(argv)

    load_before = os.getloadavg()[0]  # other work on the machine lowers the rate
    tmp = None
    if args.out is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
        out = tmp / "corpus"
    else:
        out = args.out
        if out.exists():
            shutil.rmtree(out)  # a benchmark must not reuse an existing corpus
    try:
        summary = generate_corpus(out, n_videos=args.videos, seed=args.seed, size=args.size,
                                  fps=args.fps, workers=args.workers, progress=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    machine = machine_name()
    result = {
        "machine": machine,
        "n_videos": summary["n_videos"],
        "size": summary["size"],
        "fps": summary["fps"],
        "workers": summary["workers"],
        "seconds": summary["seconds"],
        "videos_per_minute": summary["videos_per_minute"],
        "total_frames": summary["total_frames"],
        "load_avg_1min_before": round(load_before, 2),
        "date": dt.date.today().isoformat(),
    }
    slug = machine_slug(machine)
    suffix = "" if tuple(args.size) == tuple(DEFAULT_SIZE) else f"_{summary['size']}"
    path = write_json_atomic(args.results / f"synth_{slug}{suffix}.json", result)
    print(f"{summary['n_videos']} videos ({summary['size']}, {summary['fps']} fps, "
          f"{summary['workers']} workers) in {summary['seconds']:.1f} s: "
          f"{summary['videos_per_minute']:.0f} videos/minute -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
