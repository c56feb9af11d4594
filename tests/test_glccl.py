"""GLCCL head (spec/glccl_eercf.md section 3): GLIM, the four X-CLIP scores, CSC, training step."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glscl_lite.config import load_preset
from glscl_lite.model import GLSCL
from glscl_lite.model import glccl
from glscl_lite.model.glccl import GLCCLHead, attention_weighted, csc_loss, glim_weights, per_pair_macs


@pytest.fixture(scope="module")
def cfg():
    return load_preset("smoke").replace(head="glccl", max_words=5, max_frames=4)


def reference_scores(head: GLCCLHead, s, w, h, mask=None, temp=5.0):
    """The released computation, pooled features materialised (modeling_glccl.py, own transcription)."""
    def pool(q, frames):  # q [A,D], frames [B,F,D] -> [A,B,D]
        logits = torch.einsum("ad,bfd->abf", q, frames) / temp
        if mask is not None:
            logits = logits.masked_fill(mask[None] <= 0, -1e30)
        return torch.einsum("abf,bfd->abd", torch.softmax(logits, -1), frames)

    g = F.normalize(pool(s, h), dim=-1)                                             # [Bt,Bv,D]
    u = F.normalize(torch.stack([pool(w[:, i], h) for i in range(w.shape[1])], 2), dim=-1)  # [Bt,Bv,L,D]
    s_hat, w_hat = F.normalize(s, dim=-1), F.normalize(w, dim=-1)
    vs = torch.einsum("ad,abd->ab", s_hat @ head.global_mat_weight, g)
    a = torch.einsum("abd,atd->atb", g, w_hat)                                      # [Bt,L,Bv]
    vw = (a * (torch.softmax(a / 0.01, 1).permute(0, 2, 1) @ head.word_logit_weight).permute(0, 2, 1)).sum(1)
    b = torch.einsum("ad,abtd->abt", s_hat, u)
    sf = (b * (torch.softmax(b / 0.01, -1) @ head.word_frame_logit_weight)).sum(-1)
    m = torch.einsum("atd,abvd->atbv", w_hat @ head.local_mat_weight, u)           # [Bt,L,Bv,L]
    word_level = ((torch.softmax(m / 0.01, 1).permute(0, 2, 3, 1) @ head.word_mat_weight).permute(0, 3, 1, 2)
                  * m).sum(1)                                                        # [Bt,Bv,L]
    frame_level = ((torch.softmax(m / 0.01, -1) @ head.word_frame_mat_weight) * m).sum(-1)  # [Bt,L,Bv]
    s2f = ((torch.softmax(word_level / 0.01, -1) @ head.word_frame_mat_weight2) * word_level).sum(-1)
    v2w = ((torch.softmax(frame_level / 0.01, 1).permute(0, 2, 1) @ head.word_mat_weight2).permute(0, 2, 1)
           * frame_level).sum(1)
    fw = (s2f + v2w) / 2
    return {"video_sentence": vs, "video_word": vw, "sentence_frame": sf, "frame_word": fw,
            "sim": (vs + vw + sf + fw) / 4}


def _random_head(cfg, dim=8, seed=0):
    torch.manual_seed(seed)
    head = GLCCLHead(cfg, dim).double()
    with torch.no_grad():  # non-identity matrices so that every orientation is checked
        for p in head.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return head


def test_attention_weighted_hand_values():
    c = torch.tensor([1.0, 0.0])
    e = math.e
    assert attention_weighted(c, torch.eye(2), temp=1.0).item() == pytest.approx(e / (1 + e))
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert attention_weighted(c, swap, temp=1.0).item() == pytest.approx(1 / (1 + e))
    # temperature 0.01 with the identity: a (near-)hard max
    assert attention_weighted(torch.tensor([0.3, 0.2, -0.1]), torch.eye(3)).item() == pytest.approx(0.3, abs=1e-4)


def test_glim_weights_raw_dot_products_tau5_and_mask_switch():
    s = torch.tensor([[1.0, 0.0]])
    h = torch.tensor([[[10.0, 0.0], [0.0, 10.0], [5.0, 5.0]]])
    dots = torch.einsum("ad,bfd->abf", s, h)                  # [1,1,3] = 10, 0, 5
    w = glim_weights(dots, 5.0)
    z = math.exp(2) + 1 + math.exp(1)
    torch.testing.assert_close(w[0, 0], torch.tensor([math.exp(2) / z, 1 / z, math.e / z]))
    masked = glim_weights(dots, 5.0, torch.tensor([[1, 1, 0]]))
    z2 = math.exp(2) + 1
    torch.testing.assert_close(masked[0, 0], torch.tensor([math.exp(2) / z2, 1 / z2, 0.0]))


def test_csc_hand_computed():
    # four 2x2 score matrices; per-entry values over g:
    # (0,0): 1,1,1,1 -> var 0; (1,1): 0,2,0,2 -> 4/3; (0,1): 0,0,0,4 -> 4; (1,0): 1,2,3,4 -> 5/3
    s = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [2.0, 2.0]],
                      [[1.0, 0.0], [3.0, 0.0]], [[1.0, 4.0], [4.0, 2.0]]])
    pos = (0 + 4 / 3) / 2
    neg = (4 + 5 / 3) / 4          # zeroed diagonal stays in the count: / B^2
    assert csc_loss(s).item() == pytest.approx(pos / neg)
    assert pos / neg == pytest.approx(8 / 17)
    assert csc_loss(7.0 * s).item() == pytest.approx(8 / 17)        # scale-invariant
    with pytest.raises(ValueError):
        csc_loss(s[:1])


@pytest.mark.parametrize("frame_mask", [False, True])
def test_head_matches_released_formulas(cfg, frame_mask):
    c = cfg.replace(glccl_frame_mask=frame_mask)
    head = _random_head(c)
    torch.manual_seed(1)
    s, w = 3 * torch.randn(3, 8, dtype=torch.double), 3 * torch.randn(3, 5, 8, dtype=torch.double)
    h = 3 * torch.randn(4, 4, 8, dtype=torch.double)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]])
    parts = head.score_parts(head.encode_text(s, w, None), head.encode_video(h, mask))
    ref = reference_scores(head, s, w, h, mask if frame_mask else None, temp=c.glccl_temp)
    for k in ref:
        torch.testing.assert_close(parts[k], ref[k], atol=1e-9, rtol=1e-9, msg=k)


def test_frame_mask_off_lets_padded_frames_count(cfg):
    """Released: no mask, so a padded frame changes the score; with the switch on it cannot."""
    torch.manual_seed(2)
    s, w = torch.randn(2, 8), torch.randn(2, 5, 8)
    h = torch.randn(1, 4, 8)
    mask = torch.tensor([[1, 1, 0, 0]])
    h2 = h.clone()
    h2[0, 3] += 5.0                                            # change a padded frame only
    for on in (False, True):
        head = GLCCLHead(cfg.replace(glccl_frame_mask=on), 8)
        t = head.encode_text(s, w, None)
        a = head.score(t, head.encode_video(h, mask))
        b = head.score(t, head.encode_video(h2, mask))
        assert torch.allclose(a, b, atol=1e-6) == on


def test_score_blocks_do_not_change_results(cfg, monkeypatch):
    head = _random_head(cfg)
    torch.manual_seed(3)
    t = head.encode_text(torch.randn(7, 8, dtype=torch.double), torch.randn(7, 5, 8, dtype=torch.double), None)
    v = head.encode_video(torch.randn(5, 4, 8, dtype=torch.double), torch.ones(5, 4))
    full = head.score(t, v)
    monkeypatch.setattr(glccl, "PAIR_BLOCK", 6)                # one text (5 pairs) per block
    torch.testing.assert_close(head.score(t, v), full)


def test_parameters_and_per_pair_cost(cfg):
    head = GLCCLHead(cfg, 8)
    assert sum(p.numel() for p in head.parameters()) == 2 * 8 * 8 + 6 * 5 * 5
    assert all(torch.equal(p, torch.eye(p.shape[0])) for p in head.parameters())
    macs = per_pair_macs(512, 12, 32)
    assert macs["released"] == 1_032_704                       # spec 3.6: ~1.03 M
    assert macs["implemented"] < 0.5 * macs["released"]


def test_presets_expose_both_csc_weights():
    assert load_preset("glccl").glccl_csc_weight == 0.5 and load_preset("glccl").head == "glccl"
    assert load_preset("glccl-argparse").glccl_csc_weight == 0.1


def test_forward_backward_through_the_model(cfg):
    torch.manual_seed(0)
    model = GLSCL(load_preset("smoke").replace(head="glccl"))
    B, L = 4, model.cfg.max_words
    ids = torch.randint(1, 4000, (B, L))
    ids[:, 9] = 49407
    mask = (torch.arange(L) < 10).long().expand(B, L).clone()
    batch = {"text_ids": ids, "text_mask": mask, "video_mask": torch.ones(B, 12, dtype=torch.long),
             "video": torch.randint(0, 256, (B, 12, 64, 64, 3), dtype=torch.uint8)}
    out = model(batch)
    parts = model.head.score_parts(*_sides(model, batch))
    scale = model.logit_scale.exp()
    from glscl_lite.losses import info_nce

    torch.testing.assert_close(out["info_nce"], info_nce(scale * parts["sim"]))
    stacked = torch.stack([scale * parts[k] for k in glccl.SCORE_NAMES])
    torch.testing.assert_close(out["csc"], 0.5 * csc_loss(stacked))
    torch.testing.assert_close(out["loss"], out["info_nce"] + out["csc"])
    out["loss"].backward()
    for name, p in model.head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.temporal.parameters())


def _sides(model, batch):
    s, w = model.text_tokens(batch["text_ids"], batch["text_mask"])
    frames = model.temporal_features(model.frame_features(batch["video"], batch["video_mask"]), batch["video_mask"])
    return model.head.encode_text(s, w, batch["text_mask"]), model.head.encode_video(frames, batch["video_mask"])
