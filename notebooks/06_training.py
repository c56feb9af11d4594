# %% [markdown]
# # 06 · Training
#
# This notebook trains GLSCL (or loads the run if it already finished) and looks at what happens during training:
#
# 1. the configuration and the presets,
# 2. the optimiser the official code uses, BertAdam, with its parameter groups and its schedule,
# 3. what the official fp16 backbone means in practice, and the `freeze_backbone` switch,
# 4. the run itself: loss terms and validation recall over the steps,
# 5. the same run from the command line, and on a GPU with the paper's settings.
#
# With `smoke=True` the run is the package's `smoke` preset (the project's stand-in CLIP, a 4.1 M-parameter CLIP
# pretrained on frames of the synthetic world and shipped in the package, under a GLSCL head; 48 synthetic videos,
# CPU), stopped after 16 optimiser steps so that the notebook stays fast (`max_steps`; pass `-p max_steps 80` for
# the preset's full two epochs, in a new `run_name`). It is only meant to show the mechanics; do not read the recall
# numbers (on 8 validation and 8 test videos) as results. Notebook 07 evaluates the same run; notebooks 03, 04, 07
# and 11 look inside the trained GLSCL shipped with the package instead (or inside this run, given as `run_dir`).

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
run_name = None     # run folder under work_dir when run_dir is None; None: "smoke_run" / "tiny_run" / "<preset>_run"
max_steps = None    # None: 16 optimiser steps when smoke (keeps CI fast), else the full schedule

# %%
import logging
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from glscl_lite import nb, runs
from glscl_lite.config import ConfigError, load_preset
from glscl_lite.model import GLSCL
from glscl_lite.optim import BertAdam, parameter_groups, warmup_cosine
from glscl_lite.runs import read_metrics

logging.getLogger().setLevel(logging.ERROR)
if smoke:  # tiny tensors: one thread is as fast, and far faster when other jobs share the CPU
    torch.set_num_threads(1)
S = nb.series(globals())  # the shared parameters, resolved; writes a synthetic corpus if data_dir is empty
data_dir = S.data_dir

cfg, run_dir = S.run(run_name, max_steps)  # the run 06 trains and 07 evaluates

print("run folder:", run_dir)

# %% [markdown]
# ## 1. Configuration
#
# One dataclass, `glscl_lite.config.Config`, holds every hyperparameter; the keys keep the official flag names where
# one exists (spec §11). A preset is a short JSON file of changes, and `replace` makes a checked copy. The run of
# this notebook against the paper's MSR-VTT settings:

# %%
paper = load_preset("paper")
groups = {
    "data": ["max_words", "max_frames", "video_framerate", "augment", "frame_cache", "val_videos"],
    "model": ["base_encoder", "pretrained", "text_mask", "num_hidden_layers", "temp", "query_number",
              "cross_att_layer", "lim_heads", "lim_ffn_dim", "query_share", "cross_att_share", "loss2_weight"],
    "losses": ["alpha", "beta", "icl_normalizer", "idl_modalities"],
    "optimisation": ["optimizer", "lr", "coef_lr", "weight_decay", "warmup_proportion", "batch_size", "epochs",
                     "schedule_epochs", "eval_every", "freeze_backbone"],
}
rows = [{"group": g, "key": k, "this run": getattr(cfg, k), "paper preset": getattr(paper, k)}
        for g, keys in groups.items() for k in keys]
table = pd.DataFrame(rows).set_index(["group", "key"])
table["differs"] = np.where(table["this run"].astype(str) != table["paper preset"].astype(str), "*", "")
table

# %%
try:
    cfg.replace(query_numbr=4)  # a typo is an error, not a silently ignored setting
except ConfigError as exc:
    print("ConfigError:", str(exc)[:160], "...")

# %% [markdown]
# ## 2. The optimiser: BertAdam (spec §7)
#
# The official code uses CLIP4Clip's `BertAdam`, not `torch.optim.AdamW`. Three differences matter:
#
# * **no bias correction**: the moment estimates start at zero and are used as they are;
# * **the schedule lives inside the optimiser**: the learning rate at a tensor's n-th step is
#   `lr · warmup_cosine(n / t_total)`, so the very first step has learning rate 0;
# * **per-tensor gradient clipping** (norm 1 for every tensor separately), on top of the global clipping in the loop.
#
# The first point changes the size of early steps. With a constant gradient, Adam's bias-corrected step is exactly
# 1 (times lr) from the start; BertAdam's step starts at 0.71, overshoots to about 1.5 after a dozen steps (the
# second moment, with β2 = 0.98, warms up more slowly than the first) and only settles at 1 after a few hundred:

