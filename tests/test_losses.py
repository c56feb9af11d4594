"""Losses against hand-computed values (spec/glscl.md section 4)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glscl_lite.losses import (batch_mean_gram, icl_centres, info_nce, inter_consistency_loss,
                               intra_diversity_loss)


def unit(*rows):
    t = torch.tensor(rows, dtype=torch.float64)
    return t / t.norm(dim=-1, keepdim=True)


def test_info_nce_hand_computed():
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    # rows: -log(e^2/(e^2+1)), -log(e^3/(e+e^3)); columns: -log(e^2/(e^2+e)), -log(e^3/(1+e^3))
    t2v = (-math.log(math.e**2 / (math.e**2 + 1)) - math.log(math.e**3 / (math.e + math.e**3))) / 2
    v2t = (-math.log(math.e**2 / (math.e**2 + math.e)) - math.log(math.e**3 / (1 + math.e**3))) / 2
    assert info_nce(logits).item() == pytest.approx((t2v + v2t) / 2, abs=1e-6)


def test_info_nce_is_cross_entropy_both_ways_and_takes_the_diagonal_of_non_square():
    torch.manual_seed(0)
    x = torch.randn(5, 5) * 10
    ref = (F.cross_entropy(x, torch.arange(5)) + F.cross_entropy(x.T, torch.arange(5))) / 2
    torch.testing.assert_close(info_nce(x), ref)
    y = torch.randn(3, 4) * 5  # official CrossEn: -diag(log_softmax) of sim and of sim.T, min(Bt, Bv) terms
    ref = (F.cross_entropy(y, torch.arange(3)) + F.cross_entropy(y.T[:3], torch.arange(3))) / 2
    torch.testing.assert_close(info_nce(y), ref)
    with pytest.raises(ValueError, match=r"\[Bt,Bv\]"):
        info_nce(torch.randn(3))


def test_icl_hand_computed_official_and_batch_normaliser():
    # B = 2 pairs, K = 2 concepts, D = 2
    v = torch.stack([unit([1, 0], [0, 1]), unit([1, 1], [1, -1])])  # [B,K,D]
    t = torch.stack([unit([1, 0], [1, 0]), unit([0, 1], [1, -1])])
    # matched cosines <v_bk, t_bk>: b0: (1, 0); b1: (1/sqrt2, 1)
    s = 1 / math.sqrt(2)
    sums = [1 + s, 0 + 1]
    mv, mt = v.mean(0), t.mean(0)
    mse = ((mv - mt) ** 2).mean().item()
    c_off = [x / 2 for x in sums]      # / K
    r = sum((c - 0.75) ** 2 for c in c_off)
    assert inter_consistency_loss(t, v, beta=0.5).item() == pytest.approx(mse + 0.5 * r, abs=1e-9)
    assert inter_consistency_loss(t, v, beta=0.0).item() == pytest.approx(mse, abs=1e-12)
    torch.testing.assert_close(icl_centres(t, v, "batch"), torch.tensor(sums, dtype=torch.float64) / 2)  # B = 2


def test_icl_normaliser_divides_by_k_or_b():
    torch.manual_seed(1)
    t = F.normalize(torch.randn(6, 3, 4), dim=-1)
    v = F.normalize(torch.randn(6, 3, 4), dim=-1)
    matched = torch.einsum("bkd,bkd->k", v, t)
    torch.testing.assert_close(icl_centres(t, v, "official"), matched / 3)
    torch.testing.assert_close(icl_centres(t, v, "batch"), matched / 6)
    # the two variants only differ in the beta term
    a = inter_consistency_loss(t, v, beta=0.0, normalizer="official")
    b = inter_consistency_loss(t, v, beta=0.0, normalizer="batch")
    torch.testing.assert_close(a, b)
    # with beta > 0 and B = 6 != K = 3 the whole loss follows the switch: MSE + beta * sum_k (c_k - 0.75)^2
    mse = ((v.mean(0) - t.mean(0)) ** 2).mean()
    for normalizer, denom in (("official", 3), ("batch", 6)):
        want = mse + 0.5 * ((matched / denom - 0.75) ** 2).sum()
        torch.testing.assert_close(inter_consistency_loss(t, v, beta=0.5, normalizer=normalizer), want)
    assert not torch.isclose(inter_consistency_loss(t, v, 0.5, "official"), inter_consistency_loss(t, v, 0.5, "batch"))
    with pytest.raises(ValueError):
        icl_centres(t, v, "mean")


def test_icl_official_target_depends_on_batch_size():
    """S3: with /K the 0.75 target is met at mean cosine 0.75*K/B, with /B at 0.75."""
    B, K, D = 16, 4, 8
    base = F.normalize(torch.randn(B, K, D), dim=-1)
    for target_cos, normalizer in ((0.75 * K / B, "official"), (0.75, "batch")):
        # build text concepts at exactly this cosine to the video concepts
        ortho = F.normalize(torch.randn(B, K, D), dim=-1)
        ortho = F.normalize(ortho - (ortho * base).sum(-1, keepdim=True) * base, dim=-1)
        t = target_cos * base + math.sqrt(1 - target_cos**2) * ortho
        torch.testing.assert_close(icl_centres(t, base, normalizer), torch.full((K,), 0.75), atol=1e-5, rtol=0)


def test_idl_hand_computed():
    # B = 1, K = 3 concepts: cos(c0,c1) = 0.95 (violates margin 0.1 by 0.05), c2 orthogonal
    c = torch.tensor([[[1.0, 0.0, 0.0], [0.95, math.sqrt(1 - 0.95**2), 0.0], [0.0, 0.0, 1.0]]])
    G = batch_mean_gram(c)
    torch.testing.assert_close(torch.diagonal(G), torch.ones(3))
    # pairs (0,1) and (1,0), each counted against both diagonals: 4 * 0.05, / (K(K-1)) = 6
    assert intra_diversity_loss(c).item() == pytest.approx(4 * 0.05 / 6, abs=1e-6)
    assert intra_diversity_loss(c, margin=0.0).item() == pytest.approx(0.0, abs=1e-7)


def test_idl_matches_margin_ranking_formula_on_random_concepts():
    torch.manual_seed(2)
    c = F.normalize(torch.randn(5, 4, 6) + 2.0, dim=-1)  # positive offset: concepts similar
    G = torch.einsum("bkd,bjd->kj", c, c) / 5
    K, m = 4, 0.1
    total = 0.0
    for k in range(K):
        for j in range(K):
            if k != j:
                total += max(0.0, m + G[k, j] - G[k, k]) + max(0.0, m + G[k, j] - G[j, j])
    assert intra_diversity_loss(c).item() == pytest.approx(total / (K * (K - 1)), rel=1e-5)
    assert intra_diversity_loss(c[:, :1]).item() == 0.0  # one concept: nothing to push apart
