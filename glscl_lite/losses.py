"""GLSCL training losses with the official semantics, spec/glscl.md section 4.

Names follow the paper.  The official code swaps them (S2): its ``Inter_Diversity`` is the paper's
intra-diversity loss (IDL) and its ``Intra_Consistency`` the paper's inter-consistency loss (ICL).

* ``info_nce``: symmetric cross-entropy on already-scaled logits, positives on the diagonal.
* ``inter_consistency_loss`` (ICL): MSE between the batch-mean video and text concept matrices
  plus ``beta * sum_k (c_k - 0.75)^2``.  ``c_k`` sums the matched-pair cosines of query k over the
  batch and divides by K in the official code (S3, ``normalizer="official"``); ``"batch"``
  divides by B, which makes 0.75 a target mean cosine as the paper describes.
* ``intra_diversity_loss`` (IDL): margin-ranking loss on the batch-mean Gram matrix of one
  modality's concepts: pushes different concepts to a (batch-averaged) cosine <= 1 - margin.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

ICL_TARGET = 0.75  # hard-coded in the official code


def promote_half(x: torch.Tensor) -> torch.Tensor:
    """Compute losses in at least fp32 (bf16/fp16 inputs are promoted, fp64 is kept)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def info_nce(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE on ``logits [Bt,Bv]`` (rows = texts, already multiplied by the logit scale).

    ``(CE over rows + CE over columns) / 2`` with the i-th text paired with the i-th video; other
    captions of the same video in the batch count as negatives (official, S15).  Training batches
    are square; for ``Bt != Bv`` the positives are the ``min(Bt, Bv)`` diagonal entries, as the
    official ``CrossEn`` (``torch.diag`` of the log-softmax) applied to ``sim`` and ``sim.T``.
    """
    if logits.dim() != 2:
        raise ValueError(f"info_nce expects a [Bt,Bv] matrix, got shape {tuple(logits.shape)}")
    logits = promote_half(logits)
    t2v = -torch.diagonal(F.log_softmax(logits, dim=1)).mean()
    v2t = -torch.diagonal(F.log_softmax(logits, dim=0)).mean()
    return (t2v + v2t) / 2


def icl_centres(text_concepts: torch.Tensor, video_concepts: torch.Tensor,
                normalizer: str = "official") -> torch.Tensor:
    """``c_k [K]``: summed matched cosines of query k over the batch, / K (official) or / B (batch)."""
    if normalizer not in ("official", "batch"):
        raise ValueError(f"normalizer must be 'official' or 'batch', got {normalizer!r}")
    matched = (video_concepts * text_concepts).sum(-1).sum(0)  # [K]: sum_b <v_bk, t_bk>
    denom = video_concepts.shape[1] if normalizer == "official" else video_concepts.shape[0]
    return matched / denom


def inter_consistency_loss(text_concepts: torch.Tensor, video_concepts: torch.Tensor,
                           beta: float = 0.005, normalizer: str = "official") -> torch.Tensor:
    """ICL = MSE(mean_b v_hat, mean_b t_hat) + beta * sum_k (c_k - 0.75)^2.

    Args:
        text_concepts, video_concepts: ``[B,K,D]`` L2-normalised concepts of matched pairs
            (text i belongs to video i).
        beta: weight of the 0.75-target term only (the MSE has weight 1).
        normalizer: ``official`` (c_k divided by K, S3) or ``batch`` (divided by B).
    """
    t, v = promote_half(text_concepts), promote_half(video_concepts)
    mse = F.mse_loss(v.mean(0), t.mean(0))
    r = (icl_centres(t, v, normalizer) - ICL_TARGET).pow(2).sum()
    return mse + beta * r


def batch_mean_gram(concepts: torch.Tensor) -> torch.Tensor:
    """``G [K,K]``: ``G[k,j] = mean_b <c_bk, c_bj>`` (diagonal = 1 for normalised concepts)."""
    c = promote_half(concepts)
    return torch.einsum("bkd,bjd->kj", c, c) / c.shape[0]


def intra_diversity_loss(video_concepts: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Unweighted IDL on ``[B,K,D]`` concepts (the model multiplies by alpha).

    ``1/(K(K-1)) * sum_{k != j} [max(0, m + G[k,j] - G[k,k]) + max(0, m + G[k,j] - G[j,j])]``
    """
    G = batch_mean_gram(video_concepts)
    K = G.shape[0]
    if K < 2:
        return G.new_zeros(())
    diag = torch.diagonal(G)
    # the off-diagonal entries in row-major order -- what a boolean ~eye mask selects -- as integer
    # indices made on the device: a boolean mask costs a nonzero(), i.e. a host sync every training
    # step on CUDA (and a graph break under torch.compile); same elements, same order, same sums
    i = torch.arange(K * (K - 1), device=G.device)
    r, c = i // (K - 1), i % (K - 1)
    c = c + (c >= r)
    rows = (margin + G - diag.unsqueeze(1)).clamp(min=0)   # against G[k,k]
    cols = (margin + G - diag.unsqueeze(0)).clamp(min=0)   # against G[j,j]
    return (rows[r, c].sum() + cols[r, c].sum()) / (K * (K - 1))
