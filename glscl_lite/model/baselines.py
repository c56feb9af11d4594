"""Baseline similarity heads with the same interface as :class:`~glscl_lite.model.glscl.GLSCLHead`.

Every head has ``encode_text(sentence, words, mask) -> side``, ``encode_video(frames, mask) -> side``,
``score(text_side, video_side) -> [Bt,Bv]`` and ``losses(text, video, logit_scale) -> dict``.

* ``MeanPHead`` -- CLIP4Clip mean pooling: L2-normalise each frame, masked mean over frames,
  L2-normalise again, cosine with the sentence feature.  With ``agg_module="None"`` this is
  CLIP4Clip's meanP; with the default ``seqTransf`` it is CLIP4Clip's seqTransf variant.
* ``XPoolLikeHead`` -- X-Pool's text-conditioned pooling: one cross-attention block whose query is
  the sentence and whose keys/values are the frames.  The pooled video feature depends on the
  text, so the block runs for every (text, video) pair; only per-item inputs can be cached.
* ``XCLIPLikeHead`` -- X-CLIP's multi-grained scoring: sentence-video, video-word, sentence-frame
  and frame-word similarities, each reduced by "attention over the similarity matrix" (softmax
  weights, mixed by small learnable matrices), averaged.  The fine-grained word x frame matrix
  exists per pair: O(L*T*D) per pair.

These are re-implementations of the published designs in this package's interface ("-like"):
they read the same post-temporal frame features as GLSCL and mask padded frames / words (the
originals use fixed-length inputs without padding), so the heads can be compared one for one.
``score`` works in blocks of videos so that scoring a large gallery never materialises a
``[Bt,Bv,...]`` tensor bigger than ``max_block_elements`` elements.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from glscl_lite import losses as L
from glscl_lite.config import Config
from glscl_lite.model.head import Head, Side


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B,T,D]`` over positions where ``mask [B,T]`` is 1."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def masked_softmax(logits: torch.Tensor, keep: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax of ``logits`` along ``dim`` over the positions where ``keep`` (bool, broadcastable) is True."""
    return torch.softmax(logits.masked_fill(~keep, torch.finfo(logits.dtype).min), dim=dim)


