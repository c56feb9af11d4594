"""Where a stand-in reads shape: zero-shot shape accuracy by object size and by place in the frame.

A stand-in's zero-shot shape accuracy is one number over 1,000 held-out one-object frames.  If shape
failed for lack of pixels, small objects would fail most and large ones least.  This splits the same
frames (stream ``eval``, seed 0: the frames of every stand-in's report) by the object's size word
(small / medium / large, apparent size at that instant) and by where its centre is (the middle
third of the frame, a side third, a corner third), with Wilson 95 % intervals, the difference
medium - large with a normal-approximation 95 % interval (independent frames), and for each size
the three most frequent confusions.  ``--probe N`` adds the same split for a linear probe of shape
on the normalised image embedding, trained on ``N`` labelled frames (seed 1; as
``benchmarks/standin_linear_probe.py``): if the probe shows the same pattern, the image embedding
itself lacks shape there, not only the image-text alignment.  Two more readings of the same
image and text embeddings, as diagnostics (the ensemble protocol of ``glscl-lite zeroshot`` stays
the reported number): ``joint`` (``glscl_lite.zeroshot``'s second reading: the shape of the single
best of all 1,920 prompts, size, colour, shape and background at once), and ``size_given``, shape
prototypes averaged only over the prompts of the object's true size (uses the size label).  If these
read large objects much better than the ensemble over sizes, shape and size are entangled in the
joint embedding.  ``every_attribute`` in the JSON: all four attributes under both readings;
``text_additivity``: how much of the prompt embeddings a sum of one vector per attribute value explains::

    python benchmarks/shape_breakdown.py --standin hybrid=shipped:glscl-synthetic-hybrid \\
        sets8=runs/pretrain-hybrid-sets8 --json docs/results/pretrain/shape_breakdown.json

``--standin NAME=SPEC``: SPEC is a finished pretraining folder, a ``weights.fp16.pt`` file or
``shipped:MODEL`` (as in ``benchmarks/pretrain_ab.py``).
"""
from __future__ import annotations

import argparse
import collections
import math
from pathlib import Path

import numpy as np
import torch
from standin_linear_probe import linear_probe

from glscl_lite.data.frame_world import POSITIONS, zero_shot_frames
from glscl_lite.model.standin import load_standin, shipped_record
from glscl_lite.utils import write_json_atomic
from glscl_lite.zeroshot import (ATTRIBUTES, _encode_images, _encode_texts, _image_size, prompt_table, zero_shot,
                                 zero_shot_predictions)

SIZES = ("small", "medium", "large")
PLACES = ("middle", "side", "corner")


def place(position: str) -> str:
    """``middle``, ``side`` or ``corner``: which kind of third of the frame a :data:`POSITIONS` phrase names."""
    for r, row in enumerate(POSITIONS):
        if position in row:
            c = row.index(position)
            return "middle" if (r, c) == (1, 1) else ("corner" if r != 1 and c != 1 else "side")
    raise ValueError(f"not a position phrase: {position!r}")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion ``k / n``, in percent."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(100 * (centre - half), 1), round(100 * (centre + half), 1))


def cell(right: list[bool]) -> dict:
    """Accuracy, its Wilson interval and the number of frames of one group."""
    k, n = sum(right), len(right)
    lo, hi = wilson(k, n)
    return {"acc": round(100.0 * k / n, 1) if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n}


def by_size(right: list[bool], frames) -> dict:
    """:func:`cell` of the frames of each size word."""
    groups = collections.defaultdict(list)
    for r, f in zip(right, frames):
        groups[f.objects[0].size].append(r)
    return {s: cell(groups[s]) for s in SIZES}


