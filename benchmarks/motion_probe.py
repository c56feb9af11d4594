"""Is motion in the frozen frame features?  A linear probe over a feature cache.

`benchmarks/why_wrong.py` finds that the first video a trunk or a trained head returns breaks the
caption's *motion* claim ("rolls left") about as often as a random video would.  Either the frozen
per-frame features of the stand-in CLIP do not carry what motion needs (where the object is, how big,
how turned, frame by frame), or they do and the heads do not learn to read it.  A probe tells them
apart: softmax classifiers on the cached frame features of the corpus's one-object videos, trained on
the training list and scored on the test list, predicting the object's motion (8 classes: left,
right, up, down, grow, shrink, spin, still):

* ``order_blind``: the mean of the (L2-normalised) frame features -- what mean pooling keeps;
* ``order_aware``: the frame features side by side in time order (``T x D``; missing frames zero) --
  a linear function of these can take differences between frames, hence directions.

    python benchmarks/motion_probe.py --features data/synthetic-10k/features-hybrid [--json FILE]

With ``--json`` the result is *added* under the cache's name (one file compares trunks).  Seconds on
two cores.  The classifier is :func:`standin_linear_probe.linear_probe` (full-batch Adam on
standardised features, 500 steps).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from standin_linear_probe import linear_probe

from glscl_lite.config import resolve_config
from glscl_lite.data.splits import build_splits
from glscl_lite.errors import UserError
from glscl_lite.features import FeatureCache
from glscl_lite.heldout import corpus_scenes
from glscl_lite.model.baselines import masked_mean
from glscl_lite.utils import machine_name, write_json_atomic


def one_object_motion(corpus: str, video_ids: list[str]) -> tuple[list[str], list[str]]:
    """``(ids, motions)`` of the videos among ``video_ids`` whose scene has exactly one object."""
    scenes = corpus_scenes(corpus)
    keep = [v for v in video_ids if len(scenes[v].objects) == 1]
    return keep, [scenes[v].objects[0].motion for v in keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", type=Path, required=True, help="a feature cache folder (glscl-lite cache features)")
    ap.add_argument("--config", default="synthetic", help="preset whose split settings give the lists")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="add the result to this file, keyed by the cache's name")
    args = ap.parse_args()
    t0 = time.process_time()
    cache = FeatureCache(args.features)
    corpus = cache.meta["anno_path"]
    splits = build_splits(resolve_config(args.config, [f"anno_path={corpus}"]))
    if splits.test is None:
        raise UserError(f"{corpus}: no test list")
    train_ids, y_train = one_object_motion(corpus, list(splits.train_videos))
    test_ids, y_test = one_object_motion(corpus, list(splits.test.video_ids))
    frames = torch.from_numpy(np.asarray(cache.frame_feats, dtype=np.float32))
    mask = torch.from_numpy(np.asarray(cache.video_mask, dtype=np.int64))

    def inputs(ids: list[str]) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(cache.video_rows(ids))
        f = F.normalize(frames[rows], dim=-1) * mask[rows, :, None]
        return {"order_blind": masked_mean(f, mask[rows]), "order_aware": f.flatten(1)}

    x_train, x_test = inputs(train_ids), inputs(test_ids)
    majority = Counter(y_train).most_common(1)[0][0]
    result = {"features": str(args.features), "base_encoder": cache.meta["base_encoder"],
              "pretrained": cache.meta["pretrained"], "backbone_checksum": cache.meta["backbone_checksum"],
              "train_videos": len(train_ids), "test_videos": len(test_ids),
              "classes": dict(sorted(Counter(y_test).items())),
              "majority_class_pct": round(100 * float(np.mean([y == majority for y in y_test])), 1)}
    for name in ("order_blind", "order_aware"):
        acc, pred = linear_probe(x_train[name], np.array(y_train), x_test[name], np.array(y_test), seed=args.seed,
                                 return_predictions=True)
        per_class = {c: round(100 * float(np.mean([p == c for p, y in zip(pred, y_test) if y == c])), 1)
                     for c in sorted(set(y_test))}
        result[name] = {"accuracy": round(acc, 1), "per_class": per_class}
        print(f"{args.features.name} {name}: motion accuracy {acc:.1f} % on {len(test_ids)} one-object test videos "
              f"(majority class {result['majority_class_pct']} %); per class {per_class}")
    result.update(cpu_seconds=round(time.process_time() - t0, 1), machine=machine_name())
    if args.json:
        table = json.loads(args.json.read_text()) if args.json.is_file() else {}
        table[args.features.name] = result
        write_json_atomic(args.json, table)


if __name__ == "__main__":
    main()
