"""FLOP counting: known layers against analytic values, the fvcore traps, the ViT-B/32 image tower
(4.41 GMAC), per-pair costs of every head, gallery costs and the ``profile`` JSON contract."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from glscl_lite import flops
from glscl_lite.config import load_preset
from glscl_lite.model import GlobalInteraction, build_head

CONTRACT_COMPONENTS = ("image_tower_per_frame", "text_tower_per_caption", "temporal_per_video",
                       "lim_per_video", "lim_per_text", "gim_per_pair", "local_score_per_pair")


# ------------------------------------------------------------------------------------ known layers
def test_linear_is_counted_in_macs_and_torch_in_flops():
    lin = nn.Linear(64, 32)
    x = torch.randn(5, 64)
    c = flops.count(lambda t: lin(t), (x,), [lin])
    assert c.macs == 5 * 64 * 32 and c.flops == 2 * 5 * 64 * 32
    assert c.torch_flops == 2 * 5 * 64 * 32 and c.cross_check()["rel_diff"] == 0


def mha_macs(B: int, lq: int, lk: int, E: int) -> int:
    """q/k/v projections + Q K^T + A V + output projection (summed over heads)."""
    return B * (lq * E * E + 2 * lk * E * E + 2 * lq * lk * E + lq * E * E)


def test_multihead_attention_includes_the_attention_matmuls():
    torch.manual_seed(0)
    B, lq, lk, E = 3, 7, 9, 32
    mha = nn.MultiheadAttention(E, 4, batch_first=True)
    q, kv = torch.randn(B, lq, E), torch.randn(B, lk, E)
    def fn(a, b):
        return mha(a, b, b, need_weights=False)[0]
    exact = mha_macs(B, lq, lk, E)
    c = flops.count(fn, (q, kv), [mha])
    assert c.macs == exact
    assert c.torch_flops == 2 * exact                                     # CPU SDPA formula added
    assert c.torch_flops - c.torch_cpu_sdpa_flops == 2 * (exact - 2 * B * lq * lk * E)  # PyTorch #195460
    # without the SDPA handle fvcore misses exactly the two attention matmuls
    plain = flops.fvcore_count(fn, (q, kv), [mha], attention_handles=False)
    assert plain.macs == exact - 2 * B * lq * lk * E
    assert plain.unsupported_ops.get("aten::scaled_dot_product_attention") == 1


def test_no_grad_fast_path_hides_attention_unless_handled():
    torch.manual_seed(0)
    B, L, E = 2, 10, 32
    mha = nn.MultiheadAttention(E, 4, batch_first=True)
    x = torch.randn(B, L, E)
    def fn(a):
        return mha(a, a, a, need_weights=False)[0]
    modes = flops.counting_modes(fn, (x,), [mha])
    exact = mha_macs(B, L, L, E)
    assert modes["no_grad, without attention handles"] == 0               # the whole block disappears
    assert modes["no_grad, with attention handles"] == exact              # fused op counted by our handle
    assert modes["autograd, without attention handles"] == exact - 2 * B * L * L * E
    assert modes["autograd, with attention handles"] == exact


def test_gim_einsum_fvcore_default_is_approximate_ours_exact():
    """fvcore parses numpy's einsum estimate at 4 significant digits (field notes 3.2)."""
    sent, frames = torch.randn(64, 512), torch.randn(64, 12, 512)
    def fn(s, f):
        return torch.einsum("ad,bvd->abv", s, f)
    exact = 64 * 64 * 12 * 512
    default = flops.fvcore_count(fn, (sent, frames), exact_einsum=False).macs
    assert default != exact and abs(default - exact) / exact < 1e-3
    assert flops.fvcore_count(fn, (sent, frames)).macs == exact
    assert flops.torch_flop_count(fn, (sent, frames))[0] == 2 * exact


def test_pair_cost_fit():
    per = {"per_pair": 7, "per_text": 100, "per_video": 30, "constant": 0}
    costs = {(a, b): a * per["per_text"] + b * per["per_video"] + a * b * per["per_pair"]
             for a, b in ((1, 1), (2, 1), (1, 2), (2, 2))}
    assert flops.fit_pair_costs(costs) == per


