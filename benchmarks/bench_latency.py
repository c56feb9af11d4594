"""Latency of one text query against a video gallery, per similarity head, on this machine.

For each head (``glscl``, ``meanp``, ``xpool_like``, ``xclip_like``, ``glccl``, ``eercf``: every registered
head unless ``--heads``) and two sets of head sizes --
the tiny CPU model (``glscl-tiny``: D=64, smoke preset LIM) and ViT-B/32 (D=512, paper preset) --
one query is timed against galleries of 1k / 10k / 100k videos with
:func:`glscl_lite.flops.head_latency`: the head's text encoder on the query plus ``score`` against
every cached video side (random features; timing does not depend on the values).  Gallery sizes
whose cached side would exceed ``--max-gallery-gb`` are extrapolated linearly from the two largest
measured sizes and flagged.  The CLIP text tower for the query (one 32-token caption) is timed
separately, so per query = text tower + head.  Per-query FLOPs from the same heads
(:func:`glscl_lite.flops.gallery_costs` on a FLOP-only profile) are stored beside the times.

Writes ``benchmarks/results/latency_<machine>.json``::

    python benchmarks/bench_latency.py                     # 1 thread, 3 repeats
    python benchmarks/bench_latency.py --threads 2 --sizes 1000 10000
    python benchmarks/bench_latency.py --device cuda --backbones ViT-B-32-quickgelu --max-gallery-gb 40

On ``--device cuda`` every timed call is bracketed by ``torch.cuda.synchronize`` (wall clock = GPU
time plus launch overhead; ``cpu_seconds`` is then the host's share) and the features stay fp32.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SETUPS = {"glscl-tiny": "smoke", "ViT-B-32-quickgelu": None}  # backbone -> preset of its head sizes


def text_tower_seconds(backbone: str, words: int, repeats: int, device: str = "cpu") -> dict[str, float]:
    """Median time of the CLIP text tower on one caption of ``words`` tokens (random weights)."""
    import torch

    from glscl_lite.flops import caption_ids, time_call
    from glscl_lite.model import CLIPBackbone

    bb = CLIPBackbone(backbone, pretrained=None).eval().to(device)
    ids, mask = caption_ids(words, torch.Generator().manual_seed(0))
    return time_call(lambda i, m: bb.encode_text(i, m), (ids.to(device), mask.to(device)), repeats=repeats)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--repeats", type=int, default=3, help="timed calls per point (median kept)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--max-gallery-gb", type=float, default=1.0, help="largest cached gallery to build")
    p.add_argument("--backbones", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--device", default="cpu", help="cpu or cuda (the FLOP counts are always made on the CPU)")
    p.add_argument("--heads", nargs="+", default=None, help="default: every registered head")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    import torch

    from glscl_lite.config import Config, load_preset
    from glscl_lite.flops import gallery_costs, head_latency, profile
    from glscl_lite.model.registry import head_names
    from glscl_lite.utils import machine_name, machine_slug, resolve_device, write_json_atomic

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    heads_asked = args.heads or list(head_names())
    load_start = [round(x, 2) for x in os.getloadavg()]
    setups = {}
    for backbone in args.backbones:
        t0 = time.perf_counter()
        preset = SETUPS[backbone]
        cfg = (load_preset(preset) if preset else Config()).replace(base_encoder=backbone, pretrained=None)
        flop_report = profile(backbone, frames=cfg.max_frames, words=cfg.max_words, latency=False,
                              gallery_sizes=args.sizes, heads=heads_asked)
        dim = flop_report["dims"]["embed_dim"]
        text = text_tower_seconds(backbone, cfg.max_words, args.repeats, device)
        heads = head_latency(cfg, dim, heads=heads_asked, sizes=args.sizes, repeats=args.repeats, device=device,
                             max_gallery_bytes=int(args.max_gallery_gb * 2**30))
        costs = {(r["head"], r["gallery"]): r for r in gallery_costs(flop_report, args.sizes)}
        for name, rows in heads.items():
            for r in rows:
                c = costs[(name, r["gallery"])]
                r.update(query_seconds=r["seconds"] + text["wall_s"],
                         query_cpu_seconds=r["cpu_seconds"] + text["cpu_s"],
                         head_query_flops=2 * c["head_query_macs"], query_flops=c["query_flops"])
        setups[backbone] = {
            "embed_dim": dim, "frames": cfg.max_frames, "words": cfg.max_words,
            "query_number": cfg.query_number, "lim_heads": cfg.lim_heads, "lim_ffn_dim": cfg.lim_ffn_dim,
            "text_tower_seconds": text["wall_s"], "text_tower_cpu_seconds": text["cpu_s"],
            "heads": heads, "wall_seconds": round(time.perf_counter() - t0, 1),
        }
        print(f"{backbone}: done in {setups[backbone]['wall_seconds']} s", file=sys.stderr)

    machine = machine_name()
    result = {
        "machine": machine,
        "date": dt.date.today().isoformat(),
        "torch": torch.__version__,
        "device": device,
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average_at_start": load_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "note": "one text query: head text encoder + score against N cached video sides (seconds = "
                "median wall clock, cpu_seconds = this process's CPU time, steadier on a shared machine); "
                "query_* adds the CLIP text tower for the caption.  Random weights and features.  "
                "extrapolated=true: the cached gallery would exceed max_gallery_gb, time extended "
                "linearly from the two largest measured sizes.",
        "max_gallery_gb": args.max_gallery_gb,
        "setups": setups,
    }
    slug = machine_slug(machine)
    path = write_json_atomic(args.results / f"latency_{slug}.json", result)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
