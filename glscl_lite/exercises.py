"""Reference answers of the notebooks' exercises, and the check cells' machinery.

A fill-in exercise in a notebook is a function the student completes (its body is ``raise
NotImplementedError`` until then) followed by a check cell, ``exercises.check(NAME, my_function)``:
the student's function and the package's own implementation run on the same fixed inputs and must
agree (``torch.testing.assert_close``).  While the function is left as is, the check runs the
reference answer from this module instead and says so, so every notebook still runs to the end --
papermill in CI executes exactly these reference answers.

Try first; then ``exercises.show(NAME)`` prints the reference answer (or read it below).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.testing import assert_close


# ------------------------------------------------------------------------------ reference answers
def frame_indices(n_frames_total: int, fps: float, max_frames: int = 12, framerate: int = 1) -> np.ndarray:
    """01: which frames the official loader reads (spec 6.2)."""
    if n_frames_total == 0:
        return np.zeros(0, dtype=np.int64)
    stride = max(1, int(round(fps / framerate)))          # one candidate per 1/framerate seconds
    candidates = np.arange(0, n_frames_total, stride)
    if len(candidates) > max_frames:                       # too many: spread max_frames of them evenly
        candidates = candidates[np.linspace(0, len(candidates) - 1, num=max_frames, dtype=int)]
    return candidates.astype(np.int64)


def text_attention_mask(mask: torch.Tensor, num_heads: int) -> torch.Tensor:
    """02: the official text-tower mask, additive ``[B*heads, L, L]``: query i may attend key j iff
    j <= i (causal) AND token j is not padding."""
    B, L = mask.shape
    allowed = torch.ones(L, L, dtype=torch.bool).tril()[None] & (mask[:, None, :] > 0)   # [B, Lq, Lk]
    add = torch.zeros(B, L, L).masked_fill(~allowed, float("-inf"))
    return add.repeat_interleave(num_heads, dim=0)


def gim(sent: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, tau: float) -> torch.Tensor:
    """03: Sim1 ``[Bt,Bv]`` = cos(t_a, sum_v softmax_v(<t_a, f_bv>/tau) f_bv) over the real frames."""
    logits = torch.einsum("ad,bvd->abv", sent, frames) / tau                # [Bt,Bv,T]
    logits = logits.masked_fill(mask[None] <= 0, float("-inf"))
    w = logits.softmax(-1)
    u = torch.einsum("abv,bvd->abd", w, frames)                              # pooled video per text
    return F.cosine_similarity(sent[:, None, :], u, dim=-1)


def lim_layer(layer: torch.nn.TransformerDecoderLayer, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """04: one post-norm decoder layer of the LIM (queries ``x [K,B,D]``, memory ``[M,B,D]``, eval mode)."""
    x = layer.norm1(x + layer.self_attn(x, x, x, need_weights=False)[0])               # queries talk
    x = layer.norm2(x + layer.multihead_attn(x, memory, memory, need_weights=False)[0])  # queries read
    return layer.norm3(x + layer.linear2(layer.activation(layer.linear1(x))))           # FFN (ReLU)


def icl(text: torch.Tensor, video: torch.Tensor, beta: float, normalizer: str = "official") -> torch.Tensor:
    """05: ICL = MSE(mean_b v, mean_b t) + beta * sum_k (c_k - 0.75)^2, c_k = sum_b <v_bk, t_bk> / K (official)."""
    mse = ((video.mean(0) - text.mean(0)) ** 2).mean()
    denom = video.shape[1] if normalizer == "official" else video.shape[0]
    c = (video * text).sum(-1).sum(0) / denom
    return mse + beta * ((c - 0.75) ** 2).sum()


def idl(video: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """05: IDL: hinge on the batch-mean Gram G, each off-diagonal G[k,j] against G[k,k] and G[j,j]."""
    G = torch.einsum("bkd,bjd->kj", video, video) / video.shape[0]
    K = G.shape[0]
    total = 0.0
    for k in range(K):
        for j in range(K):
            if k != j:
                total = total + (margin + G[k, j] - G[k, k]).clamp(min=0) + (margin + G[k, j] - G[j, j]).clamp(min=0)
    return total / (K * (K - 1))


def lr_multiplier(x: float, warmup: float = 0.1) -> float:
    """06: BertAdam's schedule at progress x = step / t_total: linear warm-up, then cosine over the whole run."""
    return x / warmup if x < warmup else 0.5 * (1 + math.cos(math.pi * x))