def contrastive_losses(sim: torch.Tensor, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE on ``logit_scale * sim [B,B]`` (matched pairs on the diagonal) + a diagnostic."""
    out = {"info_nce": L.info_nce(logit_scale * sim)}
    out["loss"] = out["info_nce"]
    out["sim_pos"] = sim.detach().diagonal().mean()
    return out


def video_chunk(max_elements: int, per_video: int) -> int:
    """How many videos fit in one block when each costs ``per_video`` elements (at least 1)."""
    return max(1, max_elements // max(1, per_video))


class MeanPHead(Head):
    """CLIP4Clip mean pooling (parameter-free); per-pair cost is one D-dim dot product."""

    indexable = True
    paper_comparison = True

    def __init__(self, cfg: Config, dim: int):
        super().__init__(cfg, dim)
        self.cfg = cfg

    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        return {"sentence": F.normalize(sentence.float(), dim=-1)}

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> Side:
        pooled = masked_mean(F.normalize(frames.float(), dim=-1), mask)
        return {"video": F.normalize(pooled, dim=-1)}

    def score(self, text: Side, video: Side) -> torch.Tensor:
        return text["sentence"] @ video["video"].T

    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        return contrastive_losses(self.score(text, video), logit_scale)

    @classmethod
    def coarse_video_vectors(cls, video: Side) -> torch.Tensor:
        return video["video"].float()

    @classmethod
    def coarse_query_vectors(cls, text: Side) -> torch.Tensor:
        return F.normalize(text["sentence"].float(), dim=-1)



# ------------------------------------------------------------------------------------ X-Pool-like
class XPoolLikeHead(Head):
    """Text-conditioned cross-attention pooling of frames (X-Pool, CVPR 2022), per (text, video) pair.

    For text a and video b (``H`` heads of width ``D/H``; X-Pool uses one head)::

        s  = LN_in(sentence_a)            f_t = LN_in(frame_{b,t})      (one LayerNorm for both)
        q  = W_q s      k_t = W_k f_t     v_t = W_v f_t
        w  = softmax_t(<q, k_t> / sqrt(D/H))      over valid frames, per head
        p  = LN_attn(W_o sum_t w_t v_t)
        u  = LN_out(p + Dropout(W_p p))   (FFN-free: one linear layer on the residual branch)
        score[a,b] = cos(sentence_a, u_ab)

    All five linear layers start as the identity with zero bias (X-Pool's initialisation), so
    at step 0 the head is plain softmax pooling of normalised frames guided by the sentence.
    ``q`` is per text and ``k``, ``v`` per video, but ``w``, ``W_o``, both LayerNorms and ``W_p``
    run on every pair: ``2*D^2 + 2*T*D`` multiply-adds per pair, which is why the video side
    holds only the frames.

    Args:
        cfg: the model config (nothing in it changes this head).
        dim: feature width D.
        num_heads: attention heads (X-Pool default 1).
        dropout: dropout on the residual branch (X-Pool's ``transformer_dropout`` 0.3).
    """

    max_block_elements: int = 1 << 22
    """Upper bound on ``Bt * videos_per_block * D`` in :meth:`score` (16 MB of fp32 per tensor)."""

    paper_comparison = True

    def __init__(self, cfg: Config, dim: int, num_heads: int = 1, dropout: float = 0.3):
        super().__init__(cfg, dim)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.cfg, self.dim, self.num_heads = cfg, dim, num_heads
        self.norm_in = nn.LayerNorm(dim)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.norm_attn = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_out = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():
            for lin in (self.q_proj, self.k_proj, self.v_proj, self.out_proj, self.proj):
                nn.init.eye_(lin.weight)
                nn.init.zeros_(lin.bias)

    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        """Text side: the sentence feature ``[Bt,D]`` (words are not used)."""
        return {"sentence": sentence}

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> Side:
        """Video side: the frames ``[Bv,T,D]`` and mask ``[Bv,T]`` (nothing text-independent to precompute)."""
        return {"frames": frames, "mask": mask}

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., D] -> [..., H, D/H]``."""
        return x.unflatten(-1, (self.num_heads, self.dim // self.num_heads))

    def _pool(self, sentence: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pooled video features ``[Bt,Bv,D]`` for sentences ``[Bt,D]`` and frames ``[Bv,T,D]``."""
        q = self._split(self.q_proj(self.norm_in(sentence)))                 # [Bt,H,d]
        f = self.norm_in(frames)
        k, v = self._split(self.k_proj(f)), self._split(self.v_proj(f))      # [Bv,T,H,d]
        logits = torch.einsum("ahd,bthd->abht", q, k) / math.sqrt(q.shape[-1])
        w = masked_softmax(logits, (mask > 0)[None, :, None, :], dim=-1)     # [Bt,Bv,H,T]
        pooled = torch.einsum("abht,bthd->abhd", w, v).flatten(-2)           # [Bt,Bv,D]
        p = self.norm_attn(self.out_proj(pooled))
        return self.norm_out(p + self.dropout(self.proj(p)))

    def pooled(self, text: Side, video: Side) -> torch.Tensor:
        """The text-conditioned video features ``[Bt,Bv,D]`` (materialised: for teaching and tests)."""
        return self._pool(text["sentence"], video["frames"], video["mask"])

    def score(self, text: Side, video: Side) -> torch.Tensor:
        """``cos(sentence_a, u_ab)`` ``[Bt,Bv]``, computed over blocks of videos."""
        sentence, frames, mask = text["sentence"], video["frames"], video["mask"]
        t = F.normalize(sentence, dim=-1)
        step = video_chunk(self.max_block_elements, sentence.shape[0] * self.dim)
        out = []
        for j in range(0, frames.shape[0], step):
            u = F.normalize(self._pool(sentence, frames[j:j + step], mask[j:j + step]), dim=-1)
            out.append(torch.einsum("ad,abd->ab", t, u))
        return torch.cat(out, dim=1)

    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        return contrastive_losses(self.score(text, video), logit_scale)


# ------------------------------------------------------------------------------------ X-CLIP-like
class XCLIPLikeHead(Head):
    """Multi-grained contrast with attention over similarity matrices (X-CLIP, ACM MM 2022).

    With L2-normalised sentence ``s [D]``, words ``w_l [L,D]``, frames ``f_t [T,D]`` and the
    normalised masked mean of the frames ``v [D]``, four scores per (text, video) pair::

        sentence-video  S_sv = s^T G v                                        (G: D x D)
        video-word      S_vw = aggregate_l(<w_l, v>;  A_w)                     (A_w: L x L)
        sentence-frame  S_sf = aggregate_t(<s, f_t>;  A_f)                     (A_f: T x T)
        frame-word      M[l,t] = w_l^T F f_t                                   (F: D x D)
                        r_t = aggregate_l(M[:,t]; B_w)   c_l = aggregate_t(M[l,:]; B_f)
                        S_fw = (aggregate_t(r; B_f2) + aggregate_l(c; B_w2)) / 2
        score = (S_sv + S_vw + S_sf + S_fw) / 4

    where ``aggregate_i(x; A) = sum_i x_i * (softmax(x / tau) A)_i``: a softmax-weighted sum whose
    weights are re-mixed by a learnable square matrix ("SoftMax pooling" of the similarity
    vector).  ``tau = 0.01`` is fixed, as in X-CLIP; every learnable matrix starts as the identity.
    Padded words / frames get zero weight and zero similarity.  ``G s`` and ``F^T w_l`` are per
    text and cached in the text side; ``M`` is per pair, ``L*T*D`` multiply-adds.

    Args:
        cfg: ``max_words`` (L) and ``max_frames`` (T) size the L x L / T x T matrices.
        dim: feature width D.
        temperature: softmax temperature ``tau`` of every aggregation (X-CLIP: 0.01).
    """

    max_block_elements: int = 1 << 22
    """Upper bound on ``Bt * videos_per_block * L * T`` in :meth:`score`."""

    paper_comparison = True

    def __init__(self, cfg: Config, dim: int, temperature: float = 0.01):
        super().__init__(cfg, dim)
        self.cfg, self.dim, self.temperature = cfg, dim, float(temperature)
        nw, nf = cfg.max_words, cfg.max_frames
        self.sentence_video = nn.Parameter(torch.eye(dim))   # G   (X-CLIP global_mat_weight)
        self.word_frame = nn.Parameter(torch.eye(dim))       # F   (local_mat_weight)
        self.video_word_mix = nn.Parameter(torch.eye(nw))    # A_w (word_logit_weight)
        self.sentence_frame_mix = nn.Parameter(torch.eye(nf))  # A_f (frame_logit_weight)
        self.fine_word_mix = nn.Parameter(torch.eye(nw))     # B_w  (word_mat_weight)
        self.fine_frame_mix = nn.Parameter(torch.eye(nf))    # B_f  (frame_mat_weight)
        self.frame_level_mix = nn.Parameter(torch.eye(nf))   # B_f2 (frame_mat_weight2)
        self.word_level_mix = nn.Parameter(torch.eye(nw))    # B_w2 (word_mat_weight2)

    def encode_text(self, sentence: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> Side:
        """Text side: normalised sentence ``[Bt,D]``, words ``[Bt,L,D]``, mask, and their per-text
        projections ``G^T s`` and ``F^T w``."""
        if words.shape[1] != self.cfg.max_words:
            raise ValueError(f"X-CLIP-like head was built for max_words={self.cfg.max_words} "
                             f"(L x L matrices) but got {words.shape[1]} word tokens")
        s, w = F.normalize(sentence, dim=-1), F.normalize(words, dim=-1)
        return {"sentence": s, "words": w, "mask": mask,
                "sentence_g": s @ self.sentence_video, "words_f": w @ self.word_frame}

    def encode_video(self, frames: torch.Tensor, mask: torch.Tensor) -> Side:
        """Video side: normalised frames ``[Bv,T,D]``, mask ``[Bv,T]`` and pooled video ``[Bv,D]``."""
        if frames.shape[1] != self.cfg.max_frames:
            raise ValueError(f"X-CLIP-like head was built for max_frames={self.cfg.max_frames} "
                             f"(T x T matrices) but got {frames.shape[1]} frames")
        f = F.normalize(frames, dim=-1)
        return {"frames": f, "mask": mask, "video": F.normalize(masked_mean(f, mask), dim=-1)}

    def _aggregate(self, sims: torch.Tensor, keep: torch.Tensor, mix: torch.Tensor, dim: int) -> torch.Tensor:
        """``sum_i sims_i * (softmax(sims/tau) @ mix)_i`` along ``dim``; ``sims`` is zero where not ``keep``."""
        w = masked_softmax(sims / self.temperature, keep, dim=dim)
        w = (w.movedim(dim, -1) @ mix).movedim(-1, dim)
        return (sims * w).sum(dim)

    def score_parts(self, text: Side, video: Side) -> dict[str, torch.Tensor]:
        """The four similarity matrices ``[Bt,Bv]`` and their mean ``sim`` (one block, no chunking)."""
        wk = text["mask"] > 0                                              # [Bt,L]
        fk = video["mask"] > 0                                             # [Bv,T]
        s_sv = text["sentence_g"] @ video["video"].T
        vw = torch.einsum("ald,bd->abl", text["words"], video["video"]) * wk[:, None]
        s_vw = self._aggregate(vw, wk[:, None], self.video_word_mix, dim=-1)
        sf = torch.einsum("ad,btd->abt", text["sentence"], video["frames"]) * fk[None]
        s_sf = self._aggregate(sf, fk[None], self.sentence_frame_mix, dim=-1)
        keep = wk[:, None, :, None] & fk[None, :, None, :]                 # [Bt,Bv,L,T]
        m = torch.einsum("ald,btd->ablt", text["words_f"], video["frames"]) * keep
        per_frame = self._aggregate(m, keep, self.fine_word_mix, dim=2)    # [Bt,Bv,T]
        per_word = self._aggregate(m, keep, self.fine_frame_mix, dim=3)    # [Bt,Bv,L]
        s_fw = (self._aggregate(per_frame, fk[None], self.frame_level_mix, dim=-1)
                + self._aggregate(per_word, wk[:, None], self.word_level_mix, dim=-1)) / 2
        return {"sentence_video": s_sv, "video_word": s_vw, "sentence_frame": s_sf, "frame_word": s_fw,
                "sim": (s_sv + s_vw + s_sf + s_fw) / 4}

    def score(self, text: Side, video: Side) -> torch.Tensor:
        """Mean of the four multi-grained scores ``[Bt,Bv]``, computed over blocks of videos."""
        nt, nw = text["words"].shape[:2]
        nv, nf = video["frames"].shape[:2]
        step = video_chunk(self.max_block_elements, nt * nw * nf)
        out = [self.score_parts(text, {k: x[j:j + step] for k, x in video.items()})["sim"]
               for j in range(0, nv, step)]
        return torch.cat(out, dim=1)

    def losses(self, text: Side, video: Side, logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        return contrastive_losses(self.score(text, video), logit_scale)
