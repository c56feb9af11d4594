"""How much test R@1 does a frozen trunk hold?  Zero-shot and a trainable probe on a feature cache.

The gallery's heads train on a frozen stand-in CLIP's features.  Before crediting or blaming a head,
measure what the features give without it:

* **zero-shot**: mean-pooled (L2-normalised) frame features against the sentence feature, no
  training -- CLIP4Clip's meanP at step 0.  Split by the oracle's count of test videos each caption
  is true of (``probes/oracle.json``): a caption true of one video only can reach R@1 100 %.
* **probe**: the trunk's own text tower trained (lr ``--text-lr``) together with a small temporal
  transformer over the frozen frame features (2 layers, width = embedding, residual, masked mean;
  lr ``--lr``), symmetric InfoNCE at the trunk's logit scale, AdamW (weight decay 0.2), batches of
  128 training videos with one random caption each (validation carved out exactly as training does;
  the test split is scored once, at the end, never used to choose anything).  The probe can retune
  what words mean and combine frames over time; it cannot see anything the frozen frame features do
  not carry.  A head that does no better than this probe is limited by the trunk, not by itself.

    python benchmarks/trunk_ceiling.py --features data/synthetic-10k/features-standin \\
        [--steps 600] [--seeds 0 1 2] [--json docs/results/pretrain/trunk_ceiling.json] [--key NAME]

The text tower comes from the cache's own ``base_encoder`` / ``pretrained`` (checked against the
cache's backbone checksum).  With ``--json`` the result is *added* under the cache's name (or
``--key``), so one file compares trunks.  CPU: about 70 s per seed for 600 steps on 2 threads.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glscl_lite.config import resolve_config
from glscl_lite.data.splits import build_splits
from glscl_lite.data.text import tokenize
from glscl_lite.errors import UserError
from glscl_lite.features import FeatureCache, backbone_checksum
from glscl_lite.losses import info_nce
from glscl_lite.metrics import evaluate_retrieval, ranks_from_scores
from glscl_lite.model.backbone import CLIPBackbone
from glscl_lite.model.baselines import masked_mean
from glscl_lite.probes_eval import load_oracle
from glscl_lite.utils import machine_name, write_json_atomic

BUCKETS = ((1, 1), (2, 3), (4, 10), (11, 10**9))
"""Oracle buckets: captions true of exactly 1, 2-3, 4-10, more than 10 test videos."""


class TemporalProbe(nn.Module):
    """Frozen frame features ``[B,T,D]`` + mask ``[B,T]`` -> video embedding ``[B,D]`` (residual
    2-layer transformer with learned positions, masked mean)."""

    def __init__(self, dim: int, frames: int, layers: int = 2) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(frames, dim))
        block = nn.TransformerEncoderLayer(dim, 4, 4 * dim, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = frames + self.blocks(frames + self.pos[: frames.shape[1]], src_key_padding_mask=mask == 0)
        return masked_mean(x, mask)


def t2v(text: torch.Tensor, video: torch.Tensor, text_video: list[int]) -> tuple[dict, np.ndarray]:
    """Metrics of ``text [Nt,D]`` against ``video [Nv,D]`` (cosine) and each caption's t2v rank."""
    sim = F.normalize(text, dim=-1) @ F.normalize(video, dim=-1).T
    return evaluate_retrieval(sim, text_video), ranks_from_scores(sim, text_video, ties="optimistic")


