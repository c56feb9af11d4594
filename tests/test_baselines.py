"""Baseline heads (X-Pool-like, X-CLIP-like): formulas at initialisation, per-pair dependence,
padding, blockwise scoring, training through the whole model."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glscl_lite.config import load_preset
from glscl_lite.model import GLSCL, build_head
from glscl_lite.model.baselines import XCLIPLikeHead, XPoolLikeHead
from glscl_lite.model.registry import HEADS

D, L, T = 16, 32, 12


@pytest.fixture(scope="module")
def cfg():
    return load_preset("smoke")


def features(bt: int = 3, bv: int = 4, seed: int = 0):
    """Sentence [bt,D], words [bt,L,D], text mask, frames [bv,T,D], frame mask (some padding)."""
    g = torch.Generator().manual_seed(seed)
    sentence, words = torch.randn(bt, D, generator=g), torch.randn(bt, L, D, generator=g)
    tmask = torch.zeros(bt, L, dtype=torch.long)
    for i in range(bt):
        tmask[i, :5 + 3 * i] = 1
    frames = torch.randn(bv, T, D, generator=g)
    fmask = torch.ones(bv, T, dtype=torch.long)
    fmask[1, 7:] = 0
    fmask[-1, 3:] = 0
    return sentence, words, tmask, frames, fmask


def sides(head, bt: int = 3, bv: int = 4, seed: int = 0):
    s, w, tm, f, fm = features(bt, bv, seed)
    return head.encode_text(s, w, tm), head.encode_video(f, fm)


def test_registry_and_parameter_counts(cfg):
    assert {"meanp", "xpool_like", "xclip_like"} <= set(HEADS)
    xp, xc = build_head(cfg.replace(head="xpool_like"), D), build_head(cfg.replace(head="xclip_like"), D)
    assert isinstance(xp, XPoolLikeHead) and isinstance(xc, XCLIPLikeHead)
    # X-Pool: q, k, v, out and residual projections (D x D + bias) and three LayerNorms
    assert sum(p.numel() for p in xp.parameters()) == 5 * (D * D + D) + 3 * 2 * D
    # X-CLIP: two D x D matrices, three L x L and three T x T mixing matrices
    assert sum(p.numel() for p in xc.parameters()) == 2 * D * D + 3 * L * L + 3 * T * T


def test_parameter_counts_reported_by_the_model(cfg):
    for name, expected in (("xpool_like", 5 * (64 * 64 + 64) + 6 * 64), ("xclip_like", 2 * 64 * 64 + 3 * 32 ** 2 + 3 * 144)):
        model = GLSCL(cfg.replace(head=name))
        assert model.parameter_counts()["head"] == expected


# ------------------------------------------------------------------------------------------ X-Pool
def xpool_reference(sentence: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """X-Pool at initialisation (identity projections, zero biases, unit LayerNorms), one pair at a time."""
    def ln(x):
        return F.layer_norm(x, (x.shape[-1],))

    out = torch.empty(len(sentence), len(frames))
    for a in range(len(sentence)):
        for b in range(len(frames)):
            valid = frames[b][mask[b] > 0]
            q, kv = ln(sentence[a]), ln(valid)
            w = torch.softmax(kv @ q / math.sqrt(sentence.shape[-1]), dim=0)
            p = ln(w @ kv)
            u = ln(p + p)
            out[a, b] = F.cosine_similarity(sentence[a], u, dim=0)
    return out


def test_xpool_matches_the_formula_at_initialisation(cfg):
    head = XPoolLikeHead(cfg, D).eval()
    s, w, tm, f, fm = features()
    with torch.no_grad():
        got = head.score(head.encode_text(s, w, tm), head.encode_video(f, fm))
    assert got.shape == (3, 4)
    torch.testing.assert_close(got, xpool_reference(s, f, fm), atol=1e-5, rtol=1e-5)


def test_xpool_video_feature_depends_on_the_text(cfg):
    torch.manual_seed(0)
    head = XPoolLikeHead(cfg, D, num_heads=2).eval()
    text, video = sides(head)
    with torch.no_grad():
        u = head.pooled(text, video)                                    # [Bt,Bv,D]
        score = head.score(text, video)
    assert u.shape == (3, 4, D)
    # the same video pooled for two different texts gives two different features
    assert (u[0] - u[1]).abs().max() > 1e-3
    torch.testing.assert_close(score, F.cosine_similarity(text["sentence"][:, None], u, dim=-1),
                               atol=1e-5, rtol=1e-5)
    # nothing text-independent is precomputed: the video side is just the frames
    assert set(video) == {"frames", "mask"}


@pytest.mark.parametrize("name", ["xpool_like", "xclip_like"])
def test_padded_frames_and_words_do_not_change_the_score(cfg, name):
    torch.manual_seed(0)
    head = build_head(cfg.replace(head=name, max_words=L, max_frames=T), D).eval()
    s, w, tm, f, fm = features()
    f2, w2 = f.clone(), w.clone()
    f2[fm == 0] = 100 * torch.randn(int((fm == 0).sum()), D)
    w2[tm == 0] = 100 * torch.randn(int((tm == 0).sum()), D)
    with torch.no_grad():
        a = head.score(head.encode_text(s, w, tm), head.encode_video(f, fm))
        b = head.score(head.encode_text(s, w2, tm), head.encode_video(f2, fm))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ X-CLIP
def soft_pool(x: torch.Tensor, tau: float = 0.01) -> torch.Tensor:
    """X-CLIP's aggregation with an identity mixing matrix: sum_i x_i softmax(x/tau)_i."""
    return (x * torch.softmax(x / tau, dim=0)).sum()