def test_gim_cost_split_per_pair_and_per_video():
    """The GIM reuses <t, f_v> for |u|: per pair T*D + T^2 MACs, per video the frame Gram T^2*D."""
    T, D = 12, 512
    gim = GlobalInteraction(3.0)
    sent, frames, mask = torch.randn(2, D), torch.randn(2, T, D), torch.ones(2, T)
    costs = {(a, b): flops.count(lambda s, f, m: gim(s, f, m), (sent[:a], frames[:b], mask[:b]), [gim],
                                 cross_check=False).macs for a, b in ((1, 1), (2, 1), (1, 2), (2, 2))}
    assert flops.fit_pair_costs(costs) == {"per_pair": T * D + T * T, "per_text": 0, "per_video": T * T * D,
                                           "constant": 0}


# ------------------------------------------------------------------------------------------ heads
@pytest.fixture(scope="module")
def tiny_heads():
    """Each head at the smoke sizes (D=64, L=32, T=12, K=8), profiled without CLIP."""
    cfg = load_preset("smoke")
    x = flops.ProfileInputs.make(64, 12, 32, image_size=1, device=torch.device("cpu"))
    torch.manual_seed(0)
    return {h: flops.profile_head(build_head(cfg.replace(head=h), 64), x) for h in flops.HEAD_NAMES}


def test_head_per_pair_costs_match_analytic_counts(tiny_heads):
    D, L, T, K = 64, 32, 12, 8
    ln = 5 * D  # fvcore: LayerNorm with affine = 5 MACs per element
    expected = {
        "glscl": (T * D + T * T + K * D, 0, 0),  # the frame Gram matrix is cached by encode_video
        "meanp": (D, 0, 0),
        # per pair: attention logits + weighted sum, W_o, LN, W_p, LN, cosine; per text: LN + W_q;
        # per video: LN on T frames + W_k, W_v on T frames
        "xpool_like": (2 * T * D + 2 * D * D + 2 * ln + D, ln + D * D, T * ln + 2 * T * D * D),
        # sentence-video D; video-word L*D + L^2; sentence-frame T*D + T^2; frame-word L*T*D + L^2*T +
        # T^2*L + T^2 + L^2
        "xclip_like": (D + L * D + L * L + T * D + T * T + L * T * D + L * L * T + T * T * L + T * T + L * L, 0, 0),
    }
    for h, (pair, per_text, per_video) in expected.items():
        e = tiny_heads[h]
        assert (e["macs"], e["score_per_text_macs"], e["score_per_video_macs"]) == (pair, per_text, per_video), h
        assert e["flops"] == 2 * e["macs"] and e["score_constant_macs"] == 0
        assert e["cross_check_one_pair_score"]["rel_diff"] == 0, h
    assert tiny_heads["xclip_like"]["encode_text_macs"] == D * D + L * D * D      # G^T s and F^T w, per text
    assert tiny_heads["glscl"]["cached_floats_per_video"] == T * D + T + T * T + K * D  # frames, mask, Gram, concepts
    assert tiny_heads["xpool_like"]["cached_floats_per_video"] == T * D + T       # only the frames


def test_query_latency_measures_and_extrapolates():
    cfg = load_preset("smoke")
    x = flops.ProfileInputs.make(64, 12, 32, image_size=1, device=torch.device("cpu"))
    head = build_head(cfg.replace(head="meanp"), 64)
    rows = flops.query_latency(head, x, sizes=(100, 200, 4000), repeats=1, max_gallery_bytes=200 * 256)
    assert [r["gallery"] for r in rows] == [100, 200, 4000]
    assert [r["extrapolated"] for r in rows] == [False, False, True]
    assert all(r["seconds"] > 0 and r["cached_bytes_per_video"] == 64 * 4 for r in rows[:2])


# ------------------------------------------------------------------------------- ViT-B/32 (spec 13)
@pytest.mark.slow
def test_vit_b32_image_tower_is_4_41_gmac():
    """Field notes 3.2: analytic 4.409 GMAC; fvcore under no_grad without handles: 2.95 GMAC."""
    from glscl_lite.model.backbone import CLIPBackbone

    bb = CLIPBackbone("ViT-B-32-quickgelu", pretrained=None)
    image = torch.randn(1, 3, 224, 224)
    c = flops.count(bb.encode_frames, (image,), [bb])
    assert abs(c.macs - 4.41e9) / 4.41e9 < 0.01, c.macs
    assert abs(c.macs - c.norm_macs - 4.409e9) / 4.409e9 < 1e-3            # LayerNorms are ~0.1 %
    assert c.cross_check()["rel_diff"] == 0                                # FlopCounterMode agrees exactly
    trap = flops.fvcore_count(bb.encode_frames, (image,), [bb], no_grad=True, attention_handles=False)
    assert abs(trap.macs - 2.95e9) / 2.95e9 < 0.01
    assert trap.unsupported_ops.get("aten::_native_multi_head_attention") == 12
    assert flops.fvcore_count(bb.encode_frames, (image,), [bb], no_grad=True).macs == c.macs


