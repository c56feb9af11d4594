"""Zero-shot evaluation of a (stand-in) CLIP, the way CLIP itself is evaluated.

* **Zero-shot classification** of four attributes of held-out frames that show one object on a
  named scene background (:func:`~glscl_lite.data.frame_world.zero_shot_frames`): colour (10
  classes, chance 10 %), shape (8, 12.5 %), size (3, 33 %) and background (8, 12.5 %).  Each class
  is represented by a *prompt ensemble*: the mean normalised text embedding of every prompt
  ``"a {size} {colour} {shape} {background phrase}"`` that has that class, over all values of the
  other attributes (canonical words; CLIP averages over templates the same way).
  This *ensemble* reading is the reported zero-shot accuracy (fixed before any stand-in was trained).
* A second reading, ``joint`` (a diagnostic, reported beside it as ``zero_shot_joint``): every one of
  the 1,920 prompts is a class of its own and the frame takes the attributes of the single best
  prompt.  The ensemble averages each shape's score over every wrong colour, size and background; a
  CLIP whose embedding is not additive in the attributes (the hybrid stand-ins are not: the ensemble
  reads a large object's shape about 30 points worse than the joint reading does) loses accuracy there
  that it has (``docs/results/pretrain/README.md``, "How you read a CLIP matters").
* **Frame <-> caption retrieval**: R@1 both ways among held-out frames of the full distribution
  (one to three objects, any background) and their per-frame captions.

Everything is in percent.  ``glscl-lite zeroshot --json FILE`` writes
``{"zero_shot": {"colour", "shape", "size", "background"}, "zero_shot_joint": {...the same four},
"retrieval": {"t2i_R1", "i2t_R1"}, "confusion": ..., "chance": ..., "frames": ...}``.
"""
from __future__ import annotations

import itertools
from typing import Any, Optional

import torch

from glscl_lite.data import synthetic as syn
from glscl_lite.data.frame_world import make_frame, zero_shot_frames
from glscl_lite.data.text import tokenize
from glscl_lite.data.video import images_to_input
from glscl_lite.metrics import retrieval_metrics

__all__ = ["ATTRIBUTES", "CHANCE", "READINGS", "prompt_table", "zero_shot", "zero_shot_predictions", "evaluate_clip"]

ATTRIBUTES = ("colour", "shape", "size", "background")
CHANCE = {"colour": 100 / len(syn.COLOURS), "shape": 100 / len(syn.SHAPES), "size": 100 / len(syn.SIZES),
          "background": 100 / len(syn.SCENE_BACKGROUNDS)}
READINGS = ("ensemble", "joint")
"""How class scores are read from prompt similarities: the mean prompt of each class (``ensemble``, the
reported protocol) or the class of the single best prompt (``joint``)."""
RETRIEVAL_OFFSET = 1_000_000
"""Retrieval frames are frames ``RETRIEVAL_OFFSET + i`` of the ``eval`` stream (the zero-shot frames are ``0..n-1``)."""


def prompt_table() -> list[dict[str, str]]:
    """Every (size, colour, shape, background) combination with its prompt (canonical words)."""
    rows = []
    for size, colour, shape, bg in itertools.product(syn.SIZES, syn.COLOURS, syn.SHAPES, syn.SCENE_BACKGROUNDS):
        phrase = syn.BACKGROUND_PHRASES[bg][0]
        rows.append({"size": size, "colour": colour, "shape": shape, "background": bg,
                     "prompt": f"{syn._article(size)} {size} {colour} {shape} {phrase}"})
    return rows


@torch.no_grad()
def _encode_texts(model: torch.nn.Module, texts: list[str], batch: int = 512) -> torch.Tensor:
    ids, _ = tokenize(texts, model.context_length, workers=1)
    return torch.cat([model.encode_text(ids[i:i + batch], normalize=True) for i in range(0, len(ids), batch)])


