"""The whole model (:class:`RetrievalModel`, alias ``GLSCL``): CLIP backbone -> temporal transformer -> a
similarity head (GLSCL's by default) -- and the GLSCL head itself (:class:`GLSCLHead`).

Data flow (spec/glscl.md 5.1)::

    text:  ids, mask --CLIP text--> sentence [B,D], words [B,L,D] --head.encode_text--> text side
    video: frames    --CLIP image--> frame CLS [B,T,D] --temporal--> [B,T,D] --head.encode_video--> video side
    score: head.score(text side, video side) -> [Bt,Bv]

A *side* is a dict of tensors whose first dimension indexes items (texts or videos).  For GLSCL
it holds everything that can be computed once per item and cached -- the text side: sentence,
words, mask and the K text concepts; the video side: post-temporal frames, mask and the K video
concepts -- so scoring a pair costs only the GIM's O(T*D) and the LIM's O(K*D) (spec section 5).

Training (``forward``) follows the official step: encode, all-gather across processes when
distributed (``glscl_lite.distributed``), score the full B x B batch, InfoNCE on
``s * (Sim1 + lambda*Sim2)`` plus ICL and IDL.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from glscl_lite import losses as L
from glscl_lite.config import Config
from glscl_lite.model.backbone import CLIPBackbone
from glscl_lite.model.global_interaction import GlobalInteraction
from glscl_lite.model.local_interaction import LocalInteraction
from glscl_lite.model.temporal import TemporalTransformer

from glscl_lite.model.head import Head, Side, cat_sides, masked_mean_vector, slice_side  # noqa: F401
from glscl_lite.model.registry import build_head

MAX_LOGIT_SCALE = math.log(100.0)


# ------------------------------------------------------------------------------------ the head
class GLSCLHead(Head):
    """GIM + LIM scores and the ICL / IDL losses (the part GLSCL adds on top of CLIP)."""

    indexable = True
    paper_comparison = True

    def __init__(self, cfg: Config, dim: int):
        super().__init__(cfg, dim)
        self.gim = GlobalInteraction(cfg.temp)
        self.lim = LocalInteraction(
            dim, num_queries=cfg.query_number, num_layers=cfg.cross_att_layer, num_heads=cfg.lim_heads,
            share_queries=cfg.query_share, share_decoder=cfg.cross_att_share, ffn_dim=cfg.lim_ffn_dim,
            dropout=cfg.lim_dropout, mask_padding=cfg.lim_mask_padding,
        )

    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        return {"sentence": sentence, "words": words, "mask": mask,
                "concepts": self.lim.encode_text(words, mask)}

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> Side:
        """Post-temporal frames, mask, the frame Gram matrices (GIM norm, O(T^2) per video) and
        the K video concepts -- everything a pair score needs from the video, computed once."""
        return {"frames": frames, "mask": mask, "gram": self.gim.frame_gram(frames),
                "concepts": self.lim.encode_video(frames, mask)}

    def score_parts(self, text: Side, video: Side) -> dict[str, torch.Tensor]:
        sim1 = self.gim(text["sentence"], video["frames"], video["mask"], video.get("gram"))
        sim2 = self.lim.similarity(text["concepts"], video["concepts"])
        return {"sim1": sim1, "sim2": sim2, "sim": sim1 + self.cfg.loss2_weight * sim2}

    def score(self, text: Side, video: Side) -> torch.Tensor:
        """``Sim1 + lambda * Sim2`` ``[Bt,Bv]`` (training and inference use the same formula)."""
        return self.score_parts(text, video)["sim"]

    @classmethod
    def coarse_video_vectors(cls, video: Side) -> torch.Tensor:
        """Stage-1 video vector: normalised masked mean of the post-temporal frames."""
        return masked_mean_vector(video["frames"], video["mask"])

    @classmethod
    def coarse_query_vectors(cls, text: Side) -> torch.Tensor:
        return F.normalize(text["sentence"].float(), dim=-1)

    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms on a matched batch (text i <-> video i); ``loss`` is their sum."""
        cfg = self.cfg
        parts = self.score_parts(text, video)
        out = {"info_nce": L.info_nce(logit_scale * parts["sim"])}
        tc, vc = text["concepts"], video["concepts"]
        if cfg.idl:
            idl = L.intra_diversity_loss(vc)
            if cfg.idl_modalities == "both":
                idl = idl + L.intra_diversity_loss(tc)
            out["idl"] = cfg.alpha * idl
        if cfg.icl:
            out["icl"] = L.inter_consistency_loss(tc, vc, beta=cfg.beta, normalizer=cfg.icl_normalizer)
        out["loss"] = sum(out.values())
        # diagnostics (not part of the loss)
        out["sim1_pos"] = parts["sim1"].detach().diagonal().mean()
        out["sim2_pos"] = parts["sim2"].detach().diagonal().mean()
        return out