def metrics(sim: torch.Tensor) -> dict[str, float]:
    """07: R@1/5/10 (%), MdR, MnR of ``sim [N,N]`` with the ground truth on the diagonal (no ties)."""
    ranks = (sim > sim.diagonal()[:, None]).sum(1).numpy()    # 0-based rank of the right video per row
    return {"R1": 100 * np.mean(ranks < 1), "R5": 100 * np.mean(ranks < 5), "R10": 100 * np.mean(ranks < 10),
            "MdR": float(np.median(ranks)) + 1, "MnR": float(ranks.mean()) + 1}


def csc(scores: torch.Tensor) -> torch.Tensor:
    """10: GLCCL's CSC: mean variance (over the G scores) on the diagonal / (off-diagonal sum / B^2)."""
    var = scores.var(0)                                   # unbiased, [B,B]
    B = var.shape[0]
    off = var.sum() - var.diagonal().sum()
    return var.diagonal().mean() / (off / B**2)


# -------------------------------------------------------------------------------- the checks
def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cases_frame_indices():
    return [(300, 30.0, 12, 1), (45, 15.0, 12, 1), (899, 29.97, 12, 1), (10, 30.0, 12, 1), (240, 24.0, 8, 2)]


def _cases_text_mask():
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])
    return [(mask, 2)]


def _cases_gim():
    g = _gen(0)
    frames = torch.randn(3, 6, 16, generator=g) * 5
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    return [(torch.randn(4, 16, generator=g) * 5, frames, mask, tau) for tau in (3.0, 0.5, 50.0)]


def _cases_lim_layer():
    torch.manual_seed(0)
    layer = torch.nn.TransformerDecoderLayer(32, 4, 64, dropout=0.1).eval()
    g = _gen(1)
    return [(layer, torch.randn(8, 2, 32, generator=g), torch.randn(12, 2, 32, generator=g))]


def _concepts(seed: int, B: int = 6, K: int = 4, D: int = 16):
    g = _gen(seed)
    return (F.normalize(torch.randn(B, K, D, generator=g), dim=-1),
            F.normalize(torch.randn(B, K, D, generator=g), dim=-1))


def _cases_icl():
    t, v = _concepts(2)
    return [(t, v, 0.02, "official"), (t, v, 0.005, "batch"), (t, t, 0.02, "official")]


def _cases_idl():
    return [(_concepts(3)[1], 0.1), (_concepts(4, K=8)[1], 0.5)]


def _cases_lr():
    return [(x, w) for x in (0.0, 0.05, 0.1, 0.5, 0.99, 1.2) for w in (0.1,)]


def _cases_metrics():
    g = _gen(5)
    sim = torch.randn(50, 50, generator=g) + 2.0 * torch.eye(50)
    return [(sim,), (torch.randn(49, 49, generator=g),)]


def _cases_csc():
    g = _gen(6)
    return [(torch.randn(4, 8, 8, generator=g),), (torch.randn(2, 5, 5, generator=g),)]


def _pkg_frame_indices(*a):
    from glscl_lite.data.video import sample_frame_indices

    return sample_frame_indices(*a)


def _pkg_text_mask(mask, heads):
    from glscl_lite.model.backbone import official_text_attention_mask

    return official_text_attention_mask(mask, heads, torch.float32)


def _pkg_gim(sent, frames, mask, tau):
    from glscl_lite.model import GlobalInteraction

    return GlobalInteraction(tau)(sent, frames, mask)


def _pkg_lim_layer(layer, x, memory):
    with torch.no_grad():
        return layer(x, memory)


def _pkg_icl(t, v, beta, normalizer):
    from glscl_lite.losses import inter_consistency_loss

    return inter_consistency_loss(t, v, beta=beta, normalizer=normalizer)


def _pkg_idl(v, margin):
    from glscl_lite.losses import intra_diversity_loss

    return intra_diversity_loss(v, margin)


def _pkg_lr(x, w):
    from glscl_lite.optim import warmup_cosine

    return warmup_cosine(x, w)


def _pkg_metrics(sim):
    from glscl_lite.metrics import retrieval_metrics

    return retrieval_metrics(sim)


def _pkg_csc(scores):
    from glscl_lite.model.glccl import csc_loss

    return csc_loss(scores)


@dataclass
class Exercise:
    reference: Callable
    cases: Callable[[], list]
    package: Callable
    package_name: str