@torch.no_grad()
def _encode_images(model: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """uint8 ``[N,S,S,3]`` frames -> normalised image embeddings ``[N,D]``."""
    return torch.cat([model.encode_image(images_to_input(images[i:i + batch]), normalize=True)
                      for i in range(0, len(images), batch)])


def _image_size(model: torch.nn.Module) -> int:
    size = model.visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


@torch.no_grad()
def zero_shot_predictions(model: torch.nn.Module, n_frames: int = 1000, seed: int = 0, reading: str = "ensemble"
                          ) -> dict[str, tuple[list[str], list[str]]]:
    """``{attribute: (predicted classes, true classes)}``, one entry per held-out frame, in frame order
    (frames ``0 .. n_frames-1`` of stream ``eval``, ``seed``): what :func:`zero_shot` scores, kept
    per frame so that two models can be compared frame by frame (a paired test).  ``reading``: one
    of :data:`READINGS` (image embeddings ``[N,D]`` against prompt embeddings ``[1920,D]``)."""
    import numpy as np

    if reading not in READINGS:
        raise ValueError(f"reading must be one of {READINGS}, got {reading!r}")
    model.eval()
    table = prompt_table()
    text = _encode_texts(model, [r["prompt"] for r in table])
    frames = zero_shot_frames(n_frames, _image_size(model), seed=seed)
    img = _encode_images(model, torch.from_numpy(np.stack([f.image for f in frames])))
    truth = {"colour": [f.objects[0].colour for f in frames], "shape": [f.objects[0].shape for f in frames],
             "size": [f.objects[0].size for f in frames], "background": [f.background for f in frames]}
    if reading == "joint":
        best = (img @ text.T).argmax(dim=1).tolist()
        return {attr: ([table[i][attr] for i in best], truth[attr]) for attr in ATTRIBUTES}
    out: dict[str, tuple[list[str], list[str]]] = {}
    for attr in ATTRIBUTES:
        classes = list(dict.fromkeys(r[attr] for r in table))
        protos = torch.stack([text[[i for i, r in enumerate(table) if r[attr] == c]].mean(0) for c in classes])
        protos = torch.nn.functional.normalize(protos, dim=-1)
        out[attr] = ([classes[i] for i in (img @ protos.T).argmax(dim=1).tolist()], truth[attr])
    return out


def zero_shot(model: torch.nn.Module, n_frames: int = 1000, seed: int = 0,
              confusion: Optional[dict[str, dict[str, dict[str, int]]]] = None, reading: str = "ensemble"
              ) -> dict[str, Any]:
    """Zero-shot accuracy (percent) per attribute on ``n_frames`` held-out one-object frames
    (``reading``: one of :data:`READINGS`; ``ensemble`` is the reported protocol).

    ``confusion``, when given, is filled with ``{attribute: {true class: {predicted class: count}}}``.
    """
    out: dict[str, Any] = {}
    classes = {attr: list(dict.fromkeys(r[attr] for r in prompt_table())) for attr in ATTRIBUTES}
    for attr, (pred, truth) in zero_shot_predictions(model, n_frames, seed, reading).items():
        out[attr] = round(100.0 * sum(p == t for p, t in zip(pred, truth)) / len(truth), 2)
        if confusion is not None:
            counts = confusion.setdefault(attr, {c: {} for c in classes[attr]})
            for p, t in zip(pred, truth):
                counts[t][p] = counts[t].get(p, 0) + 1
    return out


@torch.no_grad()
def retrieval(model: torch.nn.Module, n_frames: int = 1000, seed: int = 0) -> dict[str, float]:
    """Frame <-> caption R@1 (percent) among ``n_frames`` held-out frames and their captions."""
    import numpy as np

    model.eval()
    size = _image_size(model)
    frames = [make_frame("eval", seed, RETRIEVAL_OFFSET + i, size) for i in range(n_frames)]
    img = _encode_images(model, torch.from_numpy(np.stack([f.image for f in frames])))
    txt = _encode_texts(model, [f.caption for f in frames])
    sim = txt @ img.T
    return {"t2i_R1": round(float(retrieval_metrics(sim)["R1"]), 2),
            "i2t_R1": round(float(retrieval_metrics(sim.T)["R1"]), 2)}


def evaluate_clip(model: torch.nn.Module, n_frames: int = 1000, seed: int = 0,
                  n_retrieval: Optional[int] = None) -> dict[str, Any]:
    """The ``zeroshot`` report: zero-shot accuracy, retrieval R@1, chance levels, frame counts."""
    n_retrieval = n_frames if n_retrieval is None else n_retrieval
    confusion: dict[str, dict[str, dict[str, int]]] = {}
    return {"zero_shot": zero_shot(model, n_frames, seed, confusion),
            "zero_shot_joint": zero_shot(model, n_frames, seed, reading="joint"),
            "retrieval": retrieval(model, n_retrieval, seed),
            "confusion": confusion,
            "chance": {k: round(v, 2) for k, v in CHANCE.items()} | {"t2i_R1": round(100 / n_retrieval, 2),
                                                                   "i2t_R1": round(100 / n_retrieval, 2)},
            "frames": {"zero_shot": n_frames, "retrieval": n_retrieval, "seed": seed}}
