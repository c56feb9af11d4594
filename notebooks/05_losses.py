# %% [markdown]
# # 05 · The losses: InfoNCE, ICL and IDL
#
# GLSCL trains with three terms (spec §4):
#
# $$L = \underbrace{L_{\mathrm{ret}}}_{\text{InfoNCE on } s\cdot(\mathrm{Sim}_1 + \lambda\,\mathrm{Sim}_2)}
# \; + \; \alpha\cdot \mathrm{IDL}(\hat v) \; + \; \underbrace{\mathrm{MSE}(\bar v, \bar t) + \beta\, R}_{\mathrm{ICL}}$$
#
# * **InfoNCE** (retrieval loss): each caption must pick its own video out of the batch, and each video its own caption.
# * **ICL**, inter-consistency loss: a caption's concepts should agree with its video's concepts.
# * **IDL**, intra-diversity loss: the K concepts of a video should not collapse onto each other.
#
# Everything here uses the package functions in `glscl_lite.losses` on small hand-made inputs, so each number can
# be checked by hand. Two quirks of the official code get their own sections: the loss names are swapped (S2), and
# the ICL divides by the wrong count (S3).

# %% tags=["parameters"]
smoke = True                    # True: tiny settings, seconds on a CPU (CI); False: the real thing
preset = None                   # None: the tiny CPU config; or "paper", "paper-readme", "glccl", ... (GPU box)
pretrained = None               # CLIP weights. None: the config's own; "openai", a checkpoint file, or "random"
data_dir = "../data/synthetic"  # MSR-VTT annotation folder; a synthetic corpus is written there when empty
video_dir = None                # None: <data_dir>/videos (real MSR-VTT: .../MSRVTT/videos/all)
frame_cache = None              # decoded-frame cache folder; None: the config's (tiny: <data_dir>/frames-64)
run_dir = None                  # run to read or train; None: <work_dir>/<smoke_run | tiny_run | PRESET_run>
device = None                   # None: the config's (tiny: "cpu"; presets: "auto" = cuda if present); or "cuda:1"
work_dir = "../runs"            # runs and caches shared by the series
# this notebook
alpha = 1e-4   # IDL weight (official)
beta = 0.005   # weight of the 0.75-target term in ICL (README 0.005; train_msrvtt.sh 0.02)

# %%
import logging
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from glscl_lite import nb
from glscl_lite.losses import (ICL_TARGET, batch_mean_gram, icl_centres, info_nce, inter_consistency_loss,
                               intra_diversity_loss)
from glscl_lite.model import GLSCLHead

logging.getLogger().setLevel(logging.ERROR)
if smoke:  # tiny tensors: one thread is as fast, and far faster when other jobs share the CPU
    torch.set_num_threads(1)
S = nb.series(globals())  # the shared parameters, resolved; writes a synthetic corpus if data_dir is empty
data_dir = S.data_dir

# %% [markdown]
# ## InfoNCE (spec §4.1)
#
# Rows are captions, columns are videos, caption i belongs to video i. The similarities are multiplied by CLIP's
# logit scale s (= 100, loaded from CLIP and clamped there, spec §1.5), turned into a softmax along each row
# (caption → video) and along each column (video → caption), and the loss is the mean negative log-probability of
# the diagonal, averaged over the two directions.

# %%
# spec §4.1: symmetric cross-entropy on s * Sim, positives on the diagonal
sim = torch.tensor([[0.60, 0.20, 0.10, 0.30],
                    [0.25, 0.55, 0.20, 0.10],
                    [0.10, 0.30, 0.40, 0.35],
                    [0.20, 0.10, 0.45, 0.50]])
s = 100.0
logits = s * sim
target = torch.arange(4)
by_hand = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
assert_close(info_nce(logits), by_hand)
print(f"info_nce = {info_nce(logits):.4f} (rows: {F.cross_entropy(logits, target):.4f}, "
      f"columns: {F.cross_entropy(logits.T, target):.4f})")
print("row-wise probability of the right video:", logits.softmax(1).diagonal().numpy().round(3))

# %% [markdown]
# Caption 2 scores video 2 at 0.40 and video 3 at 0.35: a gap of 0.05 in cosine is 5 in logits, still a clear
# winner. The column direction is a different problem: video 2 prefers caption 3 (0.45 > 0.40), hence the much
# larger column loss. The scale decides how sharp the softmax is, so a loss value only means something together
# with s:

# %%
scales = np.logspace(0, 2.3, 40)
cases = {"this matrix": sim, "perfect (identity)": torch.eye(4), "uninformative (all 0.3)": torch.full((4, 4), 0.3)}
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, m in cases.items():
    ax.semilogx(scales, [info_nce(float(sc) * m).item() for sc in scales], label=name)
ax.axhline(math.log(4), color="gray", ls=":", label="log B (chance)")
ax.axvline(100, color="crimson", ls="--", lw=1, label="s = 100 (CLIP)")
ax.set_xlabel("logit scale s"); ax.set_ylabel("InfoNCE"); ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### Several captions of the same video in one batch (S15)
#
# MSR-VTT has 20 captions per video and one epoch iterates over captions, so two captions of the same video can
# land in the same batch. The official loss still treats the other one's video as a negative (it builds a
# multi-positive target and never uses it). Those two columns are identical, so no model can separate them and the
# loss has a floor:

# %%
dup = torch.eye(4) * 0.5 + 0.1
dup[:, 1] = dup[:, 0]          # videos 0 and 1 are the same clip (captions 0 and 1 both describe it)
dup[1, 0] = dup[1, 1] = 0.6
print(f"info_nce with a duplicate pair: {info_nce(100 * dup):.4f}; floor from the duplicate alone "
      f"(2 rows and 2 columns at log 2, out of 8 terms): {4 * math.log(2) / 8:.4f}")
B, pairs, per_video = 128, 180_000, 20
expected = B * (B - 1) / 2 * (per_video - 1) / (pairs - 1)
print(f"expected same-video pairs in a random batch of {B} from MSR-VTT-9k: {expected:.2f}")


# %% [markdown]
# About one collision per batch on average: a small, constant bias, kept because the official code has it.
#
# ## IDL: the intra-diversity loss (spec §4.2)
#
# For the K video concepts of a batch, take the batch-mean Gram matrix $G_{kj} = \frac1B\sum_b \langle \hat
# v_{b,k}, \hat v_{b,j}\rangle$ (its diagonal is 1). For every ordered pair k ≠ j, two hinge terms compare the
# off-diagonal entry with the two diagonal ones, with a margin m = 0.1:
#
# $$\mathrm{IDL} = \frac{1}{K(K-1)}\sum_{k\neq j} \big[\max(0, m + G_{kj} - G_{kk}) + \max(0, m + G_{kj} - G_{jj})\big]$$
#
# Since the diagonal is 1, this is $2\cdot\mathrm{mean}_{k\ne j}\max(0, G_{kj} - 0.9)$: concepts are pushed apart
# only while their average cosine is above 0.9.

# %%
# spec §4.2: margin 0.1 on the batch-mean Gram matrix of the video concepts
def idl_by_hand(v, m=0.1):
    G = torch.einsum("bkd,bjd->kj", v, v) / v.shape[0]
    K = G.shape[0]
    total = sum(max(0.0, m + G[k, j] - G[k, k]) + max(0.0, m + G[k, j] - G[j, j])
                for k in range(K) for j in range(K) if k != j)
    return total / (K * (K - 1))


torch.manual_seed(0)
B, K, D = 6, 4, 16
unit = lambda x: x / x.norm(dim=-1, keepdim=True)  # noqa: E731
examples = {
    "all K concepts identical": unit(torch.randn(B, 1, D)).expand(B, K, D),
    "orthogonal concepts": torch.eye(K, D).expand(B, K, D),
    "random concepts": unit(torch.randn(B, K, D)),
    "nearly identical (cos ~0.95)": unit(unit(torch.randn(B, 1, D)) + 0.25 * unit(torch.randn(B, K, D))),
}
rows = []
for name, v in examples.items():
    value = intra_diversity_loss(v)
    assert_close(value, torch.as_tensor(idl_by_hand(v), dtype=value.dtype))
    G = batch_mean_gram(v)
    rows.append({"concepts": name, "mean off-diagonal G": float(G[~torch.eye(K, dtype=bool)].mean()),
                 "IDL": float(value), "alpha * IDL": alpha * float(value)})
pd.DataFrame(rows)