def probe_by_size(model, frames, n_train: int) -> dict:
    """Shape accuracy of a linear probe on the image embedding (trained on ``n_train`` frames of
    seed 1), on ``frames``, overall and by size."""
    train = zero_shot_frames(n_train, _image_size(model), seed=1)
    with torch.no_grad():
        x_train = _encode_images(model, torch.from_numpy(np.stack([f.image for f in train])))
        x_test = _encode_images(model, torch.from_numpy(np.stack([f.image for f in frames])))
    truth = [f.objects[0].shape for f in frames]
    _, pred = linear_probe(x_train, np.array([f.objects[0].shape for f in train]), x_test, np.array(truth),
                           return_predictions=True)
    right = [p == t for p, t in zip(pred, truth)]
    return {"train_frames": n_train, "all": cell(right), "by_size": by_size(right, frames)}


def other_readings(model, frames, seed: int) -> dict:
    """``joint`` and ``size_given`` shape readings (see the module doc), overall and by size."""
    table = prompt_table()
    with torch.no_grad():
        text = _encode_texts(model, [r["prompt"] for r in table])
        img = _encode_images(model, torch.from_numpy(np.stack([f.image for f in frames])))
    truth = [f.objects[0].shape for f in frames]
    joint = zero_shot_predictions(model, len(frames), seed, reading="joint")["shape"][0]
    shapes = list(dict.fromkeys(r["shape"] for r in table))
    given = []
    for k, f in enumerate(frames):
        protos = torch.stack([text[[i for i, r in enumerate(table) if r["shape"] == c and r["size"] == f.objects[0].size]]
                              .mean(0) for c in shapes])
        given.append(shapes[int((torch.nn.functional.normalize(protos, dim=-1) @ img[k]).argmax())])
    out = {}
    for name, pred in (("joint", joint), ("size_given", given)):
        right = [p == t for p, t in zip(pred, truth)]
        out[name] = {"all": cell(right), "by_size": by_size(right, frames)}
    return out


def text_additivity(model) -> dict:
    """How additive the text tower is in the four attributes: R^2 of a least-squares fit of the 1,920
    normalised prompt embeddings ``[1920, D]`` by one-hot size, colour, shape and background (plus an
    intercept), overall and with each attribute's share (R^2 lost when it is left out of the fit)."""
    table = prompt_table()
    with torch.no_grad():
        y = _encode_texts(model, [r["prompt"] for r in table]).double()
    y = y - y.mean(0)

    def r2(attrs: tuple[str, ...]) -> float:
        cols = [torch.tensor([[float(r[a] == v) for v in dict.fromkeys(q[a] for q in table)] for r in table],
                             dtype=torch.float64) for a in attrs]
        x = torch.cat([torch.ones(len(table), 1, dtype=torch.float64), *cols], dim=1)
        fit = x @ torch.linalg.lstsq(x, y).solution
        return float(1 - ((y - fit) ** 2).sum() / (y ** 2).sum())

    full = r2(ATTRIBUTES)
    return {"r2": round(full, 4),
            "share": {a: round(full - r2(tuple(b for b in ATTRIBUTES if b != a)), 4) for a in ATTRIBUTES}}


