"""BertAdam, warmup_cosine and parameter groups (spec/glscl.md section 7)."""
from __future__ import annotations

import math

import pytest
import torch

from glscl_lite.config import load_preset
from glscl_lite.model import GLSCL
from glscl_lite.optim import BertAdam, build_optimizer, parameter_groups, warmup_cosine

SPEC_TABLE = [0, 0.5, 0.9755, 0.9455, 0.9045, 0.8536, 0.7939, 0.727, 0.6545, 0.5782, 0.5, 0.4218,
              0.3455, 0.273, 0.2061, 0.1464, 0.0955, 0.0545, 0.0245, 0.0062, 0]


def test_warmup_cosine_matches_spec_table():
    for i, expected in enumerate(SPEC_TABLE):
        assert warmup_cosine(i * 0.05, 0.1) == pytest.approx(expected, abs=6e-5)
    assert warmup_cosine(1.5, 0.1) == pytest.approx(0.5)  # S11: rises again after x = 1


def test_bertadam_two_steps_by_hand():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = BertAdam([p], lr=0.1, warmup=0.0, t_total=4, weight_decay=0.5, max_grad_norm=-1)
    m = torch.zeros(2)
    v = torch.zeros(2)
    expected = p.detach().clone()
    for step, g in enumerate([torch.tensor([0.3, 0.4]), torch.tensor([-0.1, 0.2])]):
        p.grad = g.clone()
        opt.step()
        m = 0.9 * m + 0.1 * g                       # no bias correction
        v = 0.98 * v + 0.02 * g * g
        upd = m / (v.sqrt() + 1e-6) + 0.5 * expected  # decoupled decay inside the update
        lr = 0.1 * 0.5 * (1 + math.cos(math.pi * step / 4))
        expected = expected - lr * upd
        torch.testing.assert_close(p.detach(), expected)
    assert opt.state[p]["step"] == 2


def test_bertadam_first_step_uses_lr_zero_and_clips_per_tensor():
    p = torch.nn.Parameter(torch.ones(3))
    q = torch.nn.Parameter(torch.ones(3))
    opt = BertAdam([p, q], lr=1.0, warmup=0.1, t_total=10, max_grad_norm=1.0)
    p.grad = torch.full((3,), 10.0)
    q.grad = torch.full((3,), 0.1)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3))             # warm-up: lr 0 at step 0
    assert p.grad.norm().item() == pytest.approx(1.0, rel=1e-5)  # clipped to norm 1 per tensor
    assert q.grad.norm().item() == pytest.approx(0.1 * math.sqrt(3), rel=1e-5)  # untouched


def test_parameter_groups_follow_the_official_rule():
    cfg = load_preset("smoke").replace(lr=1e-4, coef_lr=1e-3)  # the paper's values (smoke uses coef_lr 1)
    model = GLSCL(cfg)
    groups = {g["name"]: g for g in parameter_groups(model, cfg)}
    assert set(groups) == {"decay_clip", "no_decay_clip", "decay_other", "no_decay_other"}
    assert groups["decay_clip"]["lr"] == pytest.approx(1e-7) and groups["no_decay_clip"]["lr"] == pytest.approx(1e-7)
    assert groups["decay_other"]["lr"] == groups["no_decay_other"]["lr"] == 1e-4
    assert groups["no_decay_other"]["weight_decay"] == 0.0
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    named = dict(model.named_parameters())
    # LayerNorm weights, queries and logit_scale are decayed; biases are not; conv1 is frozen
    assert id(named["backbone.clip.ln_final.weight"]) in ids["decay_clip"]
    assert id(named["backbone.clip.logit_scale"]) in ids["decay_clip"]
    assert id(named["head.lim.queries"]) in ids["decay_other"]
    assert id(named["temporal.resblocks.0.ln_1.weight"]) in ids["decay_other"]
    assert id(named["head.lim.decoder.layers.0.linear1.bias"]) in ids["no_decay_other"]
    stem = {id(p) for n, p in named.items() if n.startswith("backbone.clip.visual.conv1.")}  # patch conv / conv stem
    assert stem and all(not (stem & s) for s in ids.values())


def test_adamw_alternative_has_a_scheduler():
    cfg = load_preset("smoke").replace(optimizer="adamw")
    opt, sched = build_optimizer(GLSCL(cfg), cfg, t_total=100)
    assert isinstance(opt, torch.optim.AdamW) and sched is not None
    assert sched.get_last_lr()[0] == 0.0  # warm-up starts at 0 like BertAdam
