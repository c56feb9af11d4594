"""Temporal transformer over frame features (``agg_module = seqTransf``), spec/glscl.md 1.4.

``x = F + P[:T]`` -> N pre-LN residual blocks (QuickGELU MLP, TF-style LayerNorm eps 1e-12,
additive key mask ``(1 - mask) * -1e6``) -> output ``+ F``.  Blocks start as copies of CLIP text
blocks 0..N-1 and the frame position table as a copy of CLIP's text positional embedding.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import torch
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class TemporalBlock(nn.Module):
    """Pre-LN residual attention block with CLIP's parameter names (so CLIP text blocks load)."""

    def __init__(self, width: int, heads: int, eps: float = 1e-12):
        super().__init__()
        self.heads = heads
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x ``[B,T,W]``, attn_mask additive ``[B*heads,T,T]``."""
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask.to(h.dtype))[0]
        return x + self.mlp(self.ln_2(x))


class TemporalTransformer(nn.Module):
    """``forward(frames [B,T,D], mask [B,T]) -> [B,T,D]`` (post-temporal frame features)."""

    def __init__(self, width: int, layers: int = 4, heads: int = 8, max_positions: int = 77):
        super().__init__()
        self.heads = heads
        self.frame_position_embeddings = nn.Embedding(max_positions, width)
        self.resblocks = nn.ModuleList([TemporalBlock(width, heads) for _ in range(layers)])

    @torch.no_grad()
    def init_from_clip(self, block_states: list[dict[str, torch.Tensor]], positional: torch.Tensor) -> None:
        """Copy CLIP text blocks 0..N-1 and the text positional table (the official init trick)."""
        for blk, state in zip(self.resblocks, block_states):
            blk.load_state_dict(state, strict=True)
        n = min(positional.shape[0], self.frame_position_embeddings.num_embeddings)
        self.frame_position_embeddings.weight[:n].copy_(positional[:n])

    def forward(self, frames: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, T, _ = frames.shape
        if mask is None:
            mask = frames.new_ones(B, T)
        x = frames + self.frame_position_embeddings.weight[:T].unsqueeze(0)
        add = (1.0 - mask.to(frames.dtype)).unsqueeze(1) * -1e6  # keys only; [B,1,T]
        attn = add.expand(B, T, T).repeat_interleave(self.heads, dim=0)
        for blk in self.resblocks:
            x = blk(x, attn)
        return x + frames