# %%
# spec §7.1: no bias correction, betas (0.9, 0.98), eps 1e-6
steps = 300
p_bert, p_adam = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
bert = BertAdam([p_bert], lr=1.0, t_total=-1, max_grad_norm=0.0)    # t_total=-1: constant lr, no schedule
adam = torch.optim.Adam([p_adam], lr=1.0, betas=(0.9, 0.98), eps=1e-6)
sizes = {"BertAdam (official)": [], "Adam (bias-corrected)": []}
for _ in range(steps):
    for p, opt, key in [(p_bert, bert, "BertAdam (official)"), (p_adam, adam, "Adam (bias-corrected)")]:
        before = p.detach().clone()
        p.grad = torch.ones(1)
        opt.step()
        sizes[key].append(float((before - p.detach()).abs()))
fig, ax = plt.subplots(figsize=(7, 3))
for key, v in sizes.items():
    ax.plot(range(1, steps + 1), v, label=key)
ax.set_xscale("log"); ax.set_xlabel("step"); ax.set_ylabel("|update| / lr"); ax.legend()
ax.set_title("step size under a constant gradient", fontsize=10)
plt.show()
print("BertAdam steps 1, 10, 100:", [round(sizes["BertAdam (official)"][i], 3) for i in (0, 9, 99)])

# %% [markdown]
# ### Parameter groups
#
# `parameter_groups` splits parameters the way the official `prep_optimizer` does: CLIP parameters (names starting
# with `backbone.`) train at `lr · coef_lr` (1e-4 · 1e-3 = 1e-7 in the paper), everything else at `lr`; weight
# decay 0.2 applies to every name without `bias`. Because no module is literally called `LayerNorm`, the LayerNorm
# weights, the queries, the embeddings and the logit scale are all decayed (spec §7.2). The temporal transformer
# is *not* in the CLIP group, although it starts as a copy of CLIP blocks. Shown on the smoke model (stand-in CLIP
# and GLSCL head), with the lr of this run and the lr the paper preset would give:

# %%
torch.manual_seed(0)
demo = GLSCL(nb.smoke_config(data_dir))
names = {id(p): n for n, p in demo.named_parameters()}
rows = []
for g_run, g_paper in zip(parameter_groups(demo, cfg), parameter_groups(demo, paper)):
    ps = g_run["params"]
    rows.append({"group": g_run["name"], "tensors": len(ps), "parameters": sum(p.numel() for p in ps),
                 "weight decay": g_run["weight_decay"], "lr (this run)": g_run["lr"], "lr (paper)": g_paper["lr"],
                 "examples": ", ".join(names[id(p)] for p in ps[:2])})
display(pd.DataFrame(rows))
decayed = [names[id(p)] for g in parameter_groups(demo, cfg) if g["weight_decay"] > 0 for p in g["params"]]
print("decayed although they are norms / queries / scales:",
      [n for n in decayed if any(s in n for s in ("ln_", "norm", "queries", "logit_scale"))][:6], "...")

# %% [markdown]
# The smoke preset keeps the paper's `coef_lr = 1e-3`: its CLIP is the pretrained stand-in, and as with the OpenAI
# weights in the paper, CLIP's lr of 1e-7 keeps it almost where it starts while the head learns at 1e-4. (The old
# from-scratch setting, a random `glscl-tiny` CLIP that has to learn too, needs `coef_lr = 1`: `glscl-lite train
# --config smoke --set base_encoder=glscl-tiny --set pretrained=none --set coef_lr=1`.)
#
# ### The schedule, and the hard-coded 5 epochs (S11)
#
# `warmup_cosine` rises linearly over the first 10 % of `t_total` steps, then follows `0.5·(1 + cos(π·x))` over the
# *whole* run (so it drops from 1.0 to 0.976 at x = 0.1). The official code sets `t_total = steps_per_epoch × 5`
# whatever `--epochs` says. A 10-epoch run (the official ActivityNet setting) therefore reaches lr 0 after epoch 5
# and then climbs back up. `schedule_epochs=5` reproduces that; `schedule_epochs=None` follows `epochs`.

# %%
spec_values = [0, 0.5, 0.9755, 0.9455, 0.9045, 0.8536, 0.7939, 0.727, 0.6545, 0.5782, 0.5, 0.4218, 0.3455, 0.273,
               0.2061, 0.1464, 0.0955, 0.0545, 0.0245, 0.0062, 0]  # spec §13 at x = 0, 0.05, ..., 1
