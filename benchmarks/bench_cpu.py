"""CPU figures for the training and evaluation engine (issue 4): smoke training steps/s and
evaluation time, on this machine.  Writes ``benchmarks/results/cpu_<machine>.json``.

    python benchmarks/bench_cpu.py [--videos 48] [--steps 40]

* ``smoke_train``: the ``smoke`` preset (tiny open_clip model, 64-px frame cache, batch 16) --
  optimiser steps per second after the first 5 steps, and the wall time of a whole smoke run;
* ``eval_corpus``: evaluation of the trained smoke run on the corpus' test split (encoding included);
* ``eval_1k_head``: GLSCL head on 1,000 texts x 1,000 videos of random CLIP features at the tiny
  model's width (per-item temporal + LIM, then the chunked pairwise scores), as in the GPU table.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glscl_lite.config import load_preset  # noqa: E402
from glscl_lite.utils import machine_name, machine_slug, write_json_atomic  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=48)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    from glscl_lite.data.splits import build_splits, video_source
    from glscl_lite.data.synthetic import generate_corpus
    from glscl_lite.evaluate import evaluate_model, load_run_model
    from glscl_lite.train import read_metrics, train

    res = {"machine": machine_name(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "synthetic"
        generate_corpus(corpus, n_videos=args.videos, progress=False)
        cfg = load_preset("smoke").replace(anno_path=str(corpus), video_path=str(corpus / "videos"),
                                           frame_cache=str(corpus / "frames-64"), max_steps=args.steps,
                                           log_every=1)
        t0 = time.time()
        train(cfg, (), tmp / "run", progress=False)
        wall = time.time() - t0
        steps = [r for r in read_metrics(tmp / "run") if r["split"] == "train" and r["step"] > 5]
        sps = sum(r["clips_per_s"] for r in steps) / len(steps) / cfg.batch_size
        res["smoke_train"] = {"steps": args.steps, "batch": cfg.batch_size, "steps_per_s": round(sps, 2),
                              "clips_per_s": round(sps * cfg.batch_size, 1),
                              "wall_seconds_incl_frame_cache_and_evals": round(wall, 1)}
        model, cfg2, dev = load_run_model(tmp / "run")
        splits = build_splits(cfg2)
        r = evaluate_model(model, splits.test, cfg2, dev, source=video_source(cfg2, 64))
        res["eval_corpus"] = {"n_texts": r["n_texts"], "n_videos": r["n_videos"],
                              "seconds_feat": r["seconds_feat"], "seconds_match": r["seconds_match"]}
        torch.manual_seed(0)
        D, T, L, N = 64, 12, 32, 1000
        sent, words = torch.randn(N, D), torch.randn(N, L, D)
        tmask = torch.ones(N, L, dtype=torch.long)
        frames, vmask = torch.randn(N, T, D), torch.ones(N, T, dtype=torch.long)
        with torch.no_grad():
            t0 = time.perf_counter()
            ts = model.encode_text_features(sent, words, tmask)
            vs = model.encode_video_features(frames, vmask)
            t1 = time.perf_counter()
            model.similarity(ts, vs)
            t2 = time.perf_counter()
        res["eval_1k_head"] = {"dim": D, "encode_seconds": round(t1 - t0, 3), "match_seconds": round(t2 - t1, 3)}
    out = args.out or Path(__file__).parent / "results" / f"cpu_{machine_slug()}.json"
    write_json_atomic(out, res)
    print(res)


if __name__ == "__main__":
    main()
