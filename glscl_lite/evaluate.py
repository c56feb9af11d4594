"""Evaluation: encode each text and each video once, score in blocks, rank both ways.

Unlike the official loop, which re-runs the LIM decoders for every 16 x 16 block (spec 5, 13), the
per-item features (concepts included) are computed once and only the cheap pairwise part runs per
block -- same scores, far less work.  Timings of the two phases are reported like the official
``time profile: feat ... match ...`` log line.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import torch

from glscl_lite.config import Config
from glscl_lite.data.splits import EvalSet
from glscl_lite.metrics import evaluate_retrieval
from glscl_lite.encode import encode_texts, encode_videos  # noqa: F401  (re-exported: notebook 07, search)
from glscl_lite.model.glscl import RetrievalModel
from glscl_lite.utils import PathLike, write_json_atomic
from glscl_lite.utils import sync as _sync


@torch.no_grad()
def evaluate_model(model: RetrievalModel, evalset: EvalSet, cfg: Config, device: torch.device,
                   source=None, features=None, dsl: bool = False,
                   return_similarity: bool = False, ties: str = "official") -> dict[str, Any]:
    """Metrics both ways on ``evalset`` plus timings (``feat`` = encoding, ``match`` = scoring);
    ``ties``: how equal scores are ranked (:func:`glscl_lite.metrics.ranks_from_scores`)."""
    was_training = model.training
    model.eval()
    _sync(device)
    t0 = time.perf_counter()
    text = encode_texts(model, evalset.captions, cfg, device, features)
    video = encode_videos(model, evalset.video_ids, cfg, device, source, features)
    _sync(device)
    t1 = time.perf_counter()
    sim = model.similarity(text, video, chunk=cfg.eval_chunk)
    _sync(device)
    t2 = time.perf_counter()
    out: dict[str, Any] = evaluate_retrieval(sim.cpu(), evalset.text_video, ties=ties, dsl=dsl)
    out.update(split=evalset.name, n_texts=len(evalset.captions), n_videos=len(evalset.video_ids),
               seconds_feat=round(t1 - t0, 4), seconds_match=round(t2 - t1, 4))
    if return_similarity:
        out["similarity"] = sim.cpu()
    model.train(was_training)
    return out


def load_run_model(run_dir: PathLike, checkpoint: str = "best", device: Optional[str] = None):
    """(model, cfg, device) from a run folder; ``checkpoint`` = best | last | a path."""
    from glscl_lite.runs import load_checkpoint_into, run_config

    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    from glscl_lite.utils import resolve_device

    dev = resolve_device(device or cfg.device)
    model = RetrievalModel(cfg.replace(pretrained=None)).to(dev)
    load_checkpoint_into(model, run_dir, checkpoint)
    return model.eval(), cfg, dev


def evaluate_run(run_dir: PathLike, split: str = "test", dsl: bool = False, checkpoint: str = "best",
                 json_path: Optional[PathLike] = None, device: Optional[str] = None,
                 ties: str = "official", probes: bool = False) -> dict[str, Any]:
    """``glscl-lite eval``: metrics of a trained run on the test (or val) split; ``probes`` adds
    ``"probes"`` and ``"oracle"`` of a synthetic corpus (:mod:`glscl_lite.probes_eval`)."""
    from glscl_lite.data.splits import build_splits
    from glscl_lite.errors import DataError
    from glscl_lite.features import video_inputs

    model, cfg, dev = load_run_model(run_dir, checkpoint, device)
    splits = build_splits(cfg)
    evalset = splits.test if split == "test" else splits.val
    if evalset is None:
        raise DataError(f"{cfg.resolve(cfg.test_csv)}: no test split in {cfg.anno_path}")
    source, features = video_inputs(cfg, model.backbone.image_size)
    result = evaluate_model(model, evalset, cfg, dev, source=source, features=features, dsl=dsl or cfg.dsl,
                            ties=ties)
    result.update(checkpoint=checkpoint, ties=ties)
    if probes:
        from glscl_lite.probes_eval import score_probes, test_oracle

        result["oracle"] = test_oracle(cfg.anno_path, evalset.captions)
        result["probes"] = score_probes(model, cfg, dev)
    if json_path:
        write_json_atomic(json_path, result)
    return result

