"""A held-out synthetic gallery for the shipped trained GLSCL, and what its captions are true of.

The shipped head (:mod:`glscl_lite.model.shipped`) was trained on the 10,000-video synthetic corpus
of seed 0.  Every seed-0 corpus draws the same scenes for the same video ids (apart from the
hard-negative pairs, which depend on the corpus size), so the series' own corpora -- the 48-video
smoke corpus and the 1,000-video CPU corpus, both seed 0 -- share scenes *and captions* with the
head's training videos: of the smoke corpus's 8 test videos, 5 are training videos of the head.
Results of the shipped head on those corpora are partly memory.  Notebooks 07 and 11 therefore look
at the shipped head on a corpus of another seed (:data:`HELDOUT_SEED`), whose scenes it never saw.

For every caption of a synthetic corpus the scene specs say which videos it is *true of*
(:mod:`glscl_lite.data.caption_truth`): :func:`truth_matrix` gives that for a whole gallery, and
:func:`query_meaning` reads a free-text query (a colour, a shape, a size, a motion, a background)
into the same claims, so a search result can be judged too.

:func:`export_shipped_run` writes the shipped model as a run folder, so everything that takes a run
(``glscl-lite index build --run``, :func:`glscl_lite.search.build_index`, ``glscl-lite eval``) takes
it unchanged.
"""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from glscl_lite.data import synthetic as syn
from glscl_lite.data.caption_truth import (CaptionMeaning, SceneFacts, caption_true_of, claim_check,  # noqa: F401
                                           count_true, failed_claims, oracle_recall, scene_facts, traced_captions)
from glscl_lite.utils import PathLike

__all__ = ["HELDOUT_SEED", "heldout_corpus", "corpus_scenes", "caption_meanings", "every_caption_oracle",
           "truth_matrix",
           "query_meaning", "failed_claims", "claim_check", "k_occurrence", "skewness", "export_shipped_run"]

HELDOUT_SEED = 1
"""Seed of the held-out gallery (the shipped head was trained on seed 0)."""


def heldout_corpus(work_dir: PathLike, n_videos: int, image_size: int = 64, max_frames: int = 12,
                   seed: int = HELDOUT_SEED) -> Path:
    """``work_dir/heldout-seed<seed>-<n>``: a synthetic corpus of ``n_videos`` (reused when there)
    with a frame cache ``frames-<image_size>`` inside it."""
    from glscl_lite.data.cache import FrameCache, build_frame_cache
    from glscl_lite.data.msrvtt import all_video_ids

    out = Path(work_dir) / f"heldout-seed{seed}-{n_videos}"
    syn.generate_corpus(out, n_videos=n_videos, seed=seed, progress=False)
    cache = out / f"frames-{image_size}"
    ids = all_video_ids(out)
    if not (cache / "index.json").is_file() or not all(v in FrameCache(cache) for v in ids):
        build_frame_cache(ids, out / "videos", cache, max_frames=max_frames, image_size=image_size,
                          progress=False)
    return out


def _corpus(corpus_dir: PathLike) -> dict[str, Any]:
    data = json.loads((Path(corpus_dir) / "MSRVTT_data.json").read_text())
    if data.get("info", {}).get("generator", {}).get("name") != "glscl_lite.data.synthetic":
        raise ValueError(f"{corpus_dir}: not a synthetic corpus; caption truth needs the scene specs")
    return data


def corpus_scenes(corpus_dir: PathLike) -> dict[str, syn.Scene]:
    """Scene spec of every video of a synthetic corpus."""
    return {v["video_id"]: syn.Scene.from_dict(v["synthetic"]["scene"]) for v in _corpus(corpus_dir)["videos"]}


