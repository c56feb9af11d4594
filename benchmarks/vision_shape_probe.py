"""Can a vision tower learn *shape* from the synthetic frames on a CPU budget?  A supervised probe.

The first stand-in CLIP (a plain 2-layer ViT, 8-px patches) learned colour, size and background
but not shape (zero-shot 23.7 %, linear probe 27.1 %, chance 12.5 %).  Is that the contrastive
objective, or the vision tower?  This script takes the objective out: each candidate tower gets
linear shape and size heads and is trained *supervised* (cross-entropy) on single-object frames
rendered on the fly (``frame_world.make_frame("train", 7, i, single_object=True)``), batch 64,
AdamW lr 1e-3 (weight decay 0.05, 50 linear warm-up steps), one trainer thread plus one rendering process, for the same
budget of trainer CPU seconds.  Every 50 steps it scores shape and size on the 500 zero-shot frames
(stream ``eval``, seed 0; chance 12.5 % / 33.3 %).  If a tower cannot learn shape even with labels,
no caption will teach it.

Candidates (one seed each, ``torch.manual_seed(0)``):

* ``vit``: the first stand-in's tower (``benchmarks/pretrain_configs/t64-64p8-v128x2.json``);
* ``vit-hybrid``: the same ViT behind a convolutional stem (``glscl-synthetic-hybrid``,
  :mod:`glscl_lite.model.conv_stem`);
* ``vit-p4``: 4-px patches (4x the tokens); ``vit-192x4``: 4 layers of width 192;
* ``resnet``: open_clip's ``ModifiedResNet`` (CLIP's RN towers), layers 1-1-1-1, width 32;
* ``cnn``: not a CLIP tower -- six 3x3 convolutions and a global max-pool, as the reference for
  what the data allows.

    OMP_NUM_THREADS=1 python benchmarks/vision_shape_probe.py --budget 150 \
        --json docs/results/pretrain/vision_probe.json
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from glscl_lite.data import synthetic as syn
from glscl_lite.data.frame_world import make_frame, zero_shot_frames
from glscl_lite.data.video import images_to_input
from glscl_lite.model.backbone import random_clip, register_configs
from glscl_lite.model.conv_stem import add_config
from glscl_lite.utils import machine_name, write_json_atomic

CONFIGS = Path(__file__).parent / "pretrain_configs"
SHAPES, SIZES = list(syn.SHAPES), list(syn.SIZES)
EMBED = 64


class _CNN(nn.Module):
    """The reference: six 3x3 convolutions (GELU), global max-pool, linear to 64-d."""

    def __init__(self) -> None:
        super().__init__()
        g = nn.GELU
        self.f = nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1), g(), nn.Conv2d(32, 32, 3, 2, 1), g(),
                               nn.Conv2d(32, 64, 3, 1, 1), g(), nn.Conv2d(64, 64, 3, 2, 1), g(),
                               nn.Conv2d(64, 128, 3, 2, 1), g(), nn.Conv2d(128, 128, 3, 1, 1), g(),
                               nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, EMBED))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)


def _variant(name: str, base: dict, **vision) -> str:
    cfg = copy.deepcopy(base)
    cfg.pop("conv_stem", None)
    cfg["vision_cfg"].update(vision)
    add_config(name, cfg)
    return name


def tower(candidate: str) -> nn.Module:
    """The image tower of ``candidate`` (seeded), mapping ``[N,3,64,64]`` to ``[N,64]``."""
    register_configs()
    plain = json.loads((CONFIGS / "t64-64p8-v128x2.json").read_text())
    names = {"vit": lambda: _variant("probe-vit", plain),
             "vit-hybrid": lambda: "glscl-synthetic-hybrid",
             "vit-p4": lambda: _variant("probe-vit-p4", plain, patch_size=4),
             "vit-192x4": lambda: _variant("probe-vit-192x4", plain, layers=4, width=192),
             "resnet": lambda: _variant("probe-resnet", plain, layers=[1, 1, 1, 1], width=32)}
    torch.manual_seed(0)
    if candidate == "cnn":
        return _CNN()
    if candidate not in names:
        raise SystemExit(f"unknown candidate {candidate!r}; choose from {sorted(names) + ['cnn']}")
    return random_clip(names[candidate]()).visual


class _Frames(IterableDataset):
    def __init__(self, batch: int):
        self.batch = batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        torch.set_num_threads(1)
        step = 0
        while True:
            fs = [make_frame("train", 7, step * self.batch + i, 64, single_object=True) for i in range(self.batch)]
            step += 1
            yield (torch.from_numpy(np.stack([f.image for f in fs])),
                   torch.tensor([SHAPES.index(f.objects[0].shape) for f in fs]),
                   torch.tensor([SIZES.index(f.objects[0].size) for f in fs]))


def run(candidate: str, budget: float, batch: int, lr: float, warmup: int, every: int) -> list[dict]:
    """Train ``candidate`` for ``budget`` trainer CPU seconds; the learning curve (one row per ``every`` steps)."""
    model = tower(candidate)
    head = nn.Linear(EMBED, len(SHAPES) + len(SIZES))
    test = zero_shot_frames(500, 64)
    x_test = images_to_input(torch.from_numpy(np.stack([f.image for f in test])))
    y_shape = torch.tensor([SHAPES.index(f.objects[0].shape) for f in test])
    y_size = torch.tensor([SIZES.index(f.objects[0].size) for f in test])
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=lr, weight_decay=0.05)
    ce = nn.functional.cross_entropy
    curve, step, cpu0 = [], 0, time.process_time()
    for images, shape, size in DataLoader(_Frames(batch), batch_size=None, num_workers=1, prefetch_factor=4):
        out = head(model(images_to_input(images)))
        loss = ce(out[:, :len(SHAPES)], shape) + ce(out[:, len(SHAPES):], size)
        opt.zero_grad()
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / max(1, warmup))
        opt.step()
        step += 1
        cpu = time.process_time() - cpu0
        if step % every == 0 or cpu > budget:
            model.eval()
            with torch.no_grad():
                pred = head(model(x_test))
            model.train()
            curve.append({"step": step, "frames": step * batch, "cpu_s": round(cpu, 1), "loss": round(float(loss.detach()), 3),
                          "shape": round(float((pred[:, :len(SHAPES)].argmax(1) == y_shape).float().mean()) * 100, 1),
                          "size": round(float((pred[:, len(SHAPES):].argmax(1) == y_size).float().mean()) * 100, 1)})
            print(json.dumps({"candidate": candidate, **curve[-1]}), flush=True)
        if cpu > budget:
            return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=150.0, help="trainer CPU seconds per candidate")
    ap.add_argument("--only", nargs="*", default=["vit", "vit-hybrid", "resnet", "cnn"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=50, help="linear warm-up steps")
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--json", default="docs/results/pretrain/vision_probe.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = Path(args.json)
    result = json.loads(path.read_text()) if path.is_file() else {}
    result.update(machine=machine_name(), budget_cpu_s=args.budget, batch=args.batch, lr=args.lr, warmup=args.warmup,
                  test_frames=500, chance={"shape": 12.5, "size": 33.3})
    curves = result.setdefault("curves", {})
    for candidate in args.only:
        curves[candidate] = run(candidate, args.budget, args.batch, args.lr, args.warmup, args.every)
        write_json_atomic(path, result)  # after every candidate: a later kill keeps the finished ones
    print(json.dumps({c: v[-1] for c, v in curves.items()}, indent=1))


if __name__ == "__main__":
    main()