# ------------------------------------------------------------------------------------ the CLI JSON
@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    from glscl_lite.cli import main

    path = tmp_path_factory.mktemp("profile") / "tiny.json"
    assert main(["profile", "--backbone", "glscl-tiny", "--json", str(path), "--no-latency", "--quiet"]) == 0
    return json.loads(path.read_text())


def test_profile_json_has_the_contract_keys(tiny_report):
    comps, pp = tiny_report["components"], tiny_report["per_pair"]
    for name in CONTRACT_COMPONENTS:
        assert comps[name]["macs"] > 0 and comps[name]["flops"] == 2 * comps[name]["macs"], name
    assert set(pp) == {"glscl", "meanp", "xpool_like", "xclip_like", "glccl", "eercf"}
    for name, e in pp.items():
        assert e["macs"] > 0 and e["flops"] == 2 * e["macs"], name
    for name in CONTRACT_COMPONENTS:                                       # fvcore == FlopCounterMode
        assert comps[name]["cross_check"]["rel_diff"] == 0, name


def test_profile_numbers_are_consistent(tiny_report):
    comps, pp = tiny_report["components"], tiny_report["per_pair"]
    assert pp["glscl"]["macs"] == comps["gim_per_pair"]["macs"] + comps["local_score_per_pair"]["macs"]
    assert comps["after_clip_per_pair"]["macs"] == (
        comps["temporal_per_video"]["macs"] + comps["lim_per_video"]["macs"] + comps["lim_per_text"]["macs"]
        + comps["gim_per_pair"]["one_pair_macs"] + comps["local_score_per_pair"]["one_pair_macs"])
    assert pp["glscl"]["after_clip_one_pair_macs"] == comps["after_clip_per_pair"]["macs"]
    modes = tiny_report["counting_modes"]["image_tower_per_frame"]
    assert modes["autograd, with attention handles"] == comps["image_tower_per_frame"]["macs"]
    assert modes["no_grad, without attention handles"] < modes["autograd, without attention handles"] \
        < modes["autograd, with attention handles"]
    r = tiny_report["ratios"]
    assert r["paper_vs_glscl"]["X-CLIP"] == pytest.approx(220.9)
    assert r["ours_per_pair_vs_glscl"]["xpool_like"] == pytest.approx(pp["xpool_like"]["macs"] / pp["glscl"]["macs"])


def test_gallery_costs_are_linear_in_gallery_size(tiny_report):
    rows = {(r["head"], r["gallery"]): r for r in flops.gallery_costs(tiny_report, (1000, 2000))}
    text = tiny_report["components"]["text_tower_per_caption"]["macs"]
    for h, e in tiny_report["per_pair"].items():
        a, b = rows[(h, 1000)], rows[(h, 2000)]
        if "two_stage" in e:  # EERCF: only the coarse inner product grows with the gallery
            assert b["query_macs"] - a["query_macs"] == 1000 * e["two_stage"]["coarse_macs_per_video"]
            assert a["query_macs"] - a["head_query_macs"] == text
            continue
        assert b["query_macs"] - a["query_macs"] == 1000 * (e["macs"] + e["score_per_video_macs"])
        assert a["query_macs"] - a["head_query_macs"] == text
        assert a["query_macs_video_terms_cached"] <= a["query_macs"]
    # at 10k videos a per-pair cross-attention head costs more per query than GLSCL's cached design
    big = {r["head"]: r["query_macs"] for r in flops.gallery_costs(tiny_report, (10000,))}
    assert big["xpool_like"] > big["glscl"] > big["meanp"]


def test_tables_for_the_notebook(tiny_report):
    table = flops.component_table(tiny_report)
    for name in CONTRACT_COMPONENTS:
        assert table.loc[name, "MACs (fvcore)"] == tiny_report["components"][name]["macs"]
    assert table.loc["per_pair[xpool_like]", "FLOPs (2 MACs)"] == tiny_report["per_pair"]["xpool_like"]["flops"]
    heads = flops.head_table(tiny_report)
    assert list(heads.index) == list(flops.HEAD_NAMES + flops.RELATED_HEADS)
    assert (heads["after_clip_one_pair_macs"] > heads["one_pair_macs"]).all()