def caption_meanings(corpus_dir: PathLike, video_ids: Sequence[str]) -> dict[str, list[CaptionMeaning]]:
    """The claims of every annotated caption of ``video_ids`` (same order as the annotation file),
    re-traced from the scene and the generator's caption stream; checked against the annotated text."""
    from glscl_lite.data.synthetic.sampling import scene_rng

    data = _corpus(corpus_dir)
    seed = int(data["info"]["generator"]["seed"])
    videos = {v["video_id"]: v for v in data["videos"]}
    texts: dict[str, list[str]] = {}
    for s in data["sentences"]:
        texts.setdefault(s["video_id"], []).append(s["caption"])
    out = {}
    for vid in video_ids:
        v = videos[vid]
        meanings = traced_captions(syn.Scene.from_dict(v["synthetic"]["scene"]), scene_rng(seed, int(v["id"]), 2))
        if [m.text for m in meanings] != texts[vid]:
            raise RuntimeError(f"{vid}: re-traced captions differ from the annotation; caption_truth is out of "
                               "step with the generator that wrote this corpus")
        out[vid] = meanings
    return out


def truth_matrix(meanings: Sequence[CaptionMeaning], facts: Sequence[SceneFacts]) -> np.ndarray:
    """``[captions, videos]`` bool: caption i is true of video j."""
    return np.array([[caption_true_of(m, f) for f in facts] for m in meanings], dtype=bool).reshape(
        len(meanings), len(facts))


def every_caption_oracle(corpus_dir: PathLike, video_ids: Sequence[str]) -> dict[str, Any]:
    """The oracle ceiling when every annotated caption of ``video_ids`` queries the gallery of those
    videos (MSR-VTT's "full" protocol, :func:`glscl_lite.data.splits.all_test_captions`): each caption's
    number of true videos, then :func:`~glscl_lite.data.caption_truth.oracle_recall`.  Returns
    ``{"R1", "R5", "R10", "mean_n_true", "unique", "n_captions"}`` (recalls in percent).  About 4 s per
    1,000 captions against 1,000 videos on one core."""
    scenes = corpus_scenes(corpus_dir)
    missing = [v for v in video_ids if v not in scenes]
    if missing:
        raise ValueError(f"{corpus_dir}: video {missing[0]} is not in the corpus ({len(missing)} such videos)")
    meanings = caption_meanings(corpus_dir, video_ids)
    queries = [m for v in video_ids for m in meanings[v]]
    n_true = [len(t) for t in count_true(queries, [scene_facts(scenes[v]) for v in video_ids])]
    return {**oracle_recall(n_true), "n_captions": len(queries)}


