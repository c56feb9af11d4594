"""Why is the first result wrong?  Which claim of a test caption the top-ranked video breaks.

R@1 counts a query right only when its own video comes first.  The synthetic corpus knows more: for
every test caption and every test video, whether the caption is *true* of the video
(:mod:`glscl_lite.data.caption_truth`), and, when it is not, which of its claims fail there
(:func:`~glscl_lite.data.caption_truth.failed_claims`: a colour, a shape, a motion, an event ...).
This script scores the JSFUSION test list with one or more scorers and reports, per scorer:

* ``R1``: the usual R@1 (own video first); ``top1_true``: the first video makes the caption true
  (semantic precision@1, what a user would call right);
* ``claim_error``: for each kind of claim, among the test captions that make it, the percentage
  whose first video breaks it -- which words the scorer cannot read from the videos yet; beside it
  ``chance_claim_error``, the same for a first video drawn at random (exact expectation);
* ``sole_reason``: among wrong first videos that break exactly one claim, how often each claim is
  that one (the single thing that would have fixed them).

Scorers: ``--features CACHE`` (the frozen trunk with no head: mean-pooled frame features against the
sentence feature, meanP at step 0) and ``--run RUN`` (a trained run's best checkpoint), as many as
given.  Everything is deterministic (no sampling, no training).

    python benchmarks/why_wrong.py --features data/synthetic-10k/features-hybrid \\
        --run runs/gallery-hybrid/runs/default__seed0 --json docs/results/pretrain/why_wrong.json

CPU: about a minute per scorer on the 1,000-video corpus (caption truth is checked for 1,000 first
videos only, and the trunk or run encodes the test split once).
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from glscl_lite.config import resolve_config
from glscl_lite.data.caption_truth import (CaptionMeaning, chance_claim_errors, claim_errors, failed_claims,
                                           scene_facts)
from glscl_lite.data.splits import build_splits
from glscl_lite.errors import UserError
from glscl_lite.features import FeatureCache
from glscl_lite.heldout import caption_meanings, corpus_scenes
from glscl_lite.model.baselines import masked_mean
from glscl_lite.utils import machine_name, write_json_atomic


def test_meanings(corpus: str, captions: Sequence) -> list[CaptionMeaning]:
    """The traced meaning of each test-list caption (matched by text among its video's captions)."""
    traced = caption_meanings(corpus, list(dict.fromkeys(c.video_id for c in captions)))
    out = []
    for c in captions:
        match = [m for m in traced[c.video_id] if m.text == c.caption]
        if not match:
            raise UserError(f"{corpus}: test caption {c.caption!r} of {c.video_id} is not among its traced captions")
        out.append(match[0])
    return out


def diagnose(sim: torch.Tensor, meanings: Sequence[CaptionMeaning], facts: Sequence, text_video: Sequence[int]
             ) -> dict[str, Any]:
    """``sim [Q, V]`` (test captions x test videos) -> R@1, top-1 truth and per-claim error rates."""
    top1 = sim.argmax(dim=1).tolist()
    sole: Counter = Counter()
    relational: Counter = Counter()
    hits = sum(int(v == text_video[q]) for q, v in enumerate(top1))
    why = [failed_claims(m, facts[v]) for m, v in zip(meanings, top1)]
    for reasons in why:
        relational.update(r for r in reasons if r in ("number of objects", "binding/order"))
        if len(reasons) == 1:
            sole[reasons[0]] += 1
    n, n_sole = len(meanings), sum(sole.values())
    return {"R1": round(100 * hits / n, 2), "top1_true": round(100 * sum(not w for w in why) / n, 2), "n_captions": n,
            "claim_error": claim_errors(meanings, [facts[v] for v in top1]), "relational": dict(relational),
            "sole_reason": {k: round(100 * c / n_sole, 1) for k, c in sole.most_common()},
            "wrong_first": sum(bool(w) for w in why), "wrong_with_one_reason": n_sole}


def trunk_similarity(features: Path, test) -> torch.Tensor:
    """meanP at step 0 on a feature cache: normalised frame features, masked mean, cosine with the sentence."""
    cache = FeatureCache(features)
    frames = torch.from_numpy(np.asarray(cache.frame_feats, dtype=np.float32))
    mask = torch.from_numpy(np.asarray(cache.video_mask, dtype=np.int64))
    rows = torch.as_tensor(cache.video_rows(test.video_ids))
    text = torch.from_numpy(np.asarray(cache.sentence[cache.caption_rows(test.captions)], dtype=np.float32))
    video = masked_mean(F.normalize(frames[rows], dim=-1), mask[rows])
    return F.normalize(text, dim=-1) @ F.normalize(video, dim=-1).T


def run_similarity(run: Path, test) -> torch.Tensor:
    from glscl_lite.evaluate import evaluate_model, load_run_model
    from glscl_lite.features import video_inputs

    model, cfg, dev = load_run_model(run, "best")
    source, features = video_inputs(cfg, model.backbone.image_size)
    with torch.no_grad():
        return evaluate_model(model, test, cfg, dev, source=source, features=features,
                              return_similarity=True)["similarity"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", type=Path, nargs="*", default=[], help="feature caches: the frozen trunk, no head")
    ap.add_argument("--run", type=Path, nargs="*", default=[], help="trained run folders (best checkpoint)")
    ap.add_argument("--config", default="synthetic", help="preset whose split settings build the test list")
    ap.add_argument("--json", type=Path, default=None, help="write the result here (replaced)")
    args = ap.parse_args()
    scorers = [("trunk", p) for p in args.features] + [("run", p) for p in args.run]
    if not scorers:
        raise UserError("why_wrong: give at least one --features CACHE or --run RUN")
    corpora = set()
    for kind, path in scorers:
        if kind == "trunk":
            corpora.add(str(Path(FeatureCache(path).meta["anno_path"]).resolve()))
        else:
            from glscl_lite.runs import run_config

            corpora.add(str(Path(run_config(path).anno_path).resolve()))
    if len(corpora) != 1:
        raise UserError(f"why_wrong: every scorer must use one corpus, got {sorted(corpora)}")
    corpus = corpora.pop()
    test = build_splits(resolve_config(args.config, [f"anno_path={corpus}"])).test
    if test is None:
        raise UserError(f"{corpus}: no test list")
    meanings = test_meanings(corpus, test.captions)
    scenes = corpus_scenes(corpus)
    facts = [scene_facts(scenes[v]) for v in test.video_ids]
    result: dict[str, Any] = {"corpus": corpus, "machine": machine_name(),
                              "chance_claim_error": chance_claim_errors(meanings, facts), "scorers": {}}
    for kind, path in scorers:
        sim = trunk_similarity(path, test) if kind == "trunk" else run_similarity(path, test)
        out = diagnose(sim, meanings, facts, test.text_video)
        result["scorers"][f"{kind}:{path}"] = out
        worst = sorted(out["claim_error"].items(), key=lambda kv: -kv[1]["pct"])[:6]
        print(f"{kind} {path}: R@1 {out['R1']:.1f}, first video true {out['top1_true']:.1f} %; claim error "
              + ", ".join(f"{k} {v['pct']:.0f} % of {v['captions']}" for k, v in worst))
    if args.json:
        write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
