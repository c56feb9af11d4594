"""Continued pretraining of the stand-in CLIP on a lent GPU, in one device call (issue 11).

On the CPU the stand-in is rendering- and compute-bound at ~130 pairs/s; on a GPU the model's step
is milliseconds and the frames rendered on the fly by the CPU cores are the bottleneck.  This script

1. times a short throw-away run of the real loop (``pretrain(..., device="cuda", workers=W)``) to
   measure pairs per second *end to end*, rendering included;
2. sizes the real run to ``--train-seconds`` from that rate (the step count is a setting of the run,
   so the cosine schedule is sized before it starts) and trains it;
3. evaluates it like every stand-in (``finish_pretraining``: zero-shot on 1,000 held-out frames,
   seed 0, fp16 weights) and writes what comes back to ``--out-files`` (the device tool's ``$OUT``):
   ``weights.fp16.pt``, ``weights.json``, ``settings.json``, ``metrics.jsonl``, ``zeroshot.json`` and
   ``session.json`` (device name, cores, workers, measured rates, wall times).

Run through the device tool (wheels of open_clip_torch, ftfy and wcwidth carried in ``.whl/pretrain``)::

    run(command="python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/pretrain/*.whl && "
                "PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 python3 benchmarks/gpu_pretrain.py "
                "--out-files $OUT", carry=[".whl/pretrain"], timeout_s=540)

Dry run here (CPU, tiny model, seconds): ``python benchmarks/gpu_pretrain.py --tiny --out-files /tmp/gp``.
Fails loudly: any error exits non-zero before ``session.json`` says ``complete``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glscl_lite.pretrain import PretrainSettings, finish_pretraining, pretrain, read_log  # noqa: E402
from glscl_lite.utils import write_json_atomic  # noqa: E402

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-files", required=True, type=Path, help="folder whose files come back ($OUT)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/gpu-pretrain"))
    ap.add_argument("--train-seconds", type=float, default=330.0, help="wall seconds for the real run")
    ap.add_argument("--probe-steps", type=int, default=60)
    ap.add_argument("--workers", type=int, default=None, help="rendering processes (default: cores - 1)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--twin-attributes", nargs="+", default=["shape"],
                    help="what twins change (default shape: the stop-20 CPU A/B kept every attribute with it)")
    ap.add_argument("--set-size", type=int, default=2, help="frames per minimal set (2: twins; 8: all shapes)")
    ap.add_argument("--partial-captions", type=float, default=0.5,
                    help="fraction of partial captions (default 0.5: the stop-23 CPU A/B, +14.6 zero-shot shape)")
    ap.add_argument("--frames", type=int, default=1000, help="zero-shot report frames")
    ap.add_argument("--tiny", action="store_true", help="CPU dry run: glscl-tiny from scratch, a few steps")
    args = ap.parse_args()

    t0 = time.perf_counter()
    cores = os.cpu_count() or 1
    workers = args.workers if args.workers is not None else max(1, cores - 1)
    if args.tiny:
        base = dict(model="glscl-tiny", batch_size=16, lr=2e-3, warmup=2, seed=args.seed, twins=1.0,
                    twin_attributes=tuple(args.twin_attributes), set_size=args.set_size,
                    partial_captions=args.partial_captions)
    else:
        base = dict(model="glscl-synthetic-hybrid", batch_size=args.batch_size, lr=args.lr, warmup=100,
                    seed=args.seed, twins=1.0, twin_attributes=tuple(args.twin_attributes), init="shipped",
                    set_size=args.set_size, partial_captions=args.partial_captions)
    on_gpu = args.device.startswith("cuda") and torch.cuda.is_available()  # else pretrain() says why, clearly
    session: dict = {"device": torch.cuda.get_device_name(0) if on_gpu else args.device,
                     "torch": torch.__version__, "cores": cores, "workers": workers, "complete": False,
                     "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in base.items()}}
    args.out_files.mkdir(parents=True, exist_ok=True)
    if args.work.exists():
        shutil.rmtree(args.work)
    print(json.dumps(session), flush=True)

    # 1. end-to-end rate of the real loop (rendering workers + GPU step), on a throw-away run
    probe_steps = max(args.probe_steps, 2 * workers + 10)
    tp = time.perf_counter()
    for attempt in ("file_descriptor", "file_system", "no workers"):  # a sandbox's small /dev/shm: fall back
        try:
            if attempt == "file_system":
                torch.multiprocessing.set_sharing_strategy("file_system")
            if attempt == "no workers":
                workers = 0
            shutil.rmtree(args.work / "probe", ignore_errors=True)
            pretrain(PretrainSettings(steps=probe_steps, **{**base, "warmup": min(base["warmup"], probe_steps - 1)}),
                     args.work / "probe", threads=2, progress=False, workers=workers, device=args.device,
                     checkpoint_every=10**9, log_every=5)
            break
        except Exception as exc:  # noqa: BLE001 -- reported, then the next way is tried; the last one raises
            print(f"probe with {attempt} failed: {exc!r}", flush=True)
            if attempt == "no workers":
                raise
            session.setdefault("fallbacks", []).append(f"{attempt}: {exc!r}"[:300])
    session["workers"] = workers
    probe_wall = time.perf_counter() - tp
    log = read_log(args.work / "probe")
    rate = log[-1]["pairs_per_s"]  # measured from the loader's first batch on: worker start-up included
    steps = max(base["warmup"] + 1, int(rate * args.train_seconds / base["batch_size"]))
    session.update(probe={"steps": probe_steps, "wall_s": round(probe_wall, 1), "pairs_per_s": rate},
                   steps=steps)
    write_json_atomic(args.out_files / "session.json", session)  # what is known so far, should the run die
    print(f"probe: {probe_steps} steps, {rate:.0f} pairs/s end to end -> {steps} steps for "
          f"{args.train_seconds:.0f} s", flush=True)

    # 2. the real run
    settings = PretrainSettings(steps=steps, **base)
    run = args.work / "run"
    tr = time.perf_counter()
    last = pretrain(settings, run, threads=2, progress=False, workers=workers, device=args.device,
                    checkpoint_every=500, log_every=25)
    session.update(train={"wall_s": round(time.perf_counter() - tr, 1), "last": last})
    print(f"trained {steps} steps in {session['train']['wall_s']} s: {last}", flush=True)

    # 3. the report every stand-in gets (CPU model, fp16 weights), then what comes back
    te = time.perf_counter()
    report = finish_pretraining(run, frames=args.frames)
    session.update(report={"wall_s": round(time.perf_counter() - te, 1), "zero_shot": report["zero_shot"],
                           "retrieval": report["retrieval"]})
    for name in ("weights.fp16.pt", "weights.json", "settings.json", "metrics.jsonl", "zeroshot.json"):
        shutil.copy2(run / name, args.out_files / name)
    session.update(complete=True, wall_s=round(time.perf_counter() - t0, 1))
    write_json_atomic(args.out_files / "session.json", session)
    print(json.dumps(session["report"], indent=1), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
