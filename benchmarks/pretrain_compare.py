"""Choose the stand-in CLIP's size by measurement: zero-shot accuracy per CPU-minute.

Each candidate config in ``benchmarks/pretrain_configs/`` is pretrained (``glscl_lite.pretrain``)
for the same budget of trainer CPU seconds at the same learning rate and batch, then evaluated
with ``glscl_lite.zeroshot.evaluate_clip`` on held-out frames.  Writes a CSV and a Markdown table.

    OMP_NUM_THREADS=2 python benchmarks/pretrain_compare.py --budget 300 --out runs/pretrain-compare \
        --table docs/results/pretrain/config_comparison
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import open_clip
import pandas as pd
import torch

from glscl_lite.pretrain import PretrainSettings, build_model, pretrain, read_log
from glscl_lite.zeroshot import evaluate_clip

CONFIGS = Path(__file__).parent / "pretrain_configs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=300.0, help="trainer CPU seconds per candidate")
    ap.add_argument("--out", default="runs/pretrain-compare")
    ap.add_argument("--table", default="docs/results/pretrain/config_comparison")
    ap.add_argument("--frames", type=int, default=500, help="held-out frames for the evaluation")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--only", nargs="*", help="candidate names (default: all)")
    args = ap.parse_args()
    open_clip.add_model_config(CONFIGS)
    names = args.only or sorted(p.stem for p in CONFIGS.glob("*.json"))
    rows = []
    for name in names:
        s = PretrainSettings(model=name, steps=5000, batch_size=args.batch_size, lr=args.lr, warmup=50)
        out = Path(args.out) / name
        t0 = time.perf_counter()
        pretrain(s, out, progress=False, max_cpu_seconds=args.budget)
        wall = time.perf_counter() - t0
        log = read_log(out)
        model = build_model(s)
        model.load_state_dict(torch.load(out / "checkpoints" / "last.pt", map_location="cpu",
                                         weights_only=False)["model"])
        ev = evaluate_clip(model, n_frames=args.frames)
        cfg = open_clip.get_model_config(name)
        row = {"config": name, "image_size": cfg["vision_cfg"]["image_size"],
               "patch": cfg["vision_cfg"]["patch_size"], "vision_width": cfg["vision_cfg"]["width"],
               "vision_layers": cfg["vision_cfg"]["layers"], "text_width": cfg["text_cfg"]["width"],
               "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
               "steps": log[-1]["step"], "pairs": log[-1]["step"] * args.batch_size,
               "cpu_s": log[-1]["cpu_seconds"], "wall_s": round(wall, 1),
               "pairs_per_cpu_s": round(log[-1]["step"] * args.batch_size / log[-1]["cpu_seconds"], 1),
               "loss": log[-1]["loss"], **{f"zs_{k}": v for k, v in ev["zero_shot"].items()},
               **ev["retrieval"]}
        row["zs_mean"] = round(sum(ev["zero_shot"].values()) / 4, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    df = pd.DataFrame(rows)
    table = Path(args.table)
    table.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(table.with_suffix(".csv"), index=False)
    table.with_suffix(".md").write_text(df.to_markdown(index=False) + "\n")
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
