"""GPU benchmarks for the training and evaluation engine (issue 4), one JSON file per machine.

On a synthetic corpus at 224 px with ViT-B/32 (random init), 12 frames, batch 128, bf16:

* ``train``    end-to-end training throughput from the frame cache, data loading included
               (clips/s, MFU from FLOPs counted with torch.utils.flop_counter, peak memory);
* ``features`` feature-cache build time, then 5 epochs of feature-cache training over every
               training caption (temporal transformer + LIM only);
* ``eval``     1,000 x 1,000 evaluation: encoding included, head only (cached CLIP features), and
               the official block loop (LIM recomputed for every 16 x 16 block) for comparison.

Usage (all phases, corpus generated on the spot)::

    python benchmarks/bench_gpu.py --corpus /tmp/c224 --videos 10000 --out benchmarks/results/gpu.json

Phases (``--phases``, comma-separated): ``corpus``, ``train_eager``, ``train_compiled`` (``train`` =
the one ``--compile`` picks), ``eval``, ``features``.  ``--feature-steps N`` trains N steps of the
5-epoch schedule and extrapolates the 5-epoch time (flagged ``extrapolated``); ``--no-official-loop``
skips the 27 s block-loop comparison; ``--synth-size 160x120`` renders a cheaper corpus (the frame
cache is 224 px either way, so the training and evaluation inputs are the same size).
``benchmarks/gpu_session.sh`` runs them all within a device-time budget.

Never a test: figures go to the JSON file and the README table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from glscl_lite.config import Config, load_preset  # noqa: E402
from glscl_lite.utils import machine_name, write_json_atomic  # noqa: E402

PEAK_BF16_TFLOPS = 798.0  # measured 8192^3 bf16 matmul on this H100 (device KINDS.md), dense peak in practice


DEV = torch.device("cuda")


def log(*a):
    print(*a, flush=True)


def sync() -> None:
    if DEV.type == "cuda":
        torch.cuda.synchronize()


def reset_peak() -> None:
    if DEV.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEV.type == "cuda" else 0.0


def base_config(corpus: Path, args) -> Config:
    cfg = load_preset("paper").replace(
        anno_path=str(corpus), video_path=str(corpus / "videos"), frame_cache=str(corpus / f"frames-{args.size}"),
        pretrained=None, augment=False, workers=args.workers, batch_size=args.batch, batch_size_val=256,
        val_videos=500, eval_every=0, log_every=10, device=args.device, precision="bf16", compile=args.compile)
    if args.tiny:  # CPU dry run of this script
        cfg = cfg.replace(base_encoder="glscl-tiny", lim_heads=4, lim_ffn_dim=256, val_videos=8, precision="fp32")
    return cfg


def phase_corpus(corpus: Path, args) -> dict:
    from glscl_lite.data.cache import build_frame_cache
    from glscl_lite.data.msrvtt import all_video_ids
    from glscl_lite.data.synthetic import generate_corpus

    t0 = time.time()
    size = tuple(int(x) for x in args.synth_size.split("x")) if args.synth_size else \
        ((298, 224) if args.size == 224 else (160, 120))
    summary = generate_corpus(corpus, n_videos=args.videos, seed=0, size=size, workers=args.cpu_workers,
                              progress=False)
    t1 = time.time()
    fc = corpus / f"frames-{args.size}"
    if not (fc / "index.json").exists():
        build_frame_cache(all_video_ids(corpus), corpus / "videos", fc, max_frames=12, image_size=args.size,
                          workers=args.cpu_workers, progress=False)
    t2 = time.time()
    return {"videos": args.videos, "synth_size": f"{size[0]}x{size[1]}", "cpu_workers": args.cpu_workers,
            "synth_seconds": round(t1 - t0, 1), "frame_cache_seconds": round(t2 - t1, 1),
            "synth_videos_per_minute": summary.get("videos_per_minute")}


def cfg_size(cfg) -> int:
    return 64 if cfg.base_encoder == "glscl-tiny" else 224


def train_flops_per_clip(cfg) -> float:
    """Forward + backward FLOPs of one training step, per clip (FlopCounterMode, CUDA, bf16)."""
    from torch.utils.flop_counter import FlopCounterMode

    from glscl_lite.model import GLSCL

    torch.manual_seed(0)
    model = GLSCL(cfg).to(DEV).train()
    B = 8
    batch = {"text_ids": torch.randint(1, 49000, (B, 32), device=DEV),
             "text_mask": torch.ones(B, 32, dtype=torch.long, device=DEV),
             "video": torch.randint(0, 255, (B, 12, cfg_size(cfg), cfg_size(cfg), 3), dtype=torch.uint8, device=DEV),
             "video_mask": torch.ones(B, 12, dtype=torch.long, device=DEV)}
    batch["text_ids"][:, -1] = 49407
    with FlopCounterMode(display=False) as fc, torch.autocast("cuda", dtype=torch.bfloat16):
        model(batch)["loss"].backward()
    del model
    return fc.get_total_flops() / B


def phase_train(corpus: Path, args, compile: Optional[bool] = None) -> dict:
    from glscl_lite.train import Trainer, read_metrics

    compile = args.compile if compile is None else compile
    steps = args.compile_steps if compile and args.compile_steps else args.steps
    cfg = base_config(corpus, args).replace(max_steps=steps, epochs=1, compile=compile)
    flops = train_flops_per_clip(cfg)
    out = Path(args.work) / f"train_e2e{'_compile' if compile else ''}"
    reset_peak()
    t0 = time.time()
    Trainer(cfg, out, progress=False).fit()
    wall = time.time() - t0
    recs = [r for r in read_metrics(out) if r["split"] == "train" and r["step"] > 10]  # skip warm-up / compile
    cps = sum(r["clips_per_s"] for r in recs) / len(recs)
    return {"steps": steps, "measured_steps": f"{recs[0]['step'] - cfg.log_every + 1}-{recs[-1]['step']}",
            "batch": args.batch, "clips_per_s": round(cps, 1),
            "step_seconds": round(args.batch / cps, 4), "train_flops_per_clip_G": round(flops / 1e9, 2),
            "achieved_tflops": round(cps * flops / 1e12, 1),
            "mfu_vs_measured_peak": round(cps * flops / 1e12 / PEAK_BF16_TFLOPS, 3),
            "peak_memory_GiB": peak_gib(),
            "wall_seconds_incl_setup_and_final_eval": round(wall, 1), "compile": compile,
            "data": "frame cache (uint8 memmap), one read per batch, normalised on the GPU; augment off"}


def phase_features(corpus: Path, args) -> dict:
    from glscl_lite.features import build_feature_cache
    from glscl_lite.train import Trainer, read_metrics

    cfg = base_config(corpus, args).replace(freeze_backbone=True)
    feats = corpus / "features"
    t0 = time.time()
    if not (feats / "meta.json").exists():
        build_feature_cache(cfg, feats, progress=False)
    t1 = time.time()
    capped = bool(args.feature_steps)
    cfg = cfg.replace(feature_cache=str(feats), epochs=5, compile=False,
                      log_every=min(50, max(1, args.feature_steps // 4)) if capped else 100,
                      max_steps=args.feature_steps or None)
    out = Path(args.work) / "train_features"
    reset_peak()
    t2 = time.time()
    trainer = Trainer(cfg, out, progress=False)
    res = trainer.fit()
    t3 = time.time()
    recs = read_metrics(out)
    train_recs = [r for r in recs if r["split"] == "train"]
    val_recs = [r for r in recs if r["split"] == "val"]
    cps = round(sum(r["clips_per_s"] for r in train_recs[1:]) / max(1, len(train_recs) - 1), 1)
    steps_per_epoch = trainer.steps_per_epoch
    val_seconds = round(sum(r["seconds_feat"] + r["seconds_match"] for r in val_recs) / max(1, len(val_recs)), 3)
    out_d = {"feature_cache_build_seconds": round(t1 - t0, 1), "epochs": 5, "steps": res["steps"],
             "steps_per_epoch": steps_per_epoch, "pairs_per_epoch": steps_per_epoch * args.batch,
             "clips_per_s": cps, "val_seconds_per_epoch": val_seconds, "peak_memory_GiB": peak_gib(),
             "val_t2v_R1_best": res["val"]["t2v"]["R1"], "test_t2v_R1": res["test"]["t2v"]["R1"]}
    if capped:  # N steps of the 5-epoch schedule, measured; the 5 epochs extrapolated from them
        out_d.update(extrapolated=True, measured_wall_seconds_incl_setup_and_evals=round(t3 - t2, 1),
                     train_seconds_5_epochs_incl_evals=round(
                         5 * steps_per_epoch * args.batch / cps + 5 * val_seconds, 1),
                     note=f"{res['steps']} of {5 * steps_per_epoch} steps run; 5-epoch time = steps x measured "
                          "steady-state step time + 5 validations (checkpoint writes not included)")
    else:
        out_d.update(extrapolated=False, train_seconds_5_epochs_incl_evals=round(t3 - t2, 1))
    return out_d


@torch.no_grad()
def official_block_loop(model, text_feats, video_feats, block: int = 16) -> torch.Tensor:
    """The released evaluation: for every (16 texts, 16 videos) block re-run both LIM decoders."""
    head = model.head
    nt, nv = text_feats["sentence"].shape[0], video_feats["frames"].shape[0]
    out = torch.empty(nt, nv, device=DEV)
    for i in range(0, nt, block):
        for j in range(0, nv, block):
            t = {k: v[i:i + block] for k, v in text_feats.items()}
            v = {k: x[j:j + block] for k, x in video_feats.items()}
            t = head.encode_text(t["sentence"], t["words"], t["mask"])
            v = head.encode_video(v["frames"], v["mask"])
            out[i:i + block, j:j + block] = head.score(t, v)
    return out


def phase_eval(corpus: Path, args) -> dict:
    from glscl_lite.data.splits import build_splits, video_source
    from glscl_lite.evaluate import evaluate_model
    from glscl_lite.model import GLSCL

    cfg = base_config(corpus, args)
    torch.manual_seed(0)
    model = GLSCL(cfg).to(DEV).eval()
    splits = build_splits(cfg)
    test = splits.test
    source = video_source(cfg, cfg_size(cfg))
    res = {"n_texts": len(test.captions), "n_videos": len(test.video_ids)}
    evaluate_model(model, test, cfg, DEV, source=source)  # warm-up (cudnn, page cache)
    reset_peak()
    r = evaluate_model(model, test, cfg, DEV, source=source)
    res.update(end_to_end_seconds=round(r["seconds_feat"] + r["seconds_match"], 3),
               encode_seconds=r["seconds_feat"], match_seconds=r["seconds_match"],
               peak_memory_GiB_end_to_end=peak_gib())
    # head only: CLIP outputs given (as from a feature cache), temporal + LIM per item, then scores
    from glscl_lite.data.text import tokenize
    from glscl_lite.data.video import normalize_frames

    ids, mask = tokenize([c.caption for c in test.captions], 32)
    ids, mask = ids.to(DEV), mask.to(DEV)
    frames, vmask = source.get_batch(test.video_ids)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        sent, words = model.text_tokens(ids, mask)
        clip_frames = torch.cat([model.backbone.encode_video(normalize_frames(
            torch.from_numpy(frames[s:s + 250]).to(DEV), torch.from_numpy(vmask[s:s + 250]).to(DEV))).float()
            for s in range(0, len(frames), 250)])
    vmask_t = torch.from_numpy(vmask).to(DEV)
    sync()
    reset_peak()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            t_side = model.encode_text_features(sent, words, mask)
            v_side = model.encode_video_features(clip_frames, vmask_t)
        model.similarity(t_side, v_side)
        sync()
        times.append(time.perf_counter() - t0)
    res["head_only_seconds"] = round(min(times), 4)
    res["peak_memory_GiB_head_only"] = peak_gib()
    res["metrics_random_init"] = {k: r[k] for k in ("t2v", "v2t")}
    if args.no_official_loop:
        return res
    # official-style loop on the same post-temporal features, fp32 as released
    with torch.no_grad():
        post = model.temporal_features(clip_frames, vmask_t)
    tf = {"sentence": sent, "words": words, "mask": mask}
    vf = {"frames": post, "mask": vmask_t}
    sync()
    t0 = time.perf_counter()
    ref = official_block_loop(model, tf, vf)
    sync()
    res["official_block_loop_seconds"] = round(time.perf_counter() - t0, 3)
    with torch.no_grad():
        mine = model.similarity(model.encode_text_features(sent, words, mask), model.encode_video_features(clip_frames, vmask_t))
    res["max_abs_diff_vs_official_loop_fp32"] = float((mine - ref).abs().max())
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=Path("/tmp/glscl_c224"))
    p.add_argument("--work", type=Path, default=Path("/tmp/glscl_bench_runs"))
    p.add_argument("--videos", type=int, default=10000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--cpu-workers", type=int, default=os.cpu_count())
    p.add_argument("--compile", action="store_true", help="phase 'train' compiles (train_compiled always does)")
    p.add_argument("--compile-steps", type=int, default=0, help="steps of train_compiled (default --steps)")
    p.add_argument("--feature-steps", type=int, default=0,
                   help="features phase: train only N steps of the 5 epochs and extrapolate (0: all)")
    p.add_argument("--no-official-loop", action="store_true", help="eval phase: skip the official block loop")
    p.add_argument("--synth-size", default=None, help="WxH of the synthetic videos (default 298x224 at 224 px)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny model at 64 px: a CPU dry run of the script")
    p.add_argument("--phases", default="corpus,train,eval,features")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.size = 64 if args.tiny else 224
    global DEV
    DEV = torch.device(args.device)
    result = {"machine": machine_name(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "model": "ViT-B-32-quickgelu (random init), 12 frames, 224 px, 32 words, bf16 autocast",
              "peak_bf16_tflops_used_for_mfu": PEAK_BF16_TFLOPS}
    if args.out.exists():
        result.update(json.loads(args.out.read_text()))
    for phase in args.phases.split(","):
        log(f"== {phase}")
        t0 = time.time()
        result[phase] = {"corpus": phase_corpus, "train": phase_train, "features": phase_features,
                         "train_eager": lambda c, a: phase_train(c, a, compile=False),
                         "train_compiled": lambda c, a: phase_train(c, a, compile=True),
                         "eval": phase_eval}[phase](args.corpus, args)
        log(json.dumps(result[phase], indent=1), f"({time.time() - t0:.0f} s)")
        write_json_atomic(args.out, result)
        import gc

        gc.collect()
        if DEV.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
