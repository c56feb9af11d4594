"""GLCCL head: parameter-free GLIM pooling + four X-CLIP scores + CSC loss (spec/glccl_eercf.md section 3).

Per (text t, video v) pair, with post-temporal frames ``H_v = {h_i}`` and raw (un-normalised)
sentence ``s`` and word features ``w_l`` (all ``L`` positions, padding included, as released):

* **GLIM** -- text-guided pooling, ``Pool(q, H) = sum_i softmax_i(<q, h_i> / tau) h_i`` with tau = 5 on
  raw dot products and no frame mask (``glccl_frame_mask`` switches a masked softmax on):

  - global (sentence-guided) video feature ``g = normalize(Pool(s, H))``            [D]
  - local (word-guided) "frame" features  ``u_l = normalize(Pool(w_l, H))``, l=1..L  [L,D]

* **Four scores** (X-CLIP heads on the GLIM features; ``AW_A(c) = sum_l c_l [softmax(c/0.01) A]_l``,
  every ``A`` an identity-initialised learnable ``L x L`` matrix, ``W_g``/``W_l`` identity ``D x D``):

  - video-sentence ``S_vs = <s^ W_g, g>``
  - video-word     ``S_vw = AW_A1(a)``,   ``a_l = <g, w^_l>``
  - sentence-frame ``S_sf = AW_A2(b)``,   ``b_l = <s^, u_l>``
  - frame-word     ``S_fw = (AW_A5(r) + AW_A6(c)) / 2`` on ``M[l,l'] = <w^_l W_l, u_l'>`` with
    ``r_l' = sum_l M[l,l'] [softmax_l(M/0.01) A3]`` and ``c_l = sum_l' M[l,l'] [softmax_l'(M/0.01) A4]``

  fused score ``S = (S_vs + S_vw + S_sf + S_fw) / 4`` (training and retrieval).

* **Losses**: ``InfoNCE(lambda * S) + w_csc * CSC``, CSC = the variance of the four scores on positive
  pairs over their variance on negative pairs (:func:`csc_loss`).

The pooled features are never materialised: every inner product with a pooled vector is the same
softmax-weighted sum of inner products with the ``h_i`` and the pooled norms come from the per-video
Gram matrix ``G = H H^T [F,F]`` (spec 3.6, "0.42 M MACs per pair instead of 1.03 M, same math").  A
block of ``Bt x Bv`` pairs therefore needs ``O(Bt Bv L (L + F))`` memory instead of ``O(Bt Bv L D)``,
and :meth:`GLCCLHead.score` splits large blocks further (``PAIR_BLOCK``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from glscl_lite import losses as L
from glscl_lite.config import Config
from glscl_lite.losses import promote_half
from glscl_lite.model.head import Head, Side, masked_mean_vector

XCLIP_TEMP = 0.01
"""Softmax temperature of every X-CLIP attention-over-similarity weighting (released: 1e-2)."""
PAIR_BLOCK = 4096
"""Text-video pairs scored at once inside :meth:`GLCCLHead.score` (bounds memory: ~L*(L+4F) floats each)."""
SCORE_NAMES = ("video_sentence", "video_word", "sentence_frame", "frame_word")


def attention_weighted(c: torch.Tensor, weight: torch.Tensor, temp: float = XCLIP_TEMP) -> torch.Tensor:
    """X-CLIP "attention over similarity": ``sum_l c_l [softmax(c / temp) @ weight]_l`` over the last dim.

    Args:
        c: scores ``[..., L]``.
        weight: ``[L, L]`` (identity at initialisation, so the result starts as a soft max of ``c``).
    Returns:
        ``[...]``.
    """
    return (c * (torch.softmax(c / temp, dim=-1) @ weight)).sum(-1)


def glim_weights(dots: torch.Tensor, temp: float, frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """GLIM pooling weights: softmax over frames (last dim) of raw dot products / temp.

    Args:
        dots: ``[..., Bv, F]`` or ``[..., Bv, L, F]`` -- ``<q, h_i>`` with the video index at dim
            ``-2`` (sentence) or ``-3`` (words).
        frame_mask: ``[Bv, F]`` or None (released: no mask).  Broadcast against ``dots``.
    """
    if frame_mask is not None:
        dots = dots.masked_fill(frame_mask <= 0, torch.finfo(dots.dtype).min)
    return torch.softmax(dots / temp, dim=-1)


def csc_loss(scores: torch.Tensor) -> torch.Tensor:
    """Contrastive Score Consistency (released ``var_loss``), spec 3.4.

    Args:
        scores: ``[G, B, B]`` -- ``G >= 2`` score matrices of one matched batch (text i <-> video i)
            on a common scale.
    Returns:
        ``mean_i var_g S[g,i,i] / (sum_{i!=j} var_g S[g,i,j] / B^2)`` with the unbiased variance over
        the G scores.  The off-diagonal mean divides by ``B^2`` (the zeroed diagonal stays in the
        count), as released.  Invariant to a common scale of the scores.
    """
    if scores.dim() != 3 or scores.shape[1] != scores.shape[2] or scores.shape[0] < 2:
        raise ValueError(f"csc_loss expects [G>=2, B, B] scores, got {tuple(scores.shape)}")
    var = promote_half(scores).var(dim=0)                       # [B,B], unbiased over G
    pos = torch.diagonal(var).mean()
    neg = (var - torch.diag_embed(torch.diagonal(var))).mean()  # diagonal zeroed, / B^2
    return pos / neg.clamp_min(torch.finfo(var.dtype).tiny)


class GLCCLHead(Head):
    """GLCCL similarity head (``cfg.head = "glccl"``); learnable: ``2 D^2 + 6 L^2`` parameters."""

    indexable = True

    @classmethod
    def coarse_video_vectors(cls, video: Side) -> torch.Tensor:
        """Stage-1 video vector: normalised masked mean of the projected frames."""
        return masked_mean_vector(video["frames"], video["mask"])

    @classmethod
    def coarse_query_vectors(cls, text: Side) -> torch.Tensor:
        """Stage-1 query: the raw sentence (first of the text queries), normalised."""
        return F.normalize(text["queries"][:, 0].float(), dim=-1)

    def __init__(self, cfg: Config, dim: int):
        super().__init__(cfg, dim)
        self.cfg = cfg
        n = cfg.max_words
        eye_d, eye_l = torch.eye(dim), torch.eye(n)
        # released names (modules/modeling_glccl.py), all identity-initialised
        self.global_mat_weight = nn.Parameter(eye_d.clone())        # W_g: video-sentence
        self.local_mat_weight = nn.Parameter(eye_d.clone())         # W_l: frame-word similarity matrix
        self.word_logit_weight = nn.Parameter(eye_l.clone())        # A1: video-word
        self.word_frame_logit_weight = nn.Parameter(eye_l.clone())  # A2: sentence-frame
        self.word_mat_weight = nn.Parameter(eye_l.clone())          # A3: frame-word, over words
        self.word_frame_mat_weight = nn.Parameter(eye_l.clone())    # A4: frame-word, over frames
        self.word_frame_mat_weight2 = nn.Parameter(eye_l.clone())   # A5: frame-word, sentence-to-frame
        self.word_mat_weight2 = nn.Parameter(eye_l.clone())         # A6: frame-word, video-to-word

    # -- per-item sides ----------------------------------------------------------------------------
    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        """Text side: ``queries [Bt, 2L+2, D]`` = raw s, raw w_1..L, s^ W_g, w^_1..L W_l; norms.

        One einsum with the frames then yields every dot product a pair needs.
        """
        s, w = promote_half(sentence), promote_half(words)
        if w.shape[1] != self.word_logit_weight.shape[0]:
            raise ValueError(f"GLCCL was built for max_words={self.word_logit_weight.shape[0]} "
                             f"but got {w.shape[1]} word positions")
        s_norm, w_norm = s.norm(dim=-1).clamp_min(1e-12), w.norm(dim=-1).clamp_min(1e-12)  # [Bt], [Bt,L]
        s_g = (s / s_norm[:, None]) @ self.global_mat_weight
        w_l = (w / w_norm[..., None]) @ self.local_mat_weight
        queries = torch.cat([s[:, None], w, s_g[:, None], w_l], dim=1)
        return {"queries": queries, "sentence_norm": s_norm, "word_norm": w_norm}  # words unmasked (released)

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> Side:
        """Video side: post-temporal frames ``[Bv,F,D]`` (raw), mask ``[Bv,F]``, Gram ``[Bv,F,F]``."""
        h = promote_half(frames)
        return {"frames": h, "mask": mask, "gram": h @ h.transpose(1, 2)}

    # -- scores --------------------------------------------------------------------------------------
    def score_parts(self, text: Side, video: Side) -> dict[str, torch.Tensor]:
        """The four scores and their mean, each ``[Bt,Bv]`` (not multiplied by the logit scale)."""
        bt, bv = text["queries"].shape[0], video["frames"].shape[0]
        step = max(1, PAIR_BLOCK // max(bv, 1))
        if bt <= step:
            return self._score_block(text, video)
        parts = [self._score_block({k: x[i:i + step] for k, x in text.items()}, video)
                 for i in range(0, bt, step)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def _score_block(self, text: Side, video: Side) -> dict[str, torch.Tensor]:
        n = self.word_logit_weight.shape[0]
        q, h, gram = text["queries"], video["frames"], video["gram"]
        dots = torch.einsum("aqd,bfd->abqf", q, h)                      # [Bt,Bv,2L+2,F]
        d_s, d_w = dots[:, :, 0], dots[:, :, 1:n + 1]                   # <s,h>, <w_l,h>
        d_sg, d_wl = dots[:, :, n + 1], dots[:, :, n + 2:]              # <s^W_g,h>, <w^_l W_l,h>
        mask = video["mask"][None] if self.cfg.glccl_frame_mask else None
        beta = glim_weights(d_s, self.cfg.glccl_temp, mask)                                   # [Bt,Bv,F]
        alpha = glim_weights(d_w, self.cfg.glccl_temp, None if mask is None else mask[:, :, None])  # [Bt,Bv,L,F]
        # norms of the pooled vectors: |sum_i a_i h_i|^2 = a^T G a
        n_g = (beta * torch.einsum("bfe,abe->abf", gram, beta)).sum(-1).clamp_min(1e-24).sqrt()        # [Bt,Bv]
        n_u = (alpha * torch.einsum("bfe,able->ablf", gram, alpha)).sum(-1).clamp_min(1e-24).sqrt()    # [Bt,Bv,L]
        s_hat_h = d_s / text["sentence_norm"][:, None, None]                                # <s^,h_i>
        w_hat_h = d_w / text["word_norm"][:, None, :, None]                                 # <w^_l,h_i>
        vs = (beta * d_sg).sum(-1) / n_g                                                     # <s^W_g, g>
        a = (beta[:, :, None] * w_hat_h).sum(-1) / n_g[..., None]                            # <g, w^_l>  [Bt,Bv,L]
        b = (alpha * s_hat_h[:, :, None]).sum(-1) / n_u                                      # <s^, u_l>  [Bt,Bv,L]
        m = torch.einsum("ablf,abmf->ablm", d_wl, alpha) / n_u[:, :, None, :]                # M[l,l'] [Bt,Bv,L,L]
        vw = attention_weighted(a, self.word_logit_weight)
        sf = attention_weighted(b, self.word_frame_logit_weight)
        r = attention_weighted(m.transpose(-1, -2), self.word_mat_weight)       # over words l -> [.., L'(frames)]
        c = attention_weighted(m, self.word_frame_mat_weight)                   # over frames l' -> [.., L(words)]
        fw = (attention_weighted(r, self.word_frame_mat_weight2) + attention_weighted(c, self.word_mat_weight2)) / 2
        return {"video_sentence": vs, "video_word": vw, "sentence_frame": sf, "frame_word": fw,
                "sim": (vs + vw + sf + fw) / 4}

    def score(self, text: Side, video: Side) -> torch.Tensor:
        """Fused ``(S_vs + S_vw + S_sf + S_fw) / 4``, ``[Bt,Bv]``."""
        return self.score_parts(text, video)["sim"]

    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """``info_nce`` on the fused score and ``csc`` (already weighted); ``loss`` is their sum."""
        parts = self.score_parts(text, video)
        out = {"info_nce": L.info_nce(logit_scale * parts["sim"])}
        stacked = torch.stack([logit_scale * parts[k] for k in SCORE_NAMES])
        if self.cfg.glccl_csc_weight:
            out["csc"] = self.cfg.glccl_csc_weight * csc_loss(stacked)
        out["loss"] = sum(out.values())
        out["sim_pos"] = parts["sim"].detach().diagonal().mean()   # diagnostics, not in the loss
        var = stacked.detach().var(0)
        out["score_var_pos"] = var.diagonal().mean()
        out["score_var_neg"] = (var.sum() - var.diagonal().sum()) / max(var.numel() - var.shape[0], 1)
        return out


def per_pair_macs(dim: int = 512, frames: int = 12, words: int = 32) -> dict[str, int]:
    """Multiply-accumulates of GLCCL's head per (text, video) pair (spec 3.6), counted two ways.

    ``released`` materialises the pooled features as the official code does; ``implemented``
    is what :class:`GLCCLHead` computes (Gram trick, same scores).  Per-item work (the temporal
    encoder, ``s^ W_g``, ``w^ W_l``, the Gram matrix) is excluded: it is paid once per text/video.
    """
    d, f, n = dim, frames, words
    released = {
        "sentence_pooling": 2 * f * d, "word_pooling": 2 * n * f * d,
        "video_sentence": d, "video_word_and_sentence_frame": 2 * n * d,
        "frame_word_matrix": n * n * d,
        "attention_weighting": 2 * n ** 3 + 4 * n * n,  # softmax(.) @ A: L^2 per vector, L^3 per matrix
    }
    implemented = {
        "dot_products": (2 * n + 2) * f * d,          # s, w_l, s^W_g, w^_l W_l against every h_i
        "pooled_norms": (n + 1) * (f * f + f),        # a^T G a
        "pooled_inner_products": (3 * n + 1) * f,     # vs, a_l, b_l
        "frame_word_matrix": n * n * f,               # M = d_wl @ alpha^T
        "attention_weighting": 2 * n ** 3 + 4 * n * n,
    }
    return {"released": sum(released.values()), "implemented": sum(implemented.values()),
            "released_terms": released, "implemented_terms": implemented}