ours = [warmup_cosine(x) for x in np.linspace(0, 1, 21)]
assert np.allclose(ours, spec_values, atol=1e-4)

fig, ax = plt.subplots(figsize=(9, 3.3))
epochs = np.linspace(0, 10, 1001)
ax.plot(epochs[:501], [warmup_cosine(e / 5) for e in epochs[:501]], lw=3, alpha=0.5, label="5 epochs (MSR-VTT)")
ax.plot(epochs, [warmup_cosine(e / 5) for e in epochs], label="10 epochs, schedule_epochs=5 (official, S11)")
ax.plot(epochs, [warmup_cosine(e / 10) for e in epochs], "--", label="10 epochs, schedule_epochs=None")
ax.set_xlabel("epoch"); ax.set_ylabel("lr multiplier"); ax.legend(fontsize=8)
plt.show()

from glscl_lite.data.splits import build_splits
from glscl_lite.train import schedule_steps

steps_per_epoch, t_total, run_steps = schedule_steps(cfg, len(build_splits(cfg).train))
x_end = run_steps / t_total
print(f"this run: {steps_per_epoch} steps per epoch, t_total = {t_total} steps; its {run_steps} steps cover "
      f"x = 0 .. {x_end:.2f}, where the multiplier ends at {warmup_cosine(x_end):.2f}")

# %% [markdown]
# ## 3. The official fp16 backbone (S1) and `freeze_backbone`
#
# On a GPU the official code casts CLIP's weights to fp16 and updates them in place with lr 1e-7, without an fp32
# master copy. An fp16 number has about 3 significant digits: a weight of size 0.02 is spaced ~1.5e-5 from its
# neighbours, so adding an Adam step of ~1e-7 rounds back to the same number. Only weights smaller than about
# 2.4e-4 can move at all:

# %%
# spec S1: fp16 weights updated in place at lr 1e-7, no fp32 master copy
torch.manual_seed(0)
w = (0.02 * torch.randn(200_000)).half()                       # fp16 weights of a typical scale
step = (1e-7 * torch.sign(torch.randn(200_000))).half()        # an Adam-sized update at lr 1e-7
changed = (w - step) != w
print(f"weights that change at all after one step: {changed.float().mean():.2%}")
bins = np.logspace(-7, -1, 31)
absw = w.float().abs().numpy()
share = [changed.numpy()[(absw >= lo) & (absw < hi)].mean() if ((absw >= lo) & (absw < hi)).any() else np.nan
         for lo, hi in zip(bins[:-1], bins[1:])]
fig, ax = plt.subplots(figsize=(7, 3))
ax.semilogx(np.sqrt(bins[:-1] * bins[1:]), share, "o-")
ax.axvline(2.4e-4, color="crimson", ls="--", label="|w| ~ 2.4e-4: half an fp16 spacing = 1e-7")
ax.set_xlabel("|weight|"); ax.set_ylabel("share that moves"); ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# So in effect the official run trains a CLIP that is frozen except for its tiny weights (the spec's probe found about
# 10 % of the fp16 elements moved after 8 steps, §13), plus the fp32 temporal transformer and LIM. The package trains
# in fp32 (bf16 autocast on GPU), so at lr 1e-7 CLIP genuinely but barely moves. `freeze_backbone=True` is the
# closest match in effect, and it allows caching CLIP features once (`glscl-lite cache features`), which turns
# hours of training into minutes. Only the logit scale stays trainable in the backbone:

# %%
frozen = GLSCL(nb.smoke_config(data_dir, freeze_backbone=True))
for label, m in [("fine-tuned backbone", demo), ("freeze_backbone=True", frozen)]:
    c = m.parameter_counts()
    print(f"{label:>22}: trainable {c['trainable']:>9,} of {c['total']:,} "
          f"(temporal {c['temporal']:,}, head {c['head']:,})")

# %% [markdown]
# ## 4. The run
#
# `nb.ensure_run` loads the results when `run_dir` already holds a finished run with the same settings, and
# otherwise trains (or resumes an interrupted run). The training length is part of the comparison: a different
# `max_steps` resumes the finished run in the same folder and extends it, so use a new `run_name` to keep the old
# run. The next cell prints how long this run took.

# %%
finished_before = runs.is_finished(run_dir)
t0 = time.time()
results = nb.ensure_run(cfg, run_dir, progress=not smoke)
print(f"{'loaded' if finished_before else 'trained'} in {time.time() - t0:.1f} s: {run_dir}")
print(f"{results['steps']} steps, best validation step {results['best_step']}, "
      f"{results['parameters']['trainable']:,} trainable parameters")

