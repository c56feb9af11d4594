"""Global Interaction Module (GIM), spec/glscl.md section 2 -- parameter-free.

For every text a and video b::

    w[a,b,v] = softmax over valid frames v of <t_a, f_{b,v}> / tau      (raw dot products)
    u[a,b]   = sum_v w[a,b,v] f_{b,v}                                    (text-conditioned video)
    Sim1     = cos(t_a, u[a,b])

The official code takes the softmax over all T frames and then zeroes padded frames without
renormalising; because the cosine is scale-invariant that equals a softmax over valid frames,
which is what is computed here.

``u`` is never materialised: ``<t, u> = sum_v w_v <t, f_v>`` reuses the dot products, and
``|u|^2 = w^T G w`` with the per-video frame Gram matrix ``G = F F^T [T,T]``.  Memory per
(text, video) pair is O(T) instead of O(D), which is what lets ``similarity`` score a
10,000 x 10,000 gallery in blocks.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from glscl_lite.losses import promote_half


class GlobalInteraction(nn.Module):
    """``forward(sent [Bt,D], frames [Bv,T,D], frame_mask [Bv,T]) -> Sim1 [Bt,Bv]``.

    Has no parameters at all (tests assert it).
    """

    def __init__(self, temperature: float = 3.0):
        super().__init__()
        self.temperature = float(temperature)

    def attention(self, sent: torch.Tensor, frames: torch.Tensor,
                  frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Frame weights ``w [Bt,Bv,T]``: masked softmax of raw dot products / temperature."""
        logits = torch.einsum("ad,bvd->abv", sent, frames) / self.temperature
        return self._masked_softmax(logits, frame_mask)

    @staticmethod
    def _masked_softmax(logits: torch.Tensor, frame_mask: Optional[torch.Tensor]) -> torch.Tensor:
        if frame_mask is not None:
            logits = logits.masked_fill(frame_mask.unsqueeze(0) <= 0, torch.finfo(logits.dtype).min)
        return torch.softmax(logits, dim=-1)

    @staticmethod
    def frame_gram(frames: torch.Tensor) -> torch.Tensor:
        """Per-video frame Gram matrices ``G = F F^T [Bv,T,T]`` (cacheable with the video)."""
        frames = promote_half(frames)
        return torch.einsum("bvd,bwd->bvw", frames, frames)

    @torch.autocast("cuda", enabled=False)
    def forward(self, sent: torch.Tensor, frames: torch.Tensor,
                frame_mask: Optional[torch.Tensor] = None, gram: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``gram`` (from :meth:`frame_gram`) may be passed to skip recomputing it per call."""
        sent, frames = promote_half(sent), promote_half(frames)  # keep the score in >= fp32
        dots = torch.einsum("ad,bvd->abv", sent, frames)                      # [Bt,Bv,T]
        w = self._masked_softmax(dots / self.temperature, frame_mask)
        t_dot_u = (w * dots).sum(-1)                                            # <t, u>
        gram = self.frame_gram(frames) if gram is None else promote_half(gram)  # [Bv,T,T]
        gw = torch.einsum("bvw,abw->abv", gram, w)                             # G w, [Bt,Bv,T]
        u_sq = (w * gw).sum(-1).clamp_min(0)                                   # |u|^2 = w^T G w
        t_norm = sent.norm(dim=-1, keepdim=True)                               # [Bt,1]
        return t_dot_u / (t_norm * u_sq.sqrt()).clamp_min(1e-12)

    def pooled(self, sent: torch.Tensor, frames: torch.Tensor,
               frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The text-conditioned video features ``u [Bt,Bv,D]`` (for teaching and plots)."""
        return torch.einsum("abv,bvd->abd", self.attention(sent, frames, frame_mask), frames)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
