"""EERCF head (spec/glccl_eercf.md section 4): scores, TIB, Pearson, grouped InfoNCE, two stages."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glscl_lite.config import load_preset
from glscl_lite.losses import info_nce
from glscl_lite.model import GLSCL
from glscl_lite.model import eercf
from glscl_lite.model.eercf import (EERCFHead, pearson_constraint, per_pair_macs, per_query_macs,
                                    two_stage_similarity, weak_patch_score)


@pytest.fixture(scope="module")
def cfg():
    return load_preset("smoke").replace(head="eercf", max_frames=3)


def _head(cfg, dim=6, seed=0, patches=True):
    torch.manual_seed(seed)
    head = EERCFHead(cfg.replace(eercf_patches=patches), dim).double()
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return head


def _sides(head, nt=5, nv=7, seed=1, dim=6, f=3, p=4):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.double)  # noqa: E731
    mask = torch.ones(nv, f, dtype=torch.long)
    mask[1, 2:] = 0
    text = head.encode_text(r(nt, dim), r(nt, 4, dim), None)
    video = head.encode_video(r(nv, f, dim), mask, raw_frames=r(nv, f, dim), patches=r(nv, f, p, dim))
    return text, video


def reference(head, text, video):
    """Every score by explicit loops over pairs (spec 4.4 formulas)."""
    s, q = text["sentence"], text["query"]
    nt, nv = s.shape[0], video["video"].shape[0]
    out = {k: torch.zeros(nt, nv, dtype=s.dtype) for k in ("coarse", "weak_frame", "strong_frame", "weak_patch")}
    for a in range(nt):
        for b in range(nv):
            x, h, p = video["frames"][b], video["temporal"][b], video["patches"][b]
            c = x @ s[a]
            out["coarse"][a, b] = q[a] @ video["video"][b]
            out["weak_frame"][a, b] = (c * (torch.softmax(c / 0.01, 0) @ head.frame_logit_weight)).sum()
            beta = torch.softmax(c / 0.1, 0)
            z = F.normalize((beta[:, None] * h).sum(0), dim=0)
            out["strong_frame"][a, b] = s[a] @ z
            d = p @ s[a]
            out["weak_patch"][a, b] = (d * torch.softmax(d / 0.01, 0)).sum()
    out["sim"] = 0.8 * out["weak_frame"] + 0.2 * out["strong_frame"] + 0.2 * out["weak_patch"] + 0.5 * out["coarse"]
    return out


# ----------------------------------------------------------------------------------- formulas
def test_pearson_hand_computed():
    # B=2: standardised values are +-1/sqrt(2), so C_dd = +-1/2
    t = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    v = torch.tensor([[0.0, 1.0], [1.0, 0.0]])      # channel 0 agrees, channel 1 is reversed
    on = (0.5 - 1) ** 2 + (-0.5 - 1) ** 2            # 2.5
    assert pearson_constraint(t, v).item() == pytest.approx(0.14 * on)
    off = 0.5 ** 2 + 0.5 ** 2                        # C_01 = -1/2, C_10 = +1/2
    assert pearson_constraint(t, v, off_diag=1.0).item() == pytest.approx(0.14 * on + off)


def test_pearson_perfect_correlation_leaves_the_batch_factor():
    torch.manual_seed(0)
    t = torch.randn(8, 5)
    v = 3 * t + 1                                    # per-channel perfectly correlated
    # C = T~^T V~ / B with the unbiased std: C_dd = (B-1)/B
    assert pearson_constraint(t, v).item() == pytest.approx(0.14 * 5 * (1 / 8) ** 2, rel=1e-5)


def test_weak_patch_hand_value():
    d = torch.tensor([0.5, 0.49])
    e = math.e
    assert weak_patch_score(d).item() == pytest.approx(0.5 * e / (1 + e) + 0.49 / (1 + e), rel=1e-6)


def test_tib_gates_with_raw_frames_and_pools_temporal_frames(cfg):
    """Gate from x (cosine / 0.1), values from h: here the gate picks frame 0, whose h is orthogonal to s."""
    head = EERCFHead(cfg.replace(max_frames=2, eercf_patches=False), 2)
    text = head.encode_text(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 4, 2), None)
    video = head.encode_video(torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]), torch.ones(1, 2),
                              raw_frames=torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]))
    b0, b1 = 1 / (1 + math.exp(-10)), 1 / (1 + math.exp(10))
    expected = b1 / math.hypot(b0, b1)
    assert head.score_parts(text, video)["strong_frame"].item() == pytest.approx(expected, rel=1e-5)


def test_scores_match_per_pair_loops(cfg):
    head = _head(cfg)
    text, video = _sides(head)
    parts, ref = head.score_parts(text, video), reference(head, text, video)
    for k in ref:
        torch.testing.assert_close(parts[k], ref[k], atol=1e-10, rtol=1e-10, msg=k)


def test_score_pairs_equals_dense_entries(cfg, monkeypatch):
    head = _head(cfg)
    text, video = _sides(head)
    dense = head.score(text, video)
    ti = torch.tensor([[0, 0, 0], [3, 3, 3], [4, 4, 4]])
    vi = torch.tensor([[6, 0, 2], [1, 1, 5], [3, 2, 0]])
    monkeypatch.setattr(eercf, "GATHER_FLOATS", 1)   # one query per block
    torch.testing.assert_close(head.score_pairs(text, video, ti, vi), dense[ti, vi])


# ---------------------------------------------------------------------------------- two stages
def test_two_stage_equals_dense_when_k_covers_the_gallery(cfg):
    head = _head(cfg)
    text, video = _sides(head, nt=6, nv=7)
    dense = head.score(text, video)
    full = two_stage_similarity(head, text, video, k=7)
    assert torch.equal(full.argsort(1, descending=True), dense.argsort(1, descending=True))
    assert torch.equal(full.argmax(1), dense.argmax(1))


def test_two_stage_reranks_only_candidates(cfg):
    head = _head(cfg)
    text, video = _sides(head, nt=6, nv=7)
    coarse, dense = head.coarse(text, video), head.score(text, video)
    k = 3
    out = two_stage_similarity(head, text, video, k=k)
    for a in range(6):
        cand = set(coarse[a].topk(k).indices.tolist())
        order = out[a].argsort(descending=True).tolist()
        assert set(order[:k]) == cand                                         # candidates first
        assert order[:k] == sorted(cand, key=lambda v: -dense[a, v].item())   # ranked by the fine score
        rest = [v for v in range(7) if v not in cand]
        assert order[k:] == sorted(rest, key=lambda v: -coarse[a, v].item())  # the rest by the coarse score
    # v2t: each video recalls its top-k texts by the coarse score
    v2t = two_stage_similarity(head, text, video, k=2, direction="v2t")
    for b in range(7):
        cand = set(coarse[:, b].topk(2).indices.tolist())
        assert set(v2t[:, b].argsort(descending=True)[:2].tolist()) == cand


def test_model_similarity_is_two_stage(cfg):
    torch.manual_seed(0)
    model = GLSCL(load_preset("smoke").replace(head="eercf", eercf_topk=2)).eval()
    s, w = torch.randn(4, 64), torch.randn(4, 32, 64)
    frames, mask = torch.randn(5, 12, 64), torch.ones(5, 12, dtype=torch.long)
    patches = torch.randn(5, 12, 16, 64)
    t = model.encode_text_features(s, w, torch.ones(4, 32, dtype=torch.long))
    v = model.encode_video_features(frames, mask, patches=patches)
    torch.testing.assert_close(model.similarity(t, v), two_stage_similarity(model.head, t, v, 2))


# ------------------------------------------------------------------------------------- training
def test_losses_match_the_released_combination(cfg):
    head = _head(cfg)
    text, video = _sides(head, nt=5, nv=5)
    scale = torch.tensor(20.0, dtype=torch.double)
    out = head.losses(text, video, scale)
    ref = reference(head, text, video)
    weak = 0.5 * ref["coarse"] + 0.5 * ref["weak_frame"] + 0.05 * ref["weak_patch"]
    # strong: each video gated once by its own caption
    s = text["sentence"]
    z = torch.stack([F.normalize((torch.softmax(video["frames"][b] @ s[b] / 0.1, 0)[:, None]
                                  * video["temporal"][b]).sum(0), dim=0) for b in range(5)])
    strong = s @ z.T
    torch.testing.assert_close(out["info_nce_weak"], 0.8 * info_nce(scale * weak))
    torch.testing.assert_close(out["info_nce_strong"], 0.2 * info_nce(scale * strong))
    torch.testing.assert_close(out["pearson"], 0.001 * (pearson_constraint(s, video["video"]) + pearson_constraint(s, z)))
    torch.testing.assert_close(out["loss"], out["info_nce_weak"] + out["info_nce_strong"] + out["pearson"])


def test_tib_gate_is_a_stop_gradient(cfg):
    head = _head(cfg, patches=False)
    torch.manual_seed(3)
    raw = torch.randn(4, 3, 6, dtype=torch.double, requires_grad=True)
    post = torch.randn(4, 3, 6, dtype=torch.double, requires_grad=True)
    text = head.encode_text(torch.randn(4, 6, dtype=torch.double), torch.zeros(4, 1, 6), None)
    out = head.losses(text, head.encode_video(post, torch.ones(4, 3), raw_frames=raw), torch.tensor(10.0))
    g_raw, g_post = torch.autograd.grad(out["info_nce_strong"], [raw, post], allow_unused=True)
    assert g_raw is None or g_raw.abs().max() == 0                 # the gate carries no gradient
    assert g_post.abs().max() > 0                                   # the pooled values do


@pytest.mark.parametrize("patches", [True, False])
def test_forward_backward_through_the_model(patches):
    torch.manual_seed(0)
    model = GLSCL(load_preset("smoke").replace(head="eercf", eercf_patches=patches))
    B, L = 4, 32
    ids = torch.randint(1, 4000, (B, L))
    ids[:, 7] = 49407
    batch = {"text_ids": ids, "text_mask": (torch.arange(L) < 8).long().expand(B, L).clone(),
             "video": torch.randint(0, 256, (B, 12, 64, 64, 3), dtype=torch.uint8),
             "video_mask": torch.ones(B, 12, dtype=torch.long)}
    out = model(batch)
    assert set(out) >= {"info_nce_weak", "info_nce_strong", "pearson", "loss"}
    out["loss"].backward()
    for name, p in model.head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.temporal.parameters())
    with torch.no_grad():
        v = model.eval().encode_video(batch["video"], batch["video_mask"])
    assert ("patches" in v) == patches
    if patches:
        assert v["patches"].shape == (B, 12 * 64, 64)   # the stand-in: 64 px / 8 px patches = 64 per frame
        torch.testing.assert_close(v["patches"].norm(dim=-1), torch.ones(B, 12 * 64))


def test_missing_patches_is_a_clear_error(cfg):
    head = EERCFHead(cfg, 6)
    with pytest.raises(ValueError, match="patch"):
        head.encode_video(torch.randn(2, 3, 6), torch.ones(2, 3), raw_frames=torch.randn(2, 3, 6))


def test_per_pair_and_per_query_cost():
    assert per_pair_macs(512, 12, 49) == {"coarse": 512, "fine": 2 * 12 * 512 + 2 * 144 + 24 + 12 * 49 * 512}
    assert per_pair_macs(512, 12, 49)["fine"] == pytest.approx(314e3, rel=0.01)     # spec 4.8: ~314 K
    q = per_query_macs(1000, 50)
    assert q["two_stage"] == pytest.approx(16e6, rel=0.03)                           # spec 4.8: ~16 M
    assert q["dense_fine"] / q["two_stage"] == pytest.approx(19.6, rel=0.05)         # "about 19x"


def test_feature_cache_stores_patches_only_for_eercf(corpus, frame_cache, tmp_path):
    from glscl_lite.features import FeatureCache, build_feature_cache
    from glscl_lite.nb import smoke_config

    cfg = smoke_config(corpus, frame_cache=str(frame_cache))
    build_feature_cache(cfg.replace(head="eercf"), tmp_path / "eercf", progress=False)
    fc = FeatureCache(tmp_path / "eercf")
    assert fc.patch_feats.shape == (len(fc.video_ids), 12, 64, 64)
    batch = fc.videos([0, 1])
    assert batch["patch_feats"].shape == (2, 12, 64, 64) and batch["patch_feats"].dtype == torch.float16
    fc.check_matches(cfg.replace(head="eercf"))
    # the cached patches are what the backbone computes from the frames (the same stand-in CLIP)
    from glscl_lite.data.cache import FrameCache
    from glscl_lite.errors import UserError
    from glscl_lite.utils import seed_everything

    seed_everything(cfg.seed)
    model = GLSCL(cfg.replace(head="eercf"))
    fc.check_matches(cfg.replace(head="eercf"), model.backbone)
    frames, masks = FrameCache(frame_cache).get_batch(fc.video_ids[:2])
    with torch.no_grad():
        f, p = model.frame_and_patch_features(torch.from_numpy(frames), torch.from_numpy(masks))
    np.testing.assert_allclose(p.numpy(), batch["patch_feats"].float().numpy(), atol=2e-2, rtol=1e-2)
    np.testing.assert_allclose(f.numpy(), batch["frame_feats"].float().numpy(), atol=2e-2, rtol=1e-2)
    # a cache without patches is refused for EERCF (and fine for the frame-only variant)
    (tmp_path / "eercf" / "patch_feats.npy").unlink()
    plain = FeatureCache(tmp_path / "eercf")
    assert plain.patch_feats is None and "patch_feats" not in plain.videos([0])
    with pytest.raises(UserError, match="patch_feats"):
        plain.check_matches(cfg.replace(head="eercf"))
    plain.check_matches(cfg.replace(head="eercf", eercf_patches=False))