# ----------------------------------------------------------------------------------- the model
class RetrievalModel(nn.Module):
    """The trunk (CLIP + temporal transformer) plus any similarity head, built from a :class:`Config`.

    ``cfg.head`` picks the head from :mod:`glscl_lite.model.registry` (``glscl`` by default, which
    makes this GLSCL; ``meanp`` makes it CLIP4Clip).  ``backbone`` may be passed in to share one CLIP
    between several models.  ``GLSCL`` is the same class under its historical name.
    """

    def __init__(self, cfg: Optional[Config] = None, backbone: Optional[CLIPBackbone] = None, **overrides: Any):
        super().__init__()
        cfg = (cfg or Config()).replace(**overrides) if overrides else (cfg or Config())
        self.cfg = cfg
        self.backbone = backbone or CLIPBackbone(cfg.base_encoder, cfg.pretrained, cfg.text_mask)
        dim = self.backbone.embed_dim
        if self.backbone.text_width != dim:
            raise ValueError(f"{cfg.base_encoder}: text width {self.backbone.text_width} != embed dim {dim}; "
                             "the temporal transformer is initialised from text blocks and needs them equal")
        self.head = build_head(cfg, dim)
        self.temporal: Optional[TemporalTransformer] = None
        if cfg.agg_module == "seqTransf":
            self.temporal = TemporalTransformer(dim, cfg.num_hidden_layers, self.backbone.text_heads,
                                                max_positions=self.backbone.clip.positional_embedding.shape[0])
            self.temporal.init_from_clip(self.backbone.text_block_state(cfg.num_hidden_layers),
                                         self.backbone.clip.positional_embedding.detach())
        if cfg.freeze_backbone:
            for name, p in self.backbone.named_parameters():
                if not name.endswith("logit_scale"):
                    p.requires_grad_(False)

    # -- parameters ------------------------------------------------------------------------------
    @property
    def logit_scale(self) -> torch.Tensor:
        return self.backbone.clip.logit_scale

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        """Official: after every optimiser step, logit_scale <= ln(100)."""
        self.logit_scale.clamp_(max=MAX_LOGIT_SCALE)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (spec 13: temporal 12.65 M, one LIM decoder 12.61 M for ViT-B/32)."""
        clip = self.backbone.clip
        counts = {
            "clip_visual": sum(p.numel() for p in clip.visual.parameters()),
            "clip_total": sum(p.numel() for p in clip.parameters()),
            "temporal": sum(p.numel() for p in self.temporal.parameters()) if self.temporal else 0,
            "head": sum(p.numel() for p in self.head.parameters()),
        }
        if isinstance(self.head, GLSCLHead):
            lim = self.head.lim
            counts["lim_decoder"] = sum(p.numel() for p in lim.decoder.parameters())
            counts["lim_queries"] = lim.queries.numel()
        counts["total"] = sum(p.numel() for p in self.parameters())
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts

    # -- inputs ----------------------------------------------------------------------------------
    def prepare_video(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B,T,S,S,3]`` (or already-normalised float ``[B,T,3,S,S]``) -> float ``[B,T,3,S,S]``.

        Padded frames become all-zero tensors in normalised space (official, S17).
        """
        if video.dtype == torch.uint8:
            from glscl_lite.data.video import normalize_frames

            video = normalize_frames(video, mask)
        size = self.backbone.image_size
        if video.shape[-1] != size or video.shape[-2] != size:
            raise ValueError(f"frames are {video.shape[-2]}x{video.shape[-1]} px but {self.cfg.base_encoder} "
                             f"expects {size}x{size}: rebuild the frame cache with --size {size}")
        return video

    # -- per-item encoders -------------------------------------------------------------------------
    def text_tokens(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CLIP text tower: sentence ``[B,D]`` and words ``[B,L,D]`` (fp32)."""
        sentence, words = self.backbone.encode_text(ids, mask)
        return sentence.float(), words.float()

    def frame_features(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """CLIP image tower per frame: ``[B,T,D]`` before the temporal transformer (fp32)."""
        return self.backbone.encode_video(self.prepare_video(video, mask)).float()

    def temporal_features(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.temporal(frames, mask) if self.temporal is not None else frames

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> Side:
        """Text side from token ids ``[B,L]`` and mask ``[B,L]``."""
        sentence, words = self.text_tokens(ids, mask)
        return self.head.encode_text(sentence, words, mask)

    def encode_text_features(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        """Text side from cached CLIP outputs (feature-cache mode)."""
        return self.head.encode_text(sentence.float(), words.float(), mask)

    def frame_and_patch_features(self, video: torch.Tensor, mask: torch.Tensor
                                 ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Per-frame CLIP features ``[B,T,D]`` and, for heads that score patches (EERCF,
        ``head.uses_patches``), the patch tokens ``[B,T,P,D]`` from the same pass (else None)."""
        if not self.head.uses_patches:
            return self.frame_features(video, mask), None
        frames, patches = self.backbone.encode_video(self.prepare_video(video, mask), return_patches=True)
        return frames.float(), patches.float()

    def encode_video(self, video: torch.Tensor, mask: torch.Tensor) -> Side:
        """Video side from frames (uint8 ``[B,T,S,S,3]`` or float ``[B,T,3,S,S]``) and mask ``[B,T]``."""
        frames, patches = self.frame_and_patch_features(video, mask)
        return self.encode_video_features(frames, mask, patches=patches)

    def encode_video_features(self, frames: torch.Tensor, mask: torch.Tensor,
                              patches: Optional[torch.Tensor] = None) -> Side:
        """Video side from cached per-frame CLIP features ``[B,T,D]`` (feature-cache mode).

        Heads with ``uses_raw_frames`` (EERCF) also get the pre-temporal frames and ``patches [B,T,P,D]``.
        """
        post = self.temporal_features(frames.float(), mask)
        if self.head.uses_raw_frames:
            return self.head.encode_video(post, mask, raw_frames=frames.float(),
                                          patches=None if patches is None else patches.float())
        return self.head.encode_video(post, mask)

    # -- scoring ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def similarity(self, text: Side, video: Side, chunk: Optional[int] = None) -> torch.Tensor:
        """Score matrix ``[Nt,Nv]`` computed in ``chunk x chunk`` blocks (default ``cfg.eval_chunk``).

        Each block only reads cached per-item features, so memory is bounded by the block size:
        10,000 x 10,000 is 400 MB of output plus one block's intermediates.
        """
        return self.head.similarity(text, video, chunk or self.cfg.eval_chunk)

    # -- training ---------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named loss terms for a batch; ``out["loss"]`` is what to back-propagate.

        ``batch`` holds either raw inputs (``text_ids``, ``text_mask``, ``video`` (uint8 or float),
        ``video_mask``) or cached CLIP features (``sentence``, ``words``, ``text_mask``,
        ``frame_feats``, ``video_mask``).  Under ``torch.distributed`` the encoded features are
        all-gathered (gradient flows to the local slice) and every rank computes the full-batch
        loss, as the official code does (spec 7.4).
        """
        from glscl_lite.distributed import all_gather_with_grad

        if "frame_feats" in batch:
            sentence, words = batch["sentence"].float(), batch["words"].float()
            frames = batch["frame_feats"].float()
            patches = batch["patch_feats"].float() if "patch_feats" in batch else None
        else:
            sentence, words = self.text_tokens(batch["text_ids"], batch["text_mask"])
            frames, patches = self.frame_and_patch_features(batch["video"], batch["video_mask"])
        text_mask, video_mask = batch["text_mask"], batch["video_mask"]
        raw, frames = frames, self.temporal_features(frames, video_mask)
        sentence, words, text_mask, frames, video_mask = all_gather_with_grad(
            sentence, words, text_mask, frames, video_mask)
        text = self.head.encode_text(sentence, words, text_mask)
        if self.head.uses_raw_frames:  # EERCF: raw CLIP frames (+ patches) too
            raw = all_gather_with_grad(raw)[0]
            patches = all_gather_with_grad(patches)[0] if patches is not None else None
            video = self.head.encode_video(frames, video_mask, raw_frames=raw, patches=patches)
        else:
            video = self.head.encode_video(frames, video_mask)
        out = self.head.losses(text, video, self.logit_scale.exp())
        out["logit_scale"] = self.logit_scale.detach().exp()
        return out


GLSCL = RetrievalModel
"""Historical name of :class:`RetrievalModel` (with the default ``head="glscl"`` it is GLSCL)."""