def breakdown(spec: str, n_frames: int = 1000, seed: int = 0, probe: int = 0) -> dict:
    """Shape accuracy of one stand-in split by size and by place, with the top confusions per size
    (and, with ``probe`` > 0, a linear probe's accuracy by size)."""
    weights, model_name = (None, spec.split(":", 1)[1]) if spec.startswith("shipped:") else (Path(spec), None)
    model = load_standin(weights, model_name)
    pred, truth = zero_shot_predictions(model, n_frames, seed)["shape"]
    frames = zero_shot_frames(n_frames, _image_size(model), seed=seed)
    right = [p == t for p, t in zip(pred, truth)]
    by_place, wrong = collections.defaultdict(list), collections.defaultdict(collections.Counter)
    for p, t, f in zip(pred, truth, frames):
        by_place[place(f.objects[0].position)].append(p == t)
        if p != t:
            wrong[f.objects[0].size][f"{t} -> {p}"] += 1
    out = {"sha256": shipped_record(weights, model_name)["sha256"], "spec": spec,
           "all": cell(right), "by_size": by_size(right, frames),
           "by_place": {q: cell(by_place[q]) for q in PLACES},
           "top_confusions": {s: wrong[s].most_common(3) for s in SIZES}}
    med, large = out["by_size"]["medium"], out["by_size"]["large"]
    pm, pl = med["acc"] / 100, large["acc"] / 100
    half = 1.96 * math.sqrt(pm * (1 - pm) / med["n"] + pl * (1 - pl) / large["n"])
    out["medium_minus_large"] = {"diff": round(100 * (pm - pl), 1), "ci_low": round(100 * (pm - pl - half), 1),
                                 "ci_high": round(100 * (pm - pl + half), 1)}
    out.update(other_readings(model, frames, seed))
    out["every_attribute"] = {r: zero_shot(model, n_frames, seed, reading=r) for r in ("ensemble", "joint")}
    out["text_additivity"] = text_additivity(model)
    if probe:
        out["linear_probe"] = probe_by_size(model, frames, probe)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--standin", nargs="+", required=True, metavar="NAME=SPEC")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--probe", type=int, default=0, metavar="N", help="also a linear probe trained on N frames")
    ap.add_argument("--additivity-only", action="store_true",
                    help="only the text tower's additivity (seconds per stand-in; no frames)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    pairs = [s.split("=", 1) for s in args.standin]
    if any(len(p) != 2 for p in pairs):
        ap.error("--standin takes NAME=SPEC")
    if args.additivity_only:
        out = {"method": "R^2 of a least-squares fit of the 1,920 normalised prompt embeddings by one-hot size, "
                         "colour, shape and background (+ intercept); share: R^2 lost without that attribute",
               "standins": {}}
        for name, spec in pairs:
            weights, model_name = (None, spec.split(":", 1)[1]) if spec.startswith("shipped:") else (Path(spec), None)
            add = out["standins"][name] = {"spec": spec, "sha256": shipped_record(weights, model_name)["sha256"],
                                           **text_additivity(load_standin(weights, model_name))}
            print(f"{name:<10} R^2 {add['r2']:.3f}  " + "  ".join(f"{a} {v:.3f}" for a, v in add["share"].items()))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(args.json, out)
        return
    result = {"method": f"zero-shot shape on frames 0..{args.frames - 1} of stream eval, seed {args.seed}; Wilson "
                        "95 % intervals; medium - large: normal approximation, independent frames",
              "standins": {}}
    for name, spec in pairs:
        row = result["standins"][name] = breakdown(spec, args.frames, args.seed, args.probe)
        sizes = "  ".join(f"{s} {row['by_size'][s]['acc']:5.1f} [{row['by_size'][s]['ci_low']:.0f}, "
                          f"{row['by_size'][s]['ci_high']:.0f}]" for s in SIZES)
        places = "  ".join(f"{q} {row['by_place'][q]['acc']:5.1f}" for q in PLACES)
        d = row["medium_minus_large"]
        print(f"{name:<10} all {row['all']['acc']:5.1f}  {sizes}  | {places}  | medium-large {d['diff']:+.1f} "
              f"[{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]")
        add = row["text_additivity"]
        print(f"{'':<10} text additivity R^2 {add['r2']:.3f}  shares "
              + "  ".join(f"{a} {v:.3f}" for a, v in add["share"].items()))
        for r in ("ensemble", "joint"):
            print(f"{'':<10} {r:<12} " + "  ".join(f"{a} {row['every_attribute'][r][a]:5.1f}" for a in ATTRIBUTES))
        for reading in ("joint", "size_given") + (("linear_probe",) if args.probe else ()):
            r = row[reading]
            print(f"{'':<10} {reading:<12} {r['all']['acc']:5.1f}  "
                  + "  ".join(f"{s} {r['by_size'][s]['acc']:5.1f}" for s in SIZES))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
