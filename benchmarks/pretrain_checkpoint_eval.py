"""One point of a pretraining learning curve: zero-shot and linear probe of a checkpoint.

A pretraining folder keeps only ``checkpoints/last.pt``; copy it when the run passes the step you
want (its ``metrics.jsonl`` says where it is), then score the copy:

    python benchmarks/pretrain_checkpoint_eval.py --run runs/pretrain-hybrid-shape --checkpoint /tmp/step-800.pt
    python benchmarks/pretrain_checkpoint_eval.py --weights shipped:glscl-synthetic-hybrid --probe   # finished weights

``--weights``: a finished pretraining folder, a ``weights.fp16.pt`` or ``shipped:MODEL`` (as in
``benchmarks/pretrain_ab.py``) instead of a run and a checkpoint copy.

Zero-shot: ``glscl_lite.zeroshot.zero_shot`` on ``--frames`` fresh frames (stream ``eval``, seed 1 --
not the seed-0 frames of the final report).  Linear probe (``--probe``): the classifier of
``benchmarks/standin_linear_probe.py`` on the checkpoint's image embedding, 2,000 labelled frames
(seed 1) and 500 test frames (seed 0).  Prints one JSON line; ``--json FILE`` appends it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from pretrain_ab import _load  # noqa: E402
from standin_linear_probe import _encode_images, labels, linear_probe  # noqa: E402

from glscl_lite.data.frame_world import zero_shot_frames  # noqa: E402
from glscl_lite.pretrain import _settings_from, build_model  # noqa: E402
from glscl_lite.zeroshot import _image_size, zero_shot  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="the pretraining folder (its settings build the model)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="a copy of its checkpoints/last.pt")
    ap.add_argument("--weights", default=None, help="instead: finished weights (folder, file or shipped:MODEL)")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--probe", action="store_true", help="also the linear probe of shape, size and position (9 thirds of the frame)")
    ap.add_argument("--json", type=Path, default=None, help="append the result line to this file")
    args = ap.parse_args()
    if (args.weights is None) == (args.run is None or args.checkpoint is None):
        ap.error("give --run and --checkpoint, or --weights")
    if args.weights is not None:
        model, record = _load(args.weights)
        where, step = args.weights, record.get("steps")
    else:
        model = build_model(_settings_from(args.run / "settings.json"))
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        where, step = str(args.run), int(state["step"])
    model.eval()
    row = {"run": where, "step": step, "frames": args.frames, "seed": 1,
           "zero_shot": zero_shot(model, n_frames=args.frames, seed=1)}
    if args.probe:
        size = _image_size(model)
        train, test = zero_shot_frames(2000, size, seed=1), zero_shot_frames(500, size, seed=0)
        with torch.no_grad():
            x_train = _encode_images(model, torch.from_numpy(np.stack([f.image for f in train])))
            x_test = _encode_images(model, torch.from_numpy(np.stack([f.image for f in test])))
        row["linear_probe"] = {a: round(linear_probe(x_train, np.array(labels(train, a)), x_test,
                                                     np.array(labels(test, a))), 1) for a in ("shape", "size", "position")}
    print(json.dumps(row))
    if args.json:
        with args.json.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