def by_oracle(ranks: np.ndarray, n_true: np.ndarray) -> list[dict]:
    rows = []
    for lo, hi in BUCKETS:
        sel = (n_true >= lo) & (n_true <= hi)
        if sel.any():
            rows.append({"n_true": f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi < 10**9 else f">{lo - 1}"),
                         "captions": int(sel.sum()), "R1": round(100 * float(np.mean(ranks[sel] < 1)), 1),
                         "oracle_R1": round(100 * float(np.mean(1.0 / n_true[sel])), 1),
                         "median_rank": float(np.median(ranks[sel]) + 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, required=True, help="a feature cache folder (glscl-lite cache features)")
    ap.add_argument("--config", default="synthetic", help="preset whose split settings carve validation")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3, help="temporal probe")
    ap.add_argument("--text-lr", type=float, default=1e-4, help="the trunk's text tower")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--json", type=Path, default=None, help="add the result to this file, keyed by --key")
    ap.add_argument("--key", default=None,
                    help="the result's key in --json (default: the cache folder's name; give another when a cache "
                         "of that name was rebuilt from other weights, so the earlier entry stays)")
    args = ap.parse_args()

    cache = FeatureCache(args.features)
    meta = cache.meta
    cfg = resolve_config(args.config, [f"anno_path={meta['anno_path']}"])
    splits = build_splits(cfg)
    test = splits.test
    if test is None:
        raise UserError(f"{meta['anno_path']}: no test list")
    oracle = {(c["video_id"], c["sentence"]): c["n_true"] for c in load_oracle(meta["anno_path"])["test"]["captions"]}
    n_true = np.array([oracle[(c.video_id, c.caption)] for c in test.captions])
    frames = torch.from_numpy(np.asarray(cache.frame_feats, dtype=np.float32))
    mask = torch.from_numpy(np.asarray(cache.video_mask, dtype=np.int64))
    test_v = torch.as_tensor(cache.video_rows(test.video_ids))
    test_s = torch.from_numpy(np.asarray(cache.sentence[cache.caption_rows(test.captions)], dtype=np.float32))

    zs, zs_ranks = t2v(test_s, masked_mean(F.normalize(frames[test_v], dim=-1), mask[test_v]), test.text_video)  # meanP
    result = {"features": str(args.features), "base_encoder": meta["base_encoder"], "pretrained": meta["pretrained"],
              "backbone_checksum": meta["backbone_checksum"], "test_captions": len(test.captions),
              "oracle_R1": round(100 * float(np.mean(1.0 / n_true)), 1),
              "zero_shot": {"t2v": zs["t2v"], "v2t": zs["v2t"], "by_oracle": by_oracle(zs_ranks, n_true)},
              "probe": {"steps": args.steps, "batch": args.batch, "lr": args.lr, "text_lr": args.text_lr, "seeds": {}},
              "machine": machine_name(), "threads": torch.get_num_threads()}
    print(f"{args.features}: zero-shot meanP t2v R@1 {zs['t2v']['R1']:.1f} R@5 {zs['t2v']['R5']:.1f} "
          f"(oracle ceiling {result['oracle_R1']})")

    train_videos = splits.train_videos
    by_video: dict[str, list[str]] = {}
    for c in splits.train:
        by_video.setdefault(c.video_id, []).append(c.caption)
    train_rows = cache.video_rows(train_videos)
    test_ids, test_mask = tokenize([c.caption for c in test.captions], cfg.max_words)
    for seed in args.seeds:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        trunk = CLIPBackbone(meta["base_encoder"], meta["pretrained"], meta.get("text_mask", "official"))
        if backbone_checksum(trunk) != meta["backbone_checksum"]:
            raise UserError(f"{args.features}: its backbone checksum differs from {meta['base_encoder']} / "
                            f"{meta['pretrained']} as loaded now (other weights)")
        trunk.clip.visual.requires_grad_(False)
        scale = float(trunk.clip.logit_scale.detach().exp())
        probe = TemporalProbe(frames.shape[-1], frames.shape[1])
        text_params = [p for n, p in trunk.clip.named_parameters() if not n.startswith("visual") and p.requires_grad
                       and "logit_scale" not in n]
        opt = torch.optim.AdamW([{"params": text_params, "lr": args.text_lr},
                                 {"params": probe.parameters(), "lr": args.lr}], weight_decay=0.2)
        t0, losses = time.process_time(), []
        for step in range(args.steps):
            pick = rng.choice(len(train_videos), args.batch, replace=False)
            sents = [by_video[train_videos[i]][rng.integers(len(by_video[train_videos[i]]))] for i in pick]
            ids, tmask = tokenize(sents, cfg.max_words, workers=1)
            text, _ = trunk.encode_text(ids, tmask)
            rows = torch.as_tensor(train_rows[pick])
            video = probe(frames[rows], mask[rows])
            loss = info_nce(scale * F.normalize(text, dim=-1) @ F.normalize(video, dim=-1).T)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        trunk.eval()
        probe.eval()
        with torch.no_grad():
            text, _ = trunk.encode_text(test_ids, test_mask)
            res, ranks = t2v(text, probe(frames[test_v], mask[test_v]), test.text_video)
        result["probe"]["seeds"][str(seed)] = {
            "t2v": res["t2v"], "v2t": res["v2t"], "by_oracle": by_oracle(ranks, n_true),
            "train_loss_last50": round(float(np.mean(losses[-50:])), 3), "train_loss_first10": round(float(np.mean(losses[:10])), 3),
            "cpu_seconds": round(time.process_time() - t0, 1)}
        print(f"  probe seed {seed}: t2v R@1 {res['t2v']['R1']:.1f} R@5 {res['t2v']['R5']:.1f}, "
              f"train loss {np.mean(losses[:10]):.2f} -> {np.mean(losses[-50:]):.2f}")
    r1 = [s["t2v"]["R1"] for s in result["probe"]["seeds"].values()]
    result["probe"]["t2v_R1_mean"], result["probe"]["t2v_R1_std"] = round(float(np.mean(r1)), 2), round(float(np.std(r1, ddof=1)) if len(r1) > 1 else 0.0, 2)
    print(f"probe t2v R@1 {result['probe']['t2v_R1_mean']:.1f} ± {result['probe']['t2v_R1_std']:.1f} over {len(r1)} seed(s)")
    if args.json:
        table = json.loads(args.json.read_text()) if args.json.is_file() else {}
        table[args.key or args.features.name] = result
        write_json_atomic(args.json, table)


if __name__ == "__main__":
    main()
