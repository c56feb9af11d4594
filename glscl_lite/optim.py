"""Optimiser and schedule with the official semantics, spec/glscl.md section 7.

``BertAdam`` (CLIP4Clip heritage): Adam without bias correction, betas (0.9, 0.98), eps 1e-6,
decoupled weight decay added to the update, a per-tensor gradient clip inside the step (on top of
the global clip the training loop applies), and the learning rate scheduled *inside* the optimiser
from the parameter's own step count: ``lr_t = lr * warmup_cosine(step / t_total, warmup)`` --
so the first step uses lr 0.

Parameter groups (official ``prep_optimizer``): CLIP parameters train at ``lr * coef_lr``; weight
decay applies to everything whose name has no ``bias`` (all LayerNorm weights, the queries,
embeddings and ``logit_scale`` are decayed, because no module is literally named ``LayerNorm``).
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from glscl_lite.config import Config


def warmup_cosine(x: float, warmup: float = 0.1) -> float:
    """Official schedule multiplier at progress ``x = step / t_total``.

    Linear warm-up to 1 over ``warmup``, then ``0.5 (1 + cos(pi x))`` over the *whole* run (so it
    jumps from 1.0 to 0.976 at x = 0.1, and rises again past x = 1, spec S11).
    """
    if x < warmup:
        return x / warmup
    return 0.5 * (1.0 + math.cos(math.pi * x))


class BertAdam(torch.optim.Optimizer):
    """Adam without bias correction + per-tensor clipping + in-optimiser warmup-cosine schedule."""

    def __init__(self, params: Iterable, lr: float, warmup: float = 0.1, t_total: int = -1,
                 b1: float = 0.9, b2: float = 0.98, e: float = 1e-6, weight_decay: float = 0.0,
                 max_grad_norm: float = 1.0):
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        defaults = dict(lr=lr, warmup=warmup, t_total=t_total, b1=b1, b2=b2, e=e,
                        weight_decay=weight_decay, max_grad_norm=max_grad_norm)
        super().__init__(params, defaults)

    def scheduled_lr(self, group: dict, step: int) -> float:
        if group["t_total"] == -1:
            return group["lr"]
        return group["lr"] * warmup_cosine(step / group["t_total"], group["warmup"])

    def current_lrs(self) -> list[float]:
        """Learning rate each group used at its last step (for logging)."""
        lrs = []
        for group in self.param_groups:
            steps = [self.state[p]["step"] for p in group["params"] if p in self.state]
            lrs.append(self.scheduled_lr(group, max(steps) - 1) if steps else 0.0)
        return lrs

    @torch.no_grad()
    def step(self, closure=None):
        """One update; the maths is per tensor, executed with ``torch._foreach_*`` kernels."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p].update(step=0, next_m=torch.zeros_like(p), next_v=torch.zeros_like(p))
            buckets: dict[int, list] = {}  # the schedule follows each tensor's own step count
            for p in params:
                buckets.setdefault(self.state[p]["step"], []).append(p)
            for step, ps in buckets.items():
                self._update(group, ps, step)
        return loss

    def _update(self, group: dict, params: list, step: int) -> None:
        grads = [p.grad for p in params]
        if group["max_grad_norm"] > 0:  # clip_grad_norm_(p, max_norm) for every tensor separately
            norms = torch.stack(torch._foreach_norm(grads))
            coefs = (group["max_grad_norm"] / (norms + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_(grads, list(coefs.to(grads[0].dtype).unbind()))
        ms = [self.state[p]["next_m"] for p in params]
        vs = [self.state[p]["next_v"] for p in params]
        torch._foreach_mul_(ms, group["b1"])
        torch._foreach_add_(ms, grads, alpha=1 - group["b1"])
        torch._foreach_mul_(vs, group["b2"])
        torch._foreach_addcmul_(vs, grads, grads, value=1 - group["b2"])
        update = torch._foreach_div(ms, torch._foreach_add(torch._foreach_sqrt(vs), group["e"]))
        if group["weight_decay"] > 0.0:
            torch._foreach_add_(update, params, alpha=group["weight_decay"])
        torch._foreach_add_(params, update, alpha=-self.scheduled_lr(group, step))
        for p in params:
            self.state[p]["step"] += 1


def parameter_groups(model: nn.Module, cfg: Config) -> list[dict]:
    """The four official groups: (decay | no decay) x (CLIP at lr*coef_lr | the rest at lr)."""
    groups: dict[tuple[bool, bool], list] = {(d, c): [] for d in (True, False) for c in (True, False)}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = "bias" not in name
        is_clip = name.startswith("backbone.")
        groups[(decay, is_clip)].append(p)
    out = []
    for (decay, is_clip), params in groups.items():
        if params:
            out.append({"params": params, "weight_decay": cfg.weight_decay if decay else 0.0,
                        "lr": cfg.lr * (cfg.coef_lr if is_clip else 1.0),
                        "name": f"{'decay' if decay else 'no_decay'}_{'clip' if is_clip else 'other'}"})
    return out


def build_optimizer(model: nn.Module, cfg: Config, t_total: int):
    """(optimizer, scheduler or None). BertAdam schedules itself; AdamW gets a LambdaLR."""
    groups = parameter_groups(model, cfg)
    if cfg.optimizer == "bertadam":
        opt = BertAdam(groups, lr=cfg.lr, warmup=cfg.warmup_proportion, t_total=t_total,
                       weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm)
        return opt, None
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: warmup_cosine(step / max(1, t_total), cfg.warmup_proportion))
    return opt, sched