EXERCISES: dict[str, Exercise] = {
    "frame_indices": Exercise(frame_indices, _cases_frame_indices, _pkg_frame_indices,
                              "glscl_lite.data.video.sample_frame_indices"),
    "text_mask": Exercise(text_attention_mask, _cases_text_mask, _pkg_text_mask,
                          "glscl_lite.model.backbone.official_text_attention_mask"),
    "gim": Exercise(gim, _cases_gim, _pkg_gim, "glscl_lite.model.GlobalInteraction"),
    "lim_layer": Exercise(lim_layer, _cases_lim_layer, _pkg_lim_layer, "nn.TransformerDecoderLayer.forward"),
    "icl": Exercise(icl, _cases_icl, _pkg_icl, "glscl_lite.losses.inter_consistency_loss"),
    "idl": Exercise(idl, _cases_idl, _pkg_idl, "glscl_lite.losses.intra_diversity_loss"),
    "lr": Exercise(lr_multiplier, _cases_lr, _pkg_lr, "glscl_lite.optim.warmup_cosine"),
    "metrics": Exercise(metrics, _cases_metrics, _pkg_metrics, "glscl_lite.metrics.retrieval_metrics"),
    "csc": Exercise(csc, _cases_csc, _pkg_csc, "glscl_lite.model.glccl.csc_loss"),
}


def _compare(got: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) >= set(want), f"expected a dict with keys {sorted(want)}"
        for k in want:
            assert_close(torch.as_tensor(float(got[k]), dtype=torch.float64),
                         torch.as_tensor(float(want[k]), dtype=torch.float64), rtol=1e-6, atol=1e-6, msg=k)
        return
    got_t = torch.as_tensor(np.asarray(got) if isinstance(got, np.ndarray) else got)
    want_t = torch.as_tensor(np.asarray(want) if isinstance(want, np.ndarray) else want)
    assert got_t.shape == want_t.shape, f"shape {tuple(got_t.shape)}, expected {tuple(want_t.shape)}"
    if want_t.is_floating_point() or got_t.is_floating_point():
        assert_close(got_t.double(), want_t.double(), rtol=1e-5, atol=1e-5, equal_nan=True)
    else:
        assert torch.equal(got_t.long(), want_t.long()), f"{got_t.tolist()} != {want_t.tolist()}"


def check(name: str, attempt: Optional[Callable] = None, verbose: bool = True) -> str:
    """Run exercise ``name``: ``attempt`` (the student's function) against the package on every
    case; while it raises ``NotImplementedError`` (or is None) the reference answer runs instead.
    Returns ``"yours"`` or ``"reference"``; a wrong answer fails with the case that differs."""
    ex = EXERCISES[name]
    who, fn = "yours", attempt
    if fn is None:
        who, fn = "reference", ex.reference
    for case in ex.cases():
        want = ex.package(*case)
        try:
            with torch.no_grad():
                got = fn(*case)
        except NotImplementedError:
            if who == "reference":
                raise
            who, fn = "reference", ex.reference
            with torch.no_grad():
                got = fn(*case)
        try:
            _compare(got, want)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {'your' if who == 'yours' else 'the reference'} answer differs from {ex.package_name} on case "
                                 f"{_describe(case)}: {exc}") from None
    if verbose:
        if who == "yours":
            print(f"\u2713 {name}: your answer matches {ex.package_name} on {len(ex.cases())} cases")
        else:
            print(f"{name}: not attempted yet -- ran the reference answer (it matches {ex.package_name}). "
                  f"Fill in the function above and run this cell again; exercises.show({name!r}) reveals the answer.")
    return who


def _describe(case: Sequence[Any]) -> str:
    return "(" + ", ".join(f"tensor{tuple(c.shape)}" if torch.is_tensor(c) else type(c).__name__
                           if isinstance(c, torch.nn.Module) else repr(c) for c in case) + ")"


def show(name: str) -> None:
    """Print the reference answer of exercise ``name``."""
    print(inspect.getsource(EXERCISES[name].reference))


# ------------------------------------------------------------------------------ capstone helpers
def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], n_boot: int = 10_000, level: float = 0.95,
                        seed: int = 0) -> dict[str, float]:
    """Mean of ``b - a`` over paired items (queries, probe pairs or seeds) with a percentile
    bootstrap confidence interval: resample the items with replacement, keep the pairing."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("need two equally long 1-D sequences of at least 2 paired outcomes")
    d = b - a
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(1)
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return {"mean_diff": float(d.mean()), "lo": float(lo), "hi": float(hi), "n": int(len(d)), "level": level}