def test_xclip_matches_the_formula_at_initialisation(cfg):
    head = XCLIPLikeHead(cfg.replace(max_words=L, max_frames=T), D).eval()
    s, w, tm, f, fm = features()
    with torch.no_grad():
        parts = head.score_parts(head.encode_text(s, w, tm), head.encode_video(f, fm))
    sn, wn, fn = F.normalize(s, dim=-1), F.normalize(w, dim=-1), F.normalize(f, dim=-1)
    for a in range(3):
        for b in range(4):
            words, frames = wn[a][tm[a] > 0], fn[b][fm[b] > 0]
            video = F.normalize(frames.mean(0), dim=0)
            m = words @ frames.T                                        # [l, t]
            expected = {
                "sentence_video": sn[a] @ video,
                "video_word": soft_pool(words @ video),
                "sentence_frame": soft_pool(frames @ sn[a]),
                "frame_word": (soft_pool(torch.stack([soft_pool(m[:, t]) for t in range(m.shape[1])]))
                               + soft_pool(torch.stack([soft_pool(m[i]) for i in range(m.shape[0])]))) / 2,
            }
            for k, v in expected.items():
                torch.testing.assert_close(parts[k][a, b], v, atol=1e-5, rtol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    torch.testing.assert_close(parts["sim"], sum(parts[k] for k in expected) / 4)


def test_xclip_needs_the_configured_lengths(cfg):
    head = XCLIPLikeHead(cfg.replace(max_words=L, max_frames=T), D)
    with pytest.raises(ValueError, match="max_words=32"):
        head.encode_text(torch.randn(2, D), torch.randn(2, 20, D), torch.ones(2, 20))
    with pytest.raises(ValueError, match="max_frames=12"):
        head.encode_video(torch.randn(2, 8, D), torch.ones(2, 8))


# ------------------------------------------------------------------------------------ blockwise
@pytest.mark.parametrize("name", ["xpool_like", "xclip_like"])
def test_blockwise_score_equals_one_block(cfg, name):
    torch.manual_seed(0)
    head = build_head(cfg.replace(head=name), D).eval()
    text, video = sides(head, bt=5, bv=7)
    with torch.no_grad():
        full = head.score(text, video)
        head.max_block_elements = 1                                     # one video per block
        torch.testing.assert_close(head.score(text, video), full, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["xpool_like", "xclip_like"])
def test_model_similarity_is_chunk_invariant(cfg, name):
    torch.manual_seed(0)
    model = GLSCL(cfg.replace(head=name)).eval()
    g = torch.Generator().manual_seed(0)
    sentence, words = torch.randn(6, 64, generator=g), torch.randn(6, 32, 64, generator=g)
    tmask = torch.ones(6, 32, dtype=torch.long)
    tmask[:, 9:] = 0
    frames, fmask = torch.randn(5, 12, 64, generator=g), torch.ones(5, 12, dtype=torch.long)
    fmask[2, 4:] = 0
    with torch.no_grad():
        t = model.encode_text_features(sentence, words, tmask)
        v = model.encode_video_features(frames, fmask)
        one_block = model.head.score(t, v)
        torch.testing.assert_close(model.similarity(t, v, chunk=2), one_block, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(model.similarity(t, v, chunk=100), one_block, atol=1e-6, rtol=1e-6)


# ------------------------------------------------------------------------------------- training
def raw_batch(B: int = 4, T_: int = 12):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 49000, (B, 32), generator=g)
    mask = torch.zeros(B, 32, dtype=torch.long)
    for i in range(B):
        n = 6 + 5 * i
        mask[i, :n] = 1
        ids[i, n:] = 0
        ids[i, 0], ids[i, n - 1] = 49406, 49407
    vmask = torch.ones(B, T_, dtype=torch.long)
    vmask[1, 8:] = 0
    video = torch.randint(0, 256, (B, T_, 64, 64, 3), dtype=torch.uint8, generator=g)
    return {"text_ids": ids, "text_mask": mask, "video": video, "video_mask": vmask}


@pytest.mark.parametrize("name,param", [("xpool_like", "q_proj.weight"), ("xclip_like", "word_frame")])
def test_forward_backward_through_the_model(cfg, name, param):
    torch.manual_seed(0)
    model = GLSCL(cfg.replace(head=name))
    out = model(raw_batch())
    assert set(out) >= {"loss", "info_nce"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    grads = {
        "head": model.head.get_parameter(param).grad,
        "temporal": model.temporal.resblocks[0].attn.in_proj_weight.grad,
        "clip_visual": model.backbone.clip.visual.transformer.resblocks[-1].mlp.c_fc.weight.grad,
        "clip_text": model.backbone.clip.transformer.resblocks[-1].mlp.c_fc.weight.grad,
        "logit_scale": model.logit_scale.grad,
    }
    for part, g in grads.items():
        assert g is not None and g.abs().sum() > 0, part


@pytest.mark.parametrize("name", ["xpool_like", "xclip_like"])
def test_head_trains_on_a_fixed_batch(cfg, name):
    torch.manual_seed(0)
    head = build_head(cfg.replace(head=name), D)
    s, w, tm, f, fm = features(bt=8, bv=8, seed=3)
    scale = torch.tensor(20.0)

    def loss() -> torch.Tensor:
        return head.losses(head.encode_text(s, w, tm), head.encode_video(f, fm), scale)["loss"]

    head.eval()
    with torch.no_grad():
        before = loss().item()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    head.train()
    for _ in range(30):
        opt.zero_grad()
        loss().backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        after = loss().item()
    assert after < 0.7 * before, (before, after)