# %% [markdown]
# Every `log_every` steps the trainer appends the loss terms to `metrics.jsonl`, and after each validation the
# recall numbers. `read_metrics` returns the lines as dicts:

# %%
metrics = pd.json_normalize(read_metrics(run_dir))
train = metrics[metrics["split"] == "train"].dropna(axis=1, how="all")
terms = [k for k in ("info_nce", "icl", "idl", "loss") if k in train]
long = train.melt(id_vars="step", value_vars=terms, var_name="term", value_name="value")
g = sns.relplot(data=long, x="step", y="value", col="term", kind="line", marker="o", col_wrap=4,
                height=2.8, aspect=1.1, facet_kws={"sharey": False})
g.figure.suptitle("loss terms during training (train batches)", y=1.04)
plt.show()
extra = [k for k in ("sim1_pos", "sim2_pos", "lr", "logit_scale") if k in train]
long2 = train.melt(id_vars="step", value_vars=extra, var_name="quantity", value_name="value")
g = sns.relplot(data=long2, x="step", y="value", col="quantity", kind="line", col_wrap=4, height=2.6, aspect=1.1,
                facet_kws={"sharey": False})
plt.show()

# %% [markdown]
# How to read the curves:
#
# * **info_nce** is the retrieval loss; at chance it is about log(batch size). It is the term that moves most.
# * **icl** is MSE + β·R. Its R part pulls the mean matched concept cosine towards 0.75·K/B under the official
#   normaliser (notebook 05), and `sim2_pos` is exactly that mean cosine, so the two curves can be read together
#   (numbers below).
# * **idl** is α·IDL. The concepts are unit vectors, so every Gram entry is at most the diagonal's 1 and IDL is at
#   most 2·margin = 0.2: with α = 1e-4 this term never exceeds 2e-5 — negligible next to the others.
# * **sim1_pos / sim2_pos** are the mean global and local scores of the matched pairs in the batch; **lr** is the
#   largest learning rate used (warm-up, then the cosine); **logit_scale** is s = exp(CLIP's logit scale).
#
# The share of each term in the total loss at the first and last logged steps:

# %%
first, last = train.iloc[0], train.iloc[-1]
B, K = cfg.batch_size, cfg.query_number
if "sim2_pos" in train:
    print(f"ICL target with the official normaliser, B = {B}, K = {K}: mean matched concept cosine "
          f"{0.75 * K / B:.3f}; sim2_pos went from {first['sim2_pos']:.3f} to {last['sim2_pos']:.3f}")
print(f"logit scale s = {last['logit_scale']:.1f} (a random open_clip model starts at 1/0.07 = 14.3, the shipped "
      "stand-in at 51.9 from its pretraining; the OpenAI weights load 100, the clamp's upper limit, spec §1.5)")
share = pd.DataFrame({f"step {int(first.step)}": first[terms[:-1]] / first["loss"],
                      f"step {int(last.step)}": last[terms[:-1]] / last["loss"]})
share.style.format("{:.2e}")

# %% [markdown]
# ### Validation recall over the steps
#
# Validation uses videos carved out of the training list (never the test set; the official code selects on the
# test set, spec S6); the best text-to-video R@1 (then R@5, R@10) picks the checkpoint `best.pt`. The smoke
# settings validate at the end of each epoch and at the last step (so a 16-step smoke run has a single point); the
# paper preset every 150 steps.

# %%
val = metrics[metrics["split"] == "val"]
if len(val):
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for key, label in [("t2v.R1", "text->video R@1"), ("v2t.R1", "video->text R@1"), ("t2v.R5", "text->video R@5")]:
        ax.plot(val["step"], val[key], "o-", label=label)
    best = val[val["best"]].iloc[-1]
    ax.axvline(best["step"], color="gray", ls=":", label=f"best checkpoint (step {int(best['step'])})")
    ax.axhline(100 / cfg.val_videos, color="crimson", lw=0.8, ls="--", label="R@1 of random ranking")
    ax.set_xlim(0, results["steps"] * 1.05)
    ax.set_xlabel("step"); ax.set_ylabel("%"); ax.legend(fontsize=8)
    plt.show()
pd.DataFrame({f"{split} {direction}": results[split][direction] for split in ("val", "test") if results.get(split)
              for direction in ("t2v", "v2t")}).T.round(2)

