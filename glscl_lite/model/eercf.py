"""EERCF head: coarse-to-fine scores, TIB, Pearson constraint, real two-stage retrieval
(spec/glccl_eercf.md section 4).

Inputs per video: raw CLIP frame CLS ``X [F,D]``, post-temporal frames ``H [F,D]`` and (optional) patch
tokens ``P [F,P,D]``; per text: the EOT sentence ``s`` only.  Everything is L2-normalised (``^``).

* coarse       ``S_v  = <s^ W_g, v_bar>``, ``v_bar = normalize(masked mean_i h^_i)``   (indexable)
* weak frame   ``S_wf = sum_i c_i [softmax(c/0.01) W_f]_i``, ``c_i = <s^, x^_i>``      (X-CLIP, raw frames)
* weak patch   ``S_wp = sum_j d_j softmax_j(d/0.01)``, ``d_j = <s^, p^_j>`` over all F*P patches
* strong frame (TIB) ``S_sf = <s^, z>``, ``z = normalize(sum_i beta_i h^_i)``, ``beta = softmax(c/0.1)``:
  the gate comes from the raw frames, the values are the temporal-encoder outputs.  In training the
  gate of video v is computed once, from its own caption and without gradient (released trick), so
  the strong score is an ordinary ``B x B`` product; at retrieval it is computed per pair.

``W_g [D,D]`` and ``W_f [F,F]`` are identity-initialised.  Training loss (released defaults)::

    0.8 NCE(lambda (0.5 S_v + 0.5 S_wf + 0.05 S_wp)) + 0.2 NCE(lambda S_sf)
      + 0.001 (Pearson(s^, v_bar) + Pearson(s^, z))

Retrieval (:meth:`EERCFHead.similarity`, :func:`two_stage_similarity`): stage 1 ranks the whole
gallery by ``S_v`` (one D-dim product per video; ``glscl_lite.search`` does it with a faiss index),
stage 2 rescores the top ``k`` (``eercf_topk``, 50) with ``0.8 S_wf + 0.2 S_sf + 0.2 S_wp + 0.5 S_v``
and ranks them above every non-candidate.  Only the ``k`` candidates are scored -- the released
evaluation computes every score for every pair and then masks (a simulation of the two stages).
V2T: the released protocol reads video-to-text ranks off the transpose of this text-query matrix
(videos inherit the texts' candidate sets); :func:`two_stage_similarity` with ``direction="v2t"``
runs the genuine video-query version (coarse recall of texts per video, rerank of its top k).

The strong patch score and its Pearson term have weight 0 in the released configuration and are
not implemented.  ``eercf_patches=False`` drops the weak patch score (frame-only variant, spec 6.2).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from glscl_lite import losses as L
from glscl_lite.config import Config
from glscl_lite.losses import promote_half
from glscl_lite.model.glccl import XCLIP_TEMP, attention_weighted
from glscl_lite.model.head import Head, Side

TIB_TEMP = 0.1
"""TIB gate temperature on cosines (released ``div(0.1)``)."""
PATCH_TEMP = 0.01
"""Weak patch softmax temperature (released ``div(0.01)``)."""
WEAK_WEIGHTS = {"coarse": 0.5, "weak_frame": 0.5, "weak_patch": 0.05}
"""Weak group of the training score (released ``--video_weight/--weakframe_weight/--weakpatch_weight``)."""
STRONG_FRAME_WEIGHT = 1.0
"""Strong group: TIB frame score (strong patch weight is 0 as released, not computed)."""
GROUP_WEIGHTS = {"weak": 0.8, "strong": 0.2}
"""InfoNCE weights of the two groups (``--weak_loss_weight/--strong_loss_weight``)."""
PEARSON_WEIGHT = 0.001
"""Weight of the Pearson constraint in the total loss (``--cdcl_loss_weight``)."""
PEARSON_ON_DIAG = 0.14
"""On-diagonal factor inside the Pearson constraint (released ``cdcr_alpha1``; ``cdcr_alpha2 = 0``)."""
RERANK_WEIGHTS = {"weak_frame": 0.8, "strong_frame": 0.2, "weak_patch": 0.2, "coarse": 0.5}
"""Stage-2 fusion, hard-coded in the released ``eval_epoch``."""
PAIR_BLOCK = 4096
"""Pairs scored at once by :meth:`EERCFHead.score_parts` (about ``F*P`` floats each with patches)."""
GATHER_FLOATS = 1 << 25
"""Float budget of the candidate features gathered at once by :meth:`EERCFHead.score_pairs` (128 MB)."""


def needs_patches(cfg: Config) -> bool:
    """True when ``cfg`` trains a head that scores patch tokens (EERCF with ``eercf_patches``);
    asks the registered head (:meth:`Head.needs_patches`)."""
    from glscl_lite.model.registry import needs_patches as registered

    return registered(cfg)


def pearson_constraint(text: torch.Tensor, video: torch.Tensor, on_diag: float = PEARSON_ON_DIAG,
                       off_diag: float = 0.0) -> torch.Tensor:
    """EERCF's Pearson constraint (DRL's channel decorrelation, released ``cdcr_loss``), spec 4.5.

    Args:
        text: ``[B,D]`` normalised sentence features; video: ``[B,D]`` the matched video embeddings.
        on_diag, off_diag: weights of ``sum_d (C_dd - 1)^2`` and ``sum_{d!=e} C_de^2`` (released 0.14, 0).
    Returns:
        The weighted sum, with ``C = T~^T V~ / B`` and ``T~``, ``V~`` standardised per channel over the
        batch with the unbiased std (so ``C_dd = (B-1)/B * Pearson correlation of channel d``).
    """
    t, v = promote_half(text), promote_half(video)
    b = t.shape[0]
    if b < 2:
        raise ValueError("pearson_constraint needs a batch of at least 2")
    zt = (t - t.mean(0)) / t.std(0).clamp_min(1e-12)
    zv = (v - v.mean(0)) / v.std(0).clamp_min(1e-12)
    c = zt.T @ zv / b
    diag = torch.diagonal(c)
    loss = on_diag * (diag - 1).pow(2).sum()
    if off_diag:
        loss = loss + off_diag * (c.pow(2).sum() - diag.pow(2).sum())
    return loss


def weak_patch_score(d: torch.Tensor) -> torch.Tensor:
    """``sum_j d_j softmax_j(d / 0.01)`` over the last dim (patches): ``[..., F*P] -> [...]``."""
    return (d * torch.softmax(d / PATCH_TEMP, dim=-1)).sum(-1)


def tib_gate(c: torch.Tensor) -> torch.Tensor:
    """TIB frame gate ``softmax_i(<s^, x^_i> / 0.1)``: ``[..., F] -> [..., F]`` (no frame mask, as released)."""
    return torch.softmax(c / TIB_TEMP, dim=-1)


class EERCFHead(Head):
    """EERCF similarity head (``cfg.head = "eercf"``); learnable: ``W_g [D,D]`` and ``W_f [F,F]``.

    The model hands it the raw CLIP frames (and patch tokens) besides the post-temporal frames
    (``uses_raw_frames``; ``uses_patches`` follows ``cfg.eercf_patches``).
    """

    uses_raw_frames = True
    uses_patches = True
    """The class may score patches; an instance does when ``cfg.eercf_patches`` (:meth:`needs_patches`)."""
    indexable = True

    @classmethod
    def needs_patches(cls, cfg: Config) -> bool:
        return bool(cfg.eercf_patches)

    @classmethod
    def coarse_video_vectors(cls, video: Side) -> torch.Tensor:
        """Stage-1 video vector: v_bar (the coarse score is ``<s^ W_g, v_bar>``)."""
        return video["video"].float()

    @classmethod
    def coarse_query_vectors(cls, text: Side) -> torch.Tensor:
        return text["query"].float()

    def __init__(self, cfg: Config, dim: int):
        super().__init__(cfg, dim)
        self.cfg = cfg
        self.uses_patches = bool(cfg.eercf_patches)
        self.global_mat_weight = nn.Parameter(torch.eye(dim))             # W_g (released name)
        self.frame_logit_weight = nn.Parameter(torch.eye(cfg.max_frames))  # W_f

    # -- per-item sides ----------------------------------------------------------------------------
    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        """Text side: ``sentence`` = s^ ``[Bt,D]`` and the coarse query ``query`` = s^ W_g ``[Bt,D]``."""
        s = F.normalize(promote_half(sentence), dim=-1)
        return {"sentence": s, "query": s @ self.global_mat_weight}

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor, raw_frames: Optional[torch.Tensor] = None,
                     patches: Optional[torch.Tensor] = None) -> Side:
        """Video side from post-temporal ``frames [Bv,F,D]``, ``mask [Bv,F]``, ``raw_frames [Bv,F,D]`` and
        ``patches [Bv,F,P,D]``.

        Returns ``video`` (v_bar ``[Bv,D]``), ``frames`` (x^ ``[Bv,F,D]``), ``temporal`` (h^ ``[Bv,F,D]``),
        ``gram`` (h^ h^T ``[Bv,F,F]``), ``mask`` and, with patches, ``patches`` (p^ ``[Bv,F*P,D]``).
        """
        if raw_frames is None:
            raise ValueError("EERCF scores the raw CLIP frames: pass raw_frames (GLSCL.encode_video_features does)")
        h = F.normalize(promote_half(frames), dim=-1)
        m = mask.to(h.dtype).unsqueeze(-1)
        v = F.normalize((h * m).sum(1) / m.sum(1).clamp_min(1.0), dim=-1)
        side = {"video": v, "frames": F.normalize(promote_half(raw_frames), dim=-1), "temporal": h,
                "gram": h @ h.transpose(1, 2), "mask": mask}
        if self.uses_patches:
            if patches is None:
                raise ValueError("EERCF with eercf_patches=True needs patch tokens: train from frames or a "
                                 "feature cache built with head=eercf (it stores patch_feats), or set "
                                 "eercf_patches=False")
            side["patches"] = F.normalize(promote_half(patches), dim=-1).flatten(1, 2)
        return side

    # -- scores: every pair of a block -------------------------------------------------------------
    def coarse(self, text: Side, video: Side) -> torch.Tensor:
        """Stage-1 score ``<s^ W_g, v_bar>`` ``[Bt,Bv]`` (a plain inner product: faiss-indexable)."""
        return text["query"] @ video["video"].T

    def score_parts(self, text: Side, video: Side) -> dict[str, torch.Tensor]:
        """Every score for every pair, ``[Bt,Bv]`` each, and the stage-2 fusion ``sim`` (no logit scale)."""
        bt, bv = text["sentence"].shape[0], video["video"].shape[0]
        step = max(1, PAIR_BLOCK // max(bv, 1))
        blocks = []
        for i in range(0, bt, step):
            s = text["sentence"][i:i + step]
            c = torch.einsum("ad,bfd->abf", s, video["frames"])
            e = torch.einsum("ad,bfd->abf", s, video["temporal"])
            d = torch.einsum("ad,bpd->abp", s, video["patches"]) if "patches" in video else None
            beta = tib_gate(c)
            norm = (beta * torch.einsum("bfe,abe->abf", video["gram"], beta)).sum(-1)
            blocks.append(self._fuse(text["query"][i:i + step] @ video["video"].T, c, beta, e, norm, d))
        return {k: torch.cat([b[k] for b in blocks]) for k in blocks[0]}

    def _fuse(self, coarse: torch.Tensor, c: torch.Tensor, beta: torch.Tensor, e: torch.Tensor,
              norm_sq: torch.Tensor, d: Optional[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Scores from dot products: ``c = <s^,x^_i>``, ``e = <s^,h^_i>`` ``[..., F]``, ``d = <s^,p^_j>``."""
        out = {"coarse": coarse,
               "weak_frame": attention_weighted(c, self.frame_logit_weight, XCLIP_TEMP),
               "strong_frame": (beta * e).sum(-1) / norm_sq.clamp_min(1e-24).sqrt()}
        if d is not None:
            out["weak_patch"] = weak_patch_score(d)
        out["sim"] = sum(RERANK_WEIGHTS[k] * out[k] for k in RERANK_WEIGHTS if k in out)
        return out

    def score(self, text: Side, video: Side) -> torch.Tensor:
        """Stage-2 fusion ``0.8 S_wf + 0.2 S_sf + 0.2 S_wp + 0.5 S_v`` for every pair, ``[Bt,Bv]``."""
        return self.score_parts(text, video)["sim"]

    # -- scores: listed pairs (stage 2) ------------------------------------------------------------
    def score_pairs(self, text: Side, video: Side, text_index: torch.Tensor,
                    video_index: torch.Tensor) -> torch.Tensor:
        """Stage-2 fusion for the pairs ``(text_index[q,j], video_index[q,j])`` only: ``[Q,k] -> [Q,k]``.

        Features of the listed videos are gathered (``k`` per query), so the cost is ``Q k`` pairs,
        not ``Nt Nv``.
        """
        q, k = video_index.shape
        per_pair = sum(x[0].numel() for key, x in video.items() if key in ("frames", "temporal", "patches", "gram"))
        step = max(1, GATHER_FLOATS // max(k * per_pair, 1))
        out = []
        for i in range(0, q, step):
            ti, vi = text_index[i:i + step], video_index[i:i + step]
            s, qv = text["sentence"][ti], text["query"][ti]                  # [q,k,D]
            c = torch.einsum("qkd,qkfd->qkf", s, video["frames"][vi])
            e = torch.einsum("qkd,qkfd->qkf", s, video["temporal"][vi])
            d = torch.einsum("qkd,qkpd->qkp", s, video["patches"][vi]) if "patches" in video else None
            beta = tib_gate(c)
            norm = (beta * torch.einsum("qkfe,qke->qkf", video["gram"][vi], beta)).sum(-1)
            coarse = (qv * video["video"][vi]).sum(-1)
            out.append(self._fuse(coarse, c, beta, e, norm, d)["sim"])
        return torch.cat(out)

    @torch.no_grad()
    def similarity(self, text: Side, video: Side, chunk: Optional[int] = None) -> torch.Tensor:  # noqa: ARG002
        """Evaluation matrix ``[Nt,Nv]`` of the real two-stage T2V retrieval (``eercf_topk`` candidates).

        ``GLSCL.similarity`` delegates here; V2T metrics read off its transpose (released protocol).
        """
        return two_stage_similarity(self, text, video, self.cfg.eercf_topk, "t2v")

    # -- training ----------------------------------------------------------------------------------
    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """Grouped InfoNCE (weak 0.8, strong 0.2) + 0.001 Pearson; terms already weighted, ``loss`` = sum."""
        s = text["sentence"]
        coarse = self.coarse(text, video)
        c = torch.einsum("ad,bfd->abf", s, video["frames"])                 # [B,B,F]
        weak = WEAK_WEIGHTS["coarse"] * coarse \
            + WEAK_WEIGHTS["weak_frame"] * attention_weighted(c, self.frame_logit_weight, XCLIP_TEMP)
        if "patches" in video:
            weak = weak + WEAK_WEIGHTS["weak_patch"] * weak_patch_score(
                torch.einsum("ad,bpd->abp", s, video["patches"]))
        # TIB with the positive caption's gate (stop-gradient), one z per video
        beta = tib_gate(torch.diagonal(c).T.detach())                        # [B,F]: c[i,i,:]
        z = F.normalize((beta.unsqueeze(-1) * video["temporal"]).sum(1), dim=-1)
        strong = STRONG_FRAME_WEIGHT * (s @ z.T)
        out = {"info_nce_weak": GROUP_WEIGHTS["weak"] * L.info_nce(logit_scale * weak),
               "info_nce_strong": GROUP_WEIGHTS["strong"] * L.info_nce(logit_scale * strong),
               "pearson": PEARSON_WEIGHT * (pearson_constraint(s, video["video"]) + pearson_constraint(s, z))}
        out["loss"] = sum(out.values())
        out["sim_pos"] = coarse.detach().diagonal().mean()   # diagnostic, not in the loss
        return out


@torch.no_grad()
def two_stage_similarity(head: EERCFHead, text: Side, video: Side, k: int, direction: str = "t2v") -> torch.Tensor:
    """Real two-stage retrieval as a ``[Nt,Nv]`` score matrix.

    ``t2v``: each text recalls its top ``k`` videos by the coarse score; those pairs get the stage-2
    fusion plus one global offset that puts every candidate above every non-candidate (the released
    code adds +100 to logit-scaled scores, which only holds while they stay below 100); the other
    pairs keep their coarse score.  ``v2t``: the same with videos as queries (each video recalls its
    top ``k`` texts) -- read the v2t metrics from this matrix's columns.
    """
    if direction not in ("t2v", "v2t"):
        raise ValueError(f"direction must be 't2v' or 'v2t', got {direction!r}")
    coarse = head.coarse(text, video)
    nt, nv = coarse.shape
    if direction == "t2v":
        kk = min(k, nv)
        vi = coarse.topk(kk, dim=1).indices                                   # [Nt,k]
        ti = torch.arange(nt, device=vi.device)[:, None].expand(nt, kk)
    else:
        kk = min(k, nt)
        ti = coarse.topk(kk, dim=0).indices.T                                 # [Nv,k] texts per video
        vi = torch.arange(nv, device=ti.device)[:, None].expand(nv, kk)
    fine = head.score_pairs(text, video, ti, vi)
    out = coarse.clone()
    out[ti, vi] = fine + (coarse.max() - fine.min() + 1.0)
    return out


def per_pair_macs(dim: int = 512, frames: int = 12, patches: int = 49, use_patches: bool = True) -> dict[str, int]:
    """Multiply-accumulates per (text, video) pair (spec 4.8): ``coarse`` (stage 1, every video) and
    ``fine`` (stage 2, each candidate: gate/weak frame ``FD``, TIB ``FD + F^2``, ``W_f`` ``F^2``,
    weak patch ``FPD``).  Per-item work (``s^ W_g``, ``v_bar``, the Gram matrix) is excluded."""
    d, f, p = dim, frames, patches
    fine = 2 * f * d + 2 * f * f + 2 * f + (f * p * d if use_patches else 0)
    return {"coarse": d, "fine": fine}


def per_query_macs(n_videos: int, k: int = 50, **kw: int) -> dict[str, int]:
    """Per text query on a gallery of ``n_videos``: two-stage ``N D + k fine`` vs fine on every video."""
    pp = per_pair_macs(**kw)
    k = min(k, n_videos)
    return {"two_stage": n_videos * pp["coarse"] + k * pp["fine"],
            "dense_fine": n_videos * (pp["coarse"] + pp["fine"])}
