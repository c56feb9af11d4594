"""What a similarity head is: the :class:`Head` protocol every head implements.

A head turns per-item features from the trunk (CLIP + temporal transformer) into a *side* per item
and scores (text side, video side) pairs::

    encode_text(sentence [Bt,D], words [Bt,L,D], mask [Bt,L]) -> text side
    encode_video(frames [Bv,T,D], mask [Bv,T] [, raw_frames=, patches=]) -> video side
    score(text side, video side) -> [Bt,Bv]
    losses(text side, video side, logit_scale) -> {"loss": ..., named terms}

A *side* (:data:`Side`) is a dict of tensors whose first dimension indexes items, so it can be
sliced, concatenated and cached.  What a head needs from the trunk is *declared* as class attributes
(the model reads them, never guesses): ``uses_raw_frames`` (also hand it the pre-temporal CLIP
frames), ``uses_patches`` (and the patch tokens).  What it offers beyond scoring: ``similarity``
(the full evaluation matrix; two-stage heads override it), and, for ``indexable`` heads, the
stage-1 vectors of the large-gallery search (:mod:`glscl_lite.search`).

Heads are added in one place, :mod:`glscl_lite.model.registry`.
"""
from __future__ import annotations

import abc
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from glscl_lite.config import Config
from glscl_lite.errors import UserError

Side = dict[str, torch.Tensor]
"""Per-item tensors of one modality (first dimension = items)."""


def slice_side(side: Side, start: int, stop: int) -> Side:
    return {k: v[start:stop] for k, v in side.items()}


def cat_sides(sides: list[Side]) -> Side:
    return {k: torch.cat([s[k] for s in sides]) for k in sides[0]}


def masked_mean_vector(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised masked mean of ``frames [N,T,D]`` -> ``[N,D]`` (a video's stage-1 vector)."""
    m = mask.float().unsqueeze(-1)
    return F.normalize((frames.float() * m).sum(1) / m.sum(1).clamp_min(1.0), dim=-1)


class Head(nn.Module, metaclass=abc.ABCMeta):
    """Base class and protocol of a similarity head (module docstring).

    Subclasses are built as ``cls(cfg, dim)`` and implement ``encode_text``, ``encode_video``,
    ``score`` and ``losses``; they declare their needs and offers in the class attributes below.
    """

    uses_raw_frames: bool = False
    """True: ``encode_video`` also takes ``raw_frames`` (pre-temporal CLIP frames) and ``patches``."""
    uses_patches: bool = False
    """True: the model hands ``encode_video`` the patch tokens ``[Bv,T,P,D]`` (see :meth:`needs_patches`)."""
    indexable: bool = False
    """True: the head offers stage-1 vectors (:meth:`coarse_video_vectors`, :meth:`coarse_query_vectors`)
    whose inner product is a faiss-indexable coarse score, so a search index can hold it."""
    paper_comparison: bool = False
    """True: one of the heads of the paper's efficiency comparison (Table I); False: a related method."""

    def __init__(self, cfg: Config, dim: int):
        super().__init__()
        self.cfg = cfg
        self.dim = dim

    # -- what the head needs ------------------------------------------------------------------------
    @classmethod
    def needs_patches(cls, cfg: Config) -> bool:
        """Whether a head built from ``cfg`` scores patch tokens (a feature cache must then store them)."""
        return cls.uses_patches

    # -- the interface (every head implements these four) --------------------------------------------
    @abc.abstractmethod
    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        """Text side of ``sentence [Bt,D]``, ``words [Bt,L,D]``, ``mask [Bt,L]`` (computed once per caption)."""

    @abc.abstractmethod
    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor, **trunk: Optional[torch.Tensor]) -> Side:
        """Video side of ``frames [Bv,T,D]``, ``mask [Bv,T]`` (computed once per video); ``trunk`` holds
        what :attr:`uses_raw_frames` / :attr:`uses_patches` heads also read."""

    @abc.abstractmethod
    def score(self, text: Side, video: Side) -> torch.Tensor:
        """Scores ``[Bt,Bv]`` of every text against every video of two sides."""

    @abc.abstractmethod
    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named training loss terms of a batch of matched pairs; ``"loss"`` is the one to back-propagate."""

    @torch.no_grad()
    def similarity(self, text: Side, video: Side, chunk: int) -> torch.Tensor:
        """Score matrix ``[Nt,Nv]`` in ``chunk x chunk`` blocks of :meth:`score` (memory bounded by a
        block).  Two-stage heads (EERCF) override it to rank the whole gallery themselves."""
        nt, nv = len(next(iter(text.values()))), len(next(iter(video.values())))
        out = torch.empty(nt, nv, dtype=torch.float32, device=next(iter(text.values())).device)
        for i in range(0, nt, chunk):
            t = slice_side(text, i, i + chunk)
            for j in range(0, nv, chunk):
                out[i:i + chunk, j:j + chunk] = self.score(t, slice_side(video, j, j + chunk)).float()
        return out

    # -- what the head offers to the search index -----------------------------------------------------
    @classmethod
    def coarse_video_vectors(cls, video: Side) -> torch.Tensor:
        """Per-video stage-1 vector ``[N,D]`` (only for ``indexable`` heads)."""
        raise UserError(f"head {cls.__name__} offers no coarse vector (not indexable)")

    @classmethod
    def coarse_query_vectors(cls, text: Side) -> torch.Tensor:
        """Per-query stage-1 vector ``[Q,D]``: its inner product with :meth:`coarse_video_vectors` is
        the coarse score."""
        raise UserError(f"head {cls.__name__} offers no coarse vector (not indexable)")