# ------------------------------------------------------------------------------- free-text queries
def _words_of(table: dict[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(phrase, key) pairs, longest phrase first (so "dark blue" wins over "blue")."""
    pairs = [(w, k) for k, words in table.items() for w in words]
    return sorted(pairs, key=lambda p: -len(p[0]))


_MOTION_WORDS = {m: tuple(syn.MOTION_VERBS[m]) + tuple(syn.MOTION_GERUNDS[m]) + (m,) for m in syn.MOTIONS}
_MOTION_WORDS["left"] += ("leftward", "leftwards", "to the left")
_MOTION_WORDS["right"] += ("rightward", "rightwards", "to the right")
_MOTION_WORDS["up"] += ("upward", "upwards", "rising")
_MOTION_WORDS["down"] += ("downward", "downwards", "falling")
_BACKGROUND_WORDS = {k: (k,) for k in syn.SCENE_BACKGROUNDS}
_BACKGROUND_WORDS.update({"stripes": ("stripes", "striped"), "gradient": ("gradient",), "noise": ("noisy", "noise"),
                          "solid": ("plain",)})
_STOP = {"a", "an", "the", "of", "on", "in", "is", "and", "with", "video", "clip", "across", "screen", "from",
         "to", "that", "it", "moves", "goes", "one", "shape", "object", "background"}


def query_meaning(text: str) -> tuple[CaptionMeaning, list[str]]:
    """Claims of a one-object free-text query, read with the generator's vocabulary: colour, shape
    (with its synonyms: "ball" = circle), size, motion (by its verbs or the bare direction: "rolls left"
    claims the motion left) and a named background.  Returns the meaning and the words it did not read
    (they make no claim: "rolls" in "a red ball rolls left")."""
    t = " " + re.sub(r"[^a-z ]", " ", text.lower()) + " "
    t = re.sub(r"\s+", " ", t)
    claims: list[tuple] = []
    used = t

    def take(table: dict[str, Sequence[str]]) -> Optional[str]:
        nonlocal used
        for phrase, key in _words_of(table):
            if f" {phrase} " in used:
                used = used.replace(f" {phrase} ", " ", 1)
                return key
        return None

    bg = take(_BACKGROUND_WORDS)
    if bg:
        claims.append(("bg_kind", bg))
    for name, table in (("motion_in", _MOTION_WORDS), ("size", syn.SIZE_WORDS), ("colour", syn.COLOUR_WORDS),
                        ("shape", syn.SHAPE_WORDS)):
        key = take(table)
        if key is not None:
            claims.append((name, 0, frozenset({key}) if name == "motion_in" else key))
    unread = [w for w in used.split() if w not in _STOP]
    return CaptionMeaning(text, "query", tuple(claims)), unread


# ------------------------------------------------------------------------------------------ hubness
def k_occurrence(sim, k: int = 1) -> np.ndarray:
    """``N_k`` per gallery item: how many query rows of ``sim [Q,N]`` rank it among their top ``k``."""
    import torch

    x = torch.as_tensor(sim).float()
    top = x.topk(min(k, x.shape[1]), dim=1).indices.reshape(-1).numpy()
    return np.bincount(top, minlength=x.shape[1])


def skewness(x) -> float:
    """Sample skewness ``E[(x - mean)^3] / std^3`` (the usual hubness statistic of ``N_k``)."""
    x = np.asarray(x, dtype=float)
    s = x.std()
    return float(((x - x.mean()) ** 3).mean() / s ** 3) if s > 0 else 0.0


# --------------------------------------------------------------------------- the shipped model as a run
def export_shipped_run(run_dir: PathLike, corpus_dir: PathLike, frame_cache: Optional[PathLike] = None) -> Path:
    """Write the shipped trained GLSCL as a finished run folder pointed at ``corpus_dir`` (config.json,
    checkpoints/best.pt with the stand-in CLIP and the trained head, results.json with the record's test
    metrics and ``"shipped"`` = the record).  Reused when it holds the same weights and corpus."""

    from glscl_lite import runs
    from glscl_lite.model.shipped import load_shipped_glscl, training_overlap
    from glscl_lite.utils import write_json_atomic

    run_dir, corpus_dir = Path(run_dir), Path(corpus_dir)
    model, cfg, record = load_shipped_glscl(anno_path=str(corpus_dir), video_path=str(corpus_dir / "videos"),
                                            frame_cache=str(frame_cache) if frame_cache else None)
    seen = training_overlap(record, corpus_dir)
    if seen:
        warnings.warn(f"{corpus_dir}: {len(seen)} of its test videos ({', '.join(seen[:3])}, ...) share their "
                      "scenes with the shipped head's training videos (same generator seed): its metrics "
                      f"there are not held-out; use a corpus of another seed (heldout_corpus, seed {HELDOUT_SEED})",
                      stacklevel=2)
    old = runs.read_results(run_dir) if runs.config_path(run_dir).is_file() else None
    if old is not None and old.get("shipped", {}).get("sha256") == record["sha256"] and \
            runs.run_config(run_dir) == cfg and runs.checkpoint_path(run_dir).is_file():
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_config(run_dir, cfg)
    runs.save_checkpoint({"model": model.state_dict(), "config": cfg.to_dict(), "step": record.get("steps")},
                         runs.checkpoint_path(run_dir))
    write_json_atomic(runs.results_path(run_dir), {"test": record.get("test"), "steps": record.get("steps"),
                                                   "best_step": record.get("best_step"), "shipped": record})
    return run_dir
