"""Does the stand-in CLIP's *image* embedding carry shape at all?  A linear probe.

Zero-shot shape accuracy is 24 % (chance 12.5 %).  That can mean two things: the vision tower does
not see shapes, or it does but the image-text alignment never learnt to use them.  A linear probe
tells them apart: a softmax classifier trained on frozen image embeddings of labelled single-object
frames (stream ``eval``, seed 1) and tested on the zero-shot frames (seed 0, the frames of
``glscl-lite zeroshot``).  Baseline: the same architecture with random weights.

    python benchmarks/standin_linear_probe.py [--train 3000] [--test 1000] [--json PATH]

Prints the table and writes JSON (default docs/results/pretrain/linear_probe.json).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from glscl_lite.data.frame_world import zero_shot_frames
from glscl_lite.model.standin import DEFAULT_MODEL, load_standin, shipped_record
from glscl_lite.utils import machine_name, write_json_atomic
from glscl_lite.zeroshot import _encode_images, _image_size

ATTRIBUTES = ("colour", "shape", "size", "background")


def labels(frames, attribute: str) -> list[str]:
    if attribute == "background":
        return [f.background for f in frames]
    return [getattr(f.objects[0], attribute) for f in frames]


def linear_probe(x_train: torch.Tensor, y_train: np.ndarray, x_test: torch.Tensor, y_test: np.ndarray,
                 steps: int = 500, weight_decay: float = 1e-3, seed: int = 0, return_predictions: bool = False):
    """Test accuracy (%) of a softmax classifier on standardised features (full-batch Adam); with
    ``return_predictions`` also the predicted label of every test row."""
    torch.manual_seed(seed)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt, xs = (x_train - mu) / sd, (x_test - mu) / sd
    classes = sorted(set(y_train))
    index = {c: i for i, c in enumerate(classes)}
    yt = torch.tensor([index[c] for c in y_train])
    lin = torch.nn.Linear(xt.shape[1], len(classes))
    opt = torch.optim.Adam(lin.parameters(), lr=0.05, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(xt), yt).backward()
        opt.step()
    with torch.no_grad():
        pred = lin(xs).argmax(1).numpy()
    acc = float(100 * np.mean([classes[p] == y for p, y in zip(pred, y_test)]))
    return (acc, [classes[p] for p in pred]) if return_predictions else acc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=3000, help="labelled probe-training frames (seed 1)")
    ap.add_argument("--test", type=int, default=1000, help="test frames (the zero-shot frames, seed 0)")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="the shipped stand-in of this model config")
    ap.add_argument("--json", default="docs/results/pretrain/linear_probe.json")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.time()
    standin, record = load_standin(model=args.model), shipped_record(model=args.model)
    size = _image_size(standin)
    train, test = zero_shot_frames(args.train, size, seed=1), zero_shot_frames(args.test, size, seed=0)
    from glscl_lite.model.backbone import random_clip

    torch.manual_seed(0)
    random_model = random_clip(args.model).eval()
    rows = {}
    for name, model in (("stand-in", standin), ("random weights", random_model)):
        with torch.no_grad():
            x_train = _encode_images(model, torch.from_numpy(np.stack([f.image for f in train])))
            x_test = _encode_images(model, torch.from_numpy(np.stack([f.image for f in test])))
        rows[name] = {a: round(linear_probe(x_train, np.array(labels(train, a)), x_test, np.array(labels(test, a))), 1)
                      for a in ATTRIBUTES}
    zero_shot = record.get("zeroshot", {}).get("zero_shot", {})
    result = {"linear_probe": rows, "zero_shot_of_the_stand_in": zero_shot,
              "frames": {"train": args.train, "test": args.test, "train_seed": 1, "test_seed": 0},
              "features": "normalised image embedding (encode_image, 64-d)",
              "model": args.model, "standin_sha256": record["sha256"], "machine": machine_name(),
              "seconds": round(time.time() - t0, 1)}
    print(f"{'':16}" + "".join(f"{a:>12}" for a in ATTRIBUTES))
    for name, r in rows.items():
        print(f"{name:16}" + "".join(f"{r[a]:>11.1f}%" for a in ATTRIBUTES))
    print(f"{'zero-shot':16}" + "".join(f"{zero_shot.get(a, float('nan')):>11.1f}%" for a in ATTRIBUTES))
    write_json_atomic(args.json, result)
    print("->", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
