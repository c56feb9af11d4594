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
from pathlib import Path

import pandas as pd
import torch

from glscl_lite.model.conv_stem import add_config_dir, model_config
from glscl_lite.pretrain import PretrainSettings, build_model, pretrain, read_log
from glscl_lite.zeroshot import evaluate_clip

CONFIGS = Path(__file__).parent / "pretrain_configs"


def candidate_row(s: PretrainSettings, out: Path, frames: int) -> dict:
    """One table row: the candidate's size, what its budget bought, and its zero-shot results."""
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    model = build_model(s)
    model.load_state_dict(state["model"])
    cached = out / f"zeroshot-{state['step']}-{frames}.json"
    if cached.exists():
        ev = json.loads(cached.read_text())
    else:
        ev = evaluate_clip(model, n_frames=frames)
        cached.write_text(json.dumps(ev))
    cfg = model_config(s.model)
    steps, cpu = int(state["step"]), float(state["cpu_seconds"])
    row = {"config": s.model, "image_size": cfg["vision_cfg"]["image_size"],
           "patch": cfg["vision_cfg"]["patch_size"], "conv_stem": bool(cfg.get("conv_stem")), "vision_width": cfg["vision_cfg"]["width"],
           "vision_layers": cfg["vision_cfg"]["layers"], "text_width": cfg["text_cfg"]["width"],
           "text_layers": cfg["text_cfg"]["layers"],
           "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
           "steps": steps, "pairs": steps * s.batch_size, "cpu_s": round(cpu, 1),
           "pairs_per_cpu_s": round(steps * s.batch_size / cpu, 1),
           "loss": [r for r in read_log(out) if r["step"] <= steps][-1]["loss"],
           **{f"zs_{k}": v for k, v in ev["zero_shot"].items()}, **ev["retrieval"]}
    row["zs_mean"] = round(sum(ev["zero_shot"].values()) / 4, 2)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=300.0, help="trainer CPU seconds per candidate")
    ap.add_argument("--out", default="runs/pretrain-compare")
    ap.add_argument("--table", default="docs/results/pretrain/config_comparison")
    ap.add_argument("--frames", type=int, default=500, help="held-out frames for the evaluation")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--only", nargs="*", help="candidate names (default: all)")
    ap.add_argument("--report-only", action="store_true", help="no training: table of the candidates trained so far")
    args = ap.parse_args()
    add_config_dir(CONFIGS)
    names = args.only or sorted(p.stem for p in CONFIGS.glob("*.json"))
    rows = []
    for name in names:
        s = PretrainSettings(model=name, steps=5000, batch_size=args.batch_size, lr=args.lr, warmup=50)
        out = Path(args.out) / name
        if not args.report_only:
            pretrain(s, out, progress=False, max_cpu_seconds=args.budget)
        if not (out / "checkpoints" / "last.pt").exists():
            continue
        rows.append(candidate_row(s, out, args.frames))
        print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    table = Path(args.table)
    table.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(table.with_suffix(".csv"), index=False)
    table.with_suffix(".md").write_text(df.to_markdown(index=False) + "\n")
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