# %%
cosines = np.linspace(0, 1, 201)
values = []
for c in cosines:  # two concepts with cosine c in every batch item
    a = torch.tensor([1.0, 0.0]); b = torch.tensor([c, math.sqrt(max(0.0, 1 - c * c))])
    values.append(intra_diversity_loss(torch.stack([a, b])[None].float()).item())
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(cosines, values); ax.axvline(0.9, color="gray", ls=":")
ax.set_xlabel("cosine between two concepts"); ax.set_ylabel("IDL (K = 2)")
ax.set_title("a hinge: no push below cosine 0.9 = 1 - margin", fontsize=10)
plt.show()


# %% [markdown]
# IDL is at most 0.2 (all concepts identical), so with α = 1e-4 it adds at most 2e-5 to a loss of order 1. At the
# paper's weight its gradient is tiny. The ablations (notebook 08) show whether switching it off changes anything.
#
# ## ICL: the inter-consistency loss (spec §4.3)
#
# For a batch of matched pairs (caption b with video b), two parts:
#
# 1. **MSE** between the batch-mean video concept matrix and the batch-mean text concept matrix ($K\times D$ each),
#    weight 1;
# 2. **R** $= \sum_k (c_k - 0.75)^2$ with $c_k$ the summed cosine of concept k over matched pairs, weighted by β.

# %%
# spec §4.3: MSE of the batch means (weight 1) + beta * sum_k (c_k - 0.75)^2
def icl_by_hand(t, v, beta, divide_by):
    mse = ((v.mean(0) - t.mean(0)) ** 2).mean()
    c = (v * t).sum(-1).sum(0) / divide_by
    return mse + beta * ((c - 0.75) ** 2).sum()


torch.manual_seed(1)
B, K, D = 8, 4, 16
t = unit(torch.randn(B, K, D))
v = unit(t + 0.8 * torch.randn(B, K, D))
for normalizer, divide_by in [("official", K), ("batch", B)]:
    value = inter_consistency_loss(t, v, beta=beta, normalizer=normalizer)
    assert_close(value, icl_by_hand(t, v, beta, divide_by))
    print(f"normalizer={normalizer!r:>10}: c_k = {icl_centres(t, v, normalizer).numpy().round(3)}  ICL = {value:.5f}")
print("mean matched cosine per concept:", (v * t).sum(-1).mean(0).numpy().round(3))


# %% [markdown]
# ### The normaliser quirk (S3)
#
# The official code divides the sum over the batch by **K**, not by B. Then $c_k = (B/K)\cdot\overline{\cos}_k$,
# and R is smallest when the mean matched cosine is $0.75\cdot K/B$: with B = 128 and K = 8 that is **0.047**, so
# the term pulls matched caption and video concepts towards being almost orthogonal, the opposite of "consistency".
# The target also moves with the batch size, and the official global batch is the number of GPUs times the per-GPU
# batch. Dividing by B (`icl_normalizer="batch"`) makes 0.75 a target mean cosine, which is what the name suggests.
#
# Below, synthetic matched pairs with an exact mean cosine c̄ (each video concept is the caption concept rotated by
# a fixed angle), fed to `icl_centres` and the R term:

# %%
def matched_pairs(B, K, D, cos, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = unit(torch.randn(B, K, D, generator=g))
    n = torch.randn(B, K, D, generator=g)
    n = unit(n - (n * t).sum(-1, keepdim=True) * t)       # orthogonal to t
    return t, cos * t + math.sqrt(1 - cos**2) * n         # unit vectors with <t, v> = cos exactly


K, D = 8, 32
t, v = matched_pairs(128, K, D, 0.5)
print(f"B=128, K=8, mean cosine 0.5: c_k official = {icl_centres(t, v, 'official')[0]:.2f} (= 128 x 0.5 / 8), "
      f"batch = {icl_centres(t, v, 'batch')[0]:.2f}")

grid = np.linspace(0, 1, 101)
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
rows = []
for B, colour in [(8, "tab:blue"), (32, "tab:orange"), (128, "tab:red")]:
    for normalizer, ls in [("official", "-"), ("batch", ":")]:
        R = []
        for c in grid:
            tt, vv = matched_pairs(B, K, D, float(c))
            R.append(((icl_centres(tt, vv, normalizer) - ICL_TARGET) ** 2).sum().item())
        ax = axes[0] if normalizer == "official" else axes[1]
        ax.semilogy(grid, np.maximum(R, 1e-6), ls, color=colour, label=f"B = {B}")
        target = ICL_TARGET * K / B if normalizer == "official" else ICL_TARGET
        ax.axvline(target, color=colour, lw=0.8, ls="--")
        rows.append({"batch B": B, "normalizer": normalizer, "R is minimal at mean cosine": round(target, 4)})
for ax, title in zip(axes, ["official: c_k = sum / K  (S3)", "icl_normalizer='batch': c_k = sum / B"]):
    ax.set_xlabel("mean matched concept cosine"); ax.set_ylabel("R = sum_k (c_k - 0.75)^2")
    ax.set_title(title, fontsize=10); ax.legend(fontsize=8); ax.axvline(0.75, color="gray", lw=0.5)
plt.tight_layout(); plt.show()
pd.DataFrame(rows).pivot(index="batch B", columns="normalizer", values="R is minimal at mean cosine")

# %%
R_half = K * (128 * 0.5 / K - 0.75) ** 2
print(f"B = 128, mean matched cosine 0.5: R = {R_half:.1f}; beta*R = {0.005 * R_half:.2f} (beta 0.005) "
      f"or {0.02 * R_half:.2f} (beta 0.02), against an InfoNCE at chance level of log(128) = {math.log(128):.2f}")

# %% [markdown]
# The target moves with the global batch. With matched pairs of exact mean cosine c̄ (as above), `R = K (B c̄ / K -
# 0.75)^2` under the official normaliser and `K (c̄ - 0.75)^2` under the batch one. One panel per global batch size
# B (K = 8): where R is minimal is what ICL asks for. In JupyterLab a slider steps through B; the panels are the
# static version.

# %%
from glscl_lite import widgets

cbar = np.linspace(0, 1, 201)


def draw_icl_target(B, ax, K=8):
    ax.semilogy(cbar, np.maximum(K * (B * cbar / K - ICL_TARGET) ** 2, 1e-6), label="official (/K)")
    ax.semilogy(cbar, np.maximum(K * (cbar - ICL_TARGET) ** 2, 1e-6), ":", label="batch (/B)")
    ax.axvline(ICL_TARGET * K / B, color="crimson", lw=0.8, ls="--")
    ax.set_title(f"B = {B}: official target {ICL_TARGET * K / B:.3f}", fontsize=9)
    ax.set_xlabel("mean matched cosine"); ax.legend(fontsize=7)


widgets.explore(draw_icl_target, "B", [8, 32, 128, 256, 1024], default=128,
                title="ICL's R term against the mean matched cosine, K = 8 (dashed: the official optimum)")

# %% [markdown]
# So the term is not a small regulariser under the official normaliser: as soon as matched concepts become
# similar it can dominate the loss and pull them apart again. The package reproduces it by default (this is a
# reproduction) and notebook 08 compares both settings.
#
# ## Names: the official code swaps them (S2)
#
# | paper | official code variable | what it does | package | config switches | logged key |
# |---|---|---|---|---|---|
# | inter-consistency loss (ICL) | `Intra_Consistency` | caption concepts ↔ video concepts agree | `inter_consistency_loss` | `icl`, `beta`, `icl_normalizer` | `icl` |
# | intra-diversity loss (IDL) | `Inter_Diversity` | the K concepts of one item differ | `intra_diversity_loss` | `idl`, `alpha`, `idl_modalities` | `idl` |
#
# The package follows the paper's names. A second mismatch: the paper describes the diversity term on the visual
# **and** textual queries, but the official code applies it to the video concepts only (the text version is
# computed and thrown away, spec S2/S18). `idl_modalities="video"` is the official behaviour, `"both"` the paper's
# wording.
#
# ## The same terms inside the model
#
# `GLSCLHead.losses` computes the named terms on a matched batch of per-item sides. A small head (D = 16) on random
# features, with the switches flipped one at a time (same weights each time, eval mode so dropout is off):

# %%
cfg = nb.smoke_config(data_dir).replace(lim_heads=2, lim_ffn_dim=32, alpha=alpha, beta=beta)
D, B, L, T = 16, 6, cfg.max_words, cfg.max_frames  # B != K, so the two ICL normalisers differ
torch.manual_seed(0)
base = GLSCLHead(cfg, D).eval()
sent, words = torch.randn(B, D), torch.randn(B, L, D)
frames = torch.randn(B, T, D)
tmask, vmask = torch.ones(B, L, dtype=torch.long), torch.ones(B, T, dtype=torch.long)
variants = {"official defaults": {}, "idl_modalities='both'": {"idl_modalities": "both"},
            "icl_normalizer='batch'": {"icl_normalizer": "batch"}, "icl=False": {"icl": False},
            "idl=False": {"idl": False}}
rows = {}
with torch.no_grad():
    for name, change in variants.items():
        head = GLSCLHead(cfg.replace(**change), D).eval()
        head.load_state_dict(base.state_dict())
        text, video = head.encode_text(sent, words, tmask), head.encode_video(frames, vmask)
        out = head.losses(text, video, torch.tensor(100.0))
        rows[name] = {k: float(out[k]) if k in out else np.nan for k in ("info_nce", "icl", "idl", "loss")}
    # checks against the loss functions called directly
    tc, vc = text["concepts"], video["concepts"]
    assert_close(torch.tensor(rows["official defaults"]["idl"]), alpha * intra_diversity_loss(vc))
    assert_close(torch.tensor(rows["idl_modalities='both'"]["idl"]),
                 alpha * (intra_diversity_loss(vc) + intra_diversity_loss(tc)))
    assert_close(torch.tensor(rows["icl_normalizer='batch'"]["icl"]),
                 inter_consistency_loss(tc, vc, beta=beta, normalizer="batch"))
pd.DataFrame(rows).T

# %% [markdown]
# InfoNCE does not change between the variants (same scores); only the auxiliary terms do. In training, notebook 06
# logs exactly these keys (`info_nce`, `icl`, `idl`, `loss`) and plots them over the steps.

# %% [markdown]
# ## Exercises
#
# Predict before you run. Fill-in cells start as `raise NotImplementedError`: the check cell below each one compares
# your function with the package on fixed inputs and, while it is still unfilled, runs the reference answer from
# `glscl_lite/exercises.py` instead (so the notebook always runs to the end; `exercises.show(NAME)` prints that
# answer -- after you tried).
#
# ### 1 · Predict, then run: the ICL target on 8 GPUs
#
# The released script trains with a global batch of 128 and K = 8. What mean matched concept cosine does ICL's
# "0.75" actually ask for? And if you kept 128 per GPU on 8 GPUs (global batch 1,024, all-gathered before the loss)?
# With `icl_normalizer="batch"`?
#
# <details><summary>Answer (open after predicting)</summary>
#
# Official normaliser: `0.75 · K / B` = 0.75 × 8 / 128 = **0.047**; on 8 GPUs × 128, B = 1,024: **0.0059** --
# matched concepts are pushed towards orthogonal, and more so the more GPUs. With the batch normaliser: **0.75** in
# both cases.
#
# </details>

# %%
from glscl_lite import exercises

for B_try in (128, 8 * 128):
    print(f"global batch {B_try:>5}: official target {ICL_TARGET * 8 / B_try:.4f}, batch normaliser {ICL_TARGET}")


# %% [markdown]
# ### 2 · Fill in: ICL
#
# `my_icl(text [B,K,D], video [B,K,D], beta, normalizer)`: the MSE between the batch means of video and text
# concepts (weight 1) plus `beta * sum_k (c_k - 0.75)^2`, where `c_k` sums `<v_bk, t_bk>` over the batch and divides
# by K (`"official"`) or B (`"batch"`).

# %%
def my_icl(text, video, beta, normalizer="official"):
    # your code here
    raise NotImplementedError


exercises.check("icl", my_icl);


# %% [markdown]
# ### 3 · Fill in: IDL
#
# `my_idl(video [B,K,D], margin)`: `G = mean_b V_b V_bᵀ` (`[K,K]`); for every ordered pair k ≠ j add `max(0, m +
# G[k,j] - G[k,k]) + max(0, m + G[k,j] - G[j,j])`; divide by K(K-1).

# %%
def my_idl(video, margin=0.1):
    # your code here
    raise NotImplementedError


exercises.check("idl", my_idl);
