"""Local Interaction Module (LIM), spec/glscl.md section 3 -- shared learnable queries.

K learnable queries (``torch.rand`` init, U[0,1)) go through a ``torch.nn.TransformerDecoder``
of N_L post-norm ReLU layers (d, 8 heads, FFN 2048, dropout 0.1; all layers identical at init
because the decoder deep-copies one layer) with the item's tokens as memory: post-temporal frames
for a video, all word tokens for a text.  The decoder sees one modality at a time, so an item's
concepts depend only on that item and can be computed once and cached.  Concepts are L2-normalised
and the local score compares concept k of the text with concept k of the video::

    Sim2[a,b] = (1/K) sum_k <t_hat[a,k], v_hat[b,k]>

Sharing (official default: both on) -- with ``share_queries`` one query tensor serves both
modalities, with ``share_decoder`` one decoder does; the unused official extras (second query set,
second decoder, template layers, ``weight_fc``) are simply not built.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from glscl_lite.losses import promote_half


def _decoder(dim: int, num_layers: int, num_heads: int, ffn_dim: int, dropout: float) -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(d_model=dim, nhead=num_heads, dim_feedforward=ffn_dim,
                                       dropout=dropout, activation="relu", norm_first=False)
    # TransformerDecoder deep-copies ``layer``: all N_L layers start identical (spec 3.1).
    # ``layer`` itself is not kept as a sub-module (the official code registers it; it is dead).
    return nn.TransformerDecoder(layer, num_layers=num_layers)


class LocalInteraction(nn.Module):
    """Shared-query cross-attention concepts.

    Args:
        dim: feature width D (512 for ViT-B/32).
        num_queries: K (official 8).
        num_layers: N_L decoder layers (official 3).
        num_heads: decoder heads (official 8).
        share_queries: one query tensor for both modalities (official ``--query_share 1``).
        share_decoder: one decoder for both modalities (official ``--cross_att_share 1``).
        ffn_dim, dropout: decoder FFN width (2048) and dropout (0.1).
        mask_padding: pass key-padding masks (padded words / frames); official: False (S5).
    """

    def __init__(self, dim: int = 512, num_queries: int = 8, num_layers: int = 3, num_heads: int = 8,
                 share_queries: bool = True, share_decoder: bool = True, ffn_dim: int = 2048,
                 dropout: float = 0.1, mask_padding: bool = False):
        super().__init__()
        self.dim, self.num_queries = dim, num_queries
        self.share_queries, self.share_decoder = share_queries, share_decoder
        self.mask_padding = mask_padding
        self.queries = nn.Parameter(torch.rand(num_queries, dim))  # U[0,1) as torch.rand (spec 3.1)
        self.text_queries = None if share_queries else nn.Parameter(torch.rand(num_queries, dim))
        self.decoder = _decoder(dim, num_layers, num_heads, ffn_dim, dropout)
        self.text_decoder = None if share_decoder else _decoder(dim, num_layers, num_heads, ffn_dim, dropout)

    # -- which parameters serve which modality --------------------------------------------------
    def _text_queries(self) -> nn.Parameter:
        return self.queries if self.text_queries is None else self.text_queries

    def _text_decoder(self) -> nn.TransformerDecoder:
        return self.decoder if self.text_decoder is None else self.text_decoder

    # -- encoding ------------------------------------------------------------------------------
    def _concepts(self, decoder: nn.TransformerDecoder, queries: torch.Tensor, memory: torch.Tensor,
                  mask: Optional[torch.Tensor]) -> torch.Tensor:
        B = memory.shape[0]
        tgt = queries.unsqueeze(1).expand(-1, B, -1)                   # [K,B,D] sequence-first
        pad = (mask <= 0) if (self.mask_padding and mask is not None) else None
        out = decoder(tgt, memory.transpose(0, 1), memory_key_padding_mask=pad)  # [K,B,D]
        out = out.transpose(0, 1)                                       # [B,K,D]
        return out / out.norm(dim=-1, keepdim=True)

    def encode_video(self, frames: torch.Tensor, frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Post-temporal frames ``[Bv,T,D]`` -> L2-normalised video concepts ``[Bv,K,D]``."""
        return self._concepts(self.decoder, self.queries, frames, frame_mask)

    def encode_text(self, words: torch.Tensor, text_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Word tokens ``[Bt,L,D]`` -> L2-normalised text concepts ``[Bt,K,D]``."""
        return self._concepts(self._text_decoder(), self._text_queries(), words, text_mask)

    @staticmethod
    @torch.autocast("cuda", enabled=False)
    def similarity(text_concepts: torch.Tensor, video_concepts: torch.Tensor) -> torch.Tensor:
        """Sim2 ``[Bt,Bv]`` = mean over k of <t_hat[a,k], v_hat[b,k]> (matched query index).

        One matmul of the flattened ``[B,K*D]`` concepts.  The einsum ``akd,bkd->ab`` it replaces
        gives the same numbers but, on CPU, is lowered to a batched product over k followed by a
        sum: ~50x slower for one query against 10k videos (688 ms vs 13.5 ms, ViT-B/32 sizes, one
        thread) -- the cause of the slow GLSCL rows in the first ``bench_latency.py`` results.
        """
        t, v = promote_half(text_concepts), promote_half(video_concepts)
        return (t.flatten(1) @ v.flatten(1).transpose(0, 1)) / t.shape[1]

    def attention_maps(self, memory: torch.Tensor, mask: Optional[torch.Tensor] = None,
                       modality: str = "video") -> list[torch.Tensor]:
        """Cross-attention weights of each decoder layer, ``[B,K,M]`` per layer (head-averaged).

        For the notebooks: which frames / words each query looks at.  Runs the decoder layer by
        layer with the same computation as ``encode_*`` (dropout follows ``self.training``).
        """
        decoder = self.decoder if modality == "video" else self._text_decoder()
        queries = self.queries if modality == "video" else self._text_queries()
        pad = (mask <= 0) if (self.mask_padding and mask is not None) else None
        mem = memory.transpose(0, 1)
        x = queries.unsqueeze(1).expand(-1, memory.shape[0], -1)
        maps = []
        for layer in decoder.layers:
            x = layer.norm1(x + layer._sa_block(x, None, None))
            attn_out, weights = layer.multihead_attn(x, mem, mem, key_padding_mask=pad,
                                                     need_weights=True, average_attn_weights=True)
            maps.append(weights.detach())
            x = layer.norm2(x + layer.dropout2(attn_out))
            x = layer.norm3(x + layer._ff_block(x))
        return maps
