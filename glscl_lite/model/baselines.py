"""Baseline similarity heads with the same interface as :class:`~glscl_lite.model.glscl.GLSCLHead`.

Every head has ``encode_text(sentence, words, mask) -> side``, ``encode_video(frames, mask) -> side``,
``score(text_side, video_side) -> [Bt,Bv]`` and ``losses(text, video, logit_scale) -> dict``.

* ``MeanPHead`` -- CLIP4Clip mean pooling: L2-normalise each frame, masked mean over frames,
  L2-normalise again, cosine with the sentence feature.  With ``agg_module="None"`` this is
  CLIP4Clip's meanP; with the default ``seqTransf`` it is CLIP4Clip's seqTransf variant.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from glscl_lite import losses as L
from glscl_lite.config import Config

Side = dict[str, torch.Tensor]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B,T,D]`` over positions where ``mask [B,T]`` is 1."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class MeanPHead(nn.Module):
    """CLIP4Clip mean pooling (parameter-free); per-pair cost is one D-dim dot product."""

    uses_temporal = True

    def __init__(self, cfg: Config, dim: int):
        super().__init__()
        self.cfg = cfg

    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        return {"sentence": F.normalize(sentence.float(), dim=-1)}

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> Side:
        pooled = masked_mean(F.normalize(frames.float(), dim=-1), mask)
        return {"video": F.normalize(pooled, dim=-1)}

    def score(self, text: Side, video: Side) -> torch.Tensor:
        return text["sentence"] @ video["video"].T

    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        sim = self.score(text, video)
        out = {"info_nce": L.info_nce(logit_scale * sim)}
        out["loss"] = out["info_nce"]
        out["sim_pos"] = sim.detach().diagonal().mean()
        return out


HEADS: dict[str, type[nn.Module]] = {"meanp": MeanPHead}