# %% [markdown]
# ## 5. The same run from the command line, and on a GPU
#
# Everything above is one call of `glscl_lite.train.train`; the CLI is a thin wrapper. The exact command for this
# run (a preset plus the keys that differ from it):

# %%
base_name = preset or "smoke"
base = load_preset(base_name).to_dict()
sets = [f"--set {k}={v}" for k, v in cfg.to_dict().items() if v != base[k]]
print(" \\\n    ".join([f"glscl-lite train --config {base_name}"] + sets + [f"--out {run_dir}"]))

# %% [markdown]
# Re-running the same command on the same `--out` folder resumes exactly (model, optimiser, RNG states and data
# order are in `checkpoints/last.pt`). On a GPU box with real MSR-VTT (notebook 00 lists the download steps):
#
# ```bash
# # frames decoded once at 224 px; training reads the cache (decoding on the fly starves a GPU)
# glscl-lite cache frames --anno data/msrvtt/msrvtt_data --videos data/msrvtt/MSRVTT/videos/all \
#                         --out data/msrvtt/frames-224 --size 224
# glscl-lite train --config paper --set frame_cache=data/msrvtt/frames-224 --out runs/paper
#
# # the same through this notebook
# glscl-lite notebooks --out runs/notebooks-paper --only 06 -p preset=paper \
#     -p data_dir=data/msrvtt/msrvtt_data -p video_dir=data/msrvtt/MSRVTT/videos/all \
#     -p frame_cache=data/msrvtt/frames-224
#
# # frozen CLIP (close to the official fp16 behaviour, S1): cache features once, then train only the head
# glscl-lite cache features --config paper --set freeze_backbone=True --out data/msrvtt/features
# glscl-lite train --config paper --set freeze_backbone=True --set feature_cache=data/msrvtt/features --out runs/frozen
#
# # several GPUs: the global batch (128) is split over processes; all-gather keeps the official loss semantics
# torchrun --nproc_per_node 4 -m glscl_lite train --config paper --set frame_cache=data/msrvtt/frames-224 --out runs/paper-4gpu
# ```
#
# The paper's batch of 128 fits on one H100 (bf16 autocast), so one GPU reproduces the official 4-GPU global batch.
#
# **Next:** notebook 07 evaluates this run.

# %% [markdown]
# ## Exercises
#
# Predict before you run. Fill-in cells start as `raise NotImplementedError`: the check cell below each one compares
# your function with the package on fixed inputs and, while it is still unfilled, runs the reference answer from
# `glscl_lite/exercises.py` instead (so the notebook always runs to the end; `exercises.show(NAME)` prints that
# answer -- after you tried).
#
# ### 1 · Predict, then run: the learning-rate multiplier
#
# BertAdam's schedule with `warmup = 0.1`: what is the multiplier at 5 %, 10 %, 50 % and 100 % of `t_total` -- and
# at 120 %, which the official ActivityNet run reaches because `t_total` is hard-coded to 5 epochs (S11)?
#
# <details><summary>Answer (open after predicting)</summary>
#
# 0.5 (half-way through warm-up), 0.976 (warm-up ends and the cosine over the *whole* run takes over, already past
# its start: the jump), 0.5, 0.0, and then it rises again: 0.095 at 120 %.
#
# </details>

# %%
from glscl_lite import exercises

for x in (0.05, 0.1, 0.5, 1.0, 1.2):
    print(f"{x:>4.0%} of t_total: {warmup_cosine(x):.3f}")


# %% [markdown]
# ### 2 · Fill in: the schedule
#
# `my_lr(x, warmup)`: linear from 0 to 1 over the warm-up fraction, then `0.5 (1 + cos(pi x))` -- over the whole
# run, not restarted after the warm-up.

# %%
def my_lr(x, warmup=0.1):
    # your code here (math is imported)
    raise NotImplementedError


exercises.check("lr", my_lr);

# %% [markdown]
# ### 3 · Experiment: a longer run
#
# Run this notebook again with more steps in a new run folder, e.g. `glscl-lite notebooks --out runs/nb-long --only
# 06 07 -p max_steps=120 -p run_name=smoke_run_120` (a minute on a laptop). Predict first: will validation R@1 beat
# chance (100 / number of validation videos) clearly, or only as much as the 16-step run? Which loss term falls
# first? The cell prints the command for this notebook's settings.

# %%
print("glscl-lite notebooks --out runs/nb-long --only 06 07 -p max_steps=120 -p run_name=smoke_run_120"
      + (f" -p preset={preset}" if preset else "") + f" -p data_dir={Path(data_dir).resolve()}")
