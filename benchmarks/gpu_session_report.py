"""Check and summarise the results of ``benchmarks/gpu_session.sh`` (issue 14).

Every measurement must be in its JSON file with its keys, else this exits 1 and names what is
missing -- a half-finished session is never reported as a result.  Prints one summary table
against the goals and writes it as ``session_summary.json``::

    python benchmarks/gpu_session_report.py --results benchmarks/results --slug nvidia_h200 \\
        --steps-file STATUS_FILE --out DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HEADS = ("meanp", "glscl", "xclip_like", "xpool_like", "glccl", "eercf")
GPU_KEYS = {
    "corpus": ("videos", "synth_seconds", "frame_cache_seconds"),
    "eval": ("end_to_end_seconds", "encode_seconds", "match_seconds", "head_only_seconds"),
    "train_eager": ("clips_per_s", "step_seconds", "mfu_vs_measured_peak", "peak_memory_GiB"),
    "train_compiled": ("clips_per_s", "step_seconds", "mfu_vs_measured_peak", "peak_memory_GiB"),
    "features": ("train_seconds_5_epochs_incl_evals", "clips_per_s", "steps_per_epoch", "extrapolated"),
}
GOALS = {"train_compiled": ("clips_per_s", ">=", 900), "features": ("train_seconds_5_epochs_incl_evals", "<=", 300),
         "eval": ("end_to_end_seconds", "<=", 1.0)}


def check_gpu(path: Path, problems: list[str]) -> dict:
    if not path.is_file():
        problems.append(f"{path}: missing")
        return {}
    data = json.loads(path.read_text())
    for phase, keys in GPU_KEYS.items():
        if phase not in data:
            problems.append(f"{path.name}: phase {phase!r} missing")
            continue
        miss = [k for k in keys if k not in data[phase]]
        if miss:
            problems.append(f"{path.name}: {phase} lacks {miss}")
    return data


def check_latency(path: Path, sizes: list[int], problems: list[str]) -> dict:
    if not path.is_file():
        problems.append(f"{path}: missing")
        return {}
    data = json.loads(path.read_text())
    if not data.get("setups"):
        problems.append(f"{path.name}: no setups")
    for backbone, setup in data.get("setups", {}).items():
        for head in HEADS:
            rows = setup.get("heads", {}).get(head)
            if not rows:
                problems.append(f"{path.name}: {backbone} lacks head {head}")
                continue
            got = sorted(r["gallery"] for r in rows)
            if got != sorted(sizes):
                problems.append(f"{path.name}: {backbone}/{head} galleries {got} != {sorted(sizes)}")
    return data


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--slug", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--steps-file", type=Path, help="lines 'step status seconds' written by gpu_session.sh")
    p.add_argument("--gallery", type=Path, help="gallery export folder (gallery_info.json when complete)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    problems: list[str] = []
    gpu = check_gpu(args.results / f"gpu_{args.slug}.json", problems)
    lat = check_latency(args.results / f"latency_{args.slug}.json", args.sizes, problems)
    steps = {}
    if args.steps_file and args.steps_file.is_file():
        for line in args.steps_file.read_text().splitlines():
            name, status, secs = line.split()
            steps[name] = {"status": status, "seconds": int(secs)}
    gallery_done = bool(args.gallery and (args.gallery / "gallery_info.json").is_file())

    print(f"\n==== GPU session summary ({gpu.get('machine') or lat.get('machine')}) ====")
    for name, s in steps.items():
        print(f"  step {name:15s} {s['status']:10s} {s['seconds']:4d} s")
    rows = []
    for phase, (key, op, goal) in GOALS.items():
        v = gpu.get(phase, {}).get(key)
        met = None if v is None else (v >= goal if op == ">=" else v <= goal)
        extra = " (extrapolated)" if gpu.get(phase, {}).get("extrapolated") else ""
        rows.append({"measurement": f"{phase}.{key}", "value": v, "goal": f"{op} {goal}", "met": met})
        print(f"  {phase + '.' + key:45s} {v!s:>10}{extra}  goal {op} {goal}: "
              f"{'MET' if met else 'not met' if met is not None else 'NOT MEASURED'}")
    if "train_eager" in gpu:
        print(f"  {'train_eager.clips_per_s':45s} {gpu['train_eager']['clips_per_s']:>10}")
    for backbone, setup in lat.get("setups", {}).items():
        print(f"  per-query latency, {backbone} on {lat.get('device')} (head + text tower), ms:")
        for head, hrows in setup.get("heads", {}).items():
            cells = "  ".join(f"{r['gallery']:>6}: {1e3 * r['query_seconds']:8.2f}{'*' if r['extrapolated'] else ' '}"
                              for r in sorted(hrows, key=lambda r: r["gallery"]))
            print(f"    {head:11s} {cells}")
    print(f"  gallery_gpu.sh: {'complete' if gallery_done else 'INCOMPLETE (time cap; see the session log)'}")
    summary = {"machine": gpu.get("machine") or lat.get("machine"), "steps": steps, "goals": rows,
               "gallery_complete": gallery_done, "problems": problems}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "session_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if problems:
        print("\nFAILED -- missing measurements (nothing above is complete without them):", file=sys.stderr)
        for pr in problems:
            print(f"  - {pr}", file=sys.stderr)
        return 1
    print("\nall measurements present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
