# %% [markdown]
# # 00 · Overview: what GLSCL is
#
# **GLSCL** ("Text-Video Retrieval with Global-Local Semantic Consistent Learning", Zhang et al., IEEE TIP 2025)
# ranks videos for a caption (and captions for a video). It keeps CLIP as the encoder for both sides and adds a
# small head that is cheap enough to score every (caption, video) pair of a large gallery.
#
# This series rebuilds it one concept per notebook on top of the `glscl_lite` package, which is the source of
# truth: the notebooks call it, plot it and check it. The reference for every formula is `spec/glscl.md`, which
# the code comments cite as "spec §N".
#
# | notebook | concept |
# |---|---|
# | 00 | this overview: the pipeline, the paper's numbers, your environment |
# | 01 | the MSR-VTT data format and the synthetic stand-in corpus |
# | 02 | the CLIP backbone and the temporal transformer |
# | 03 | the global interaction module (GIM) |
# | 04 | the local interaction module (LIM) |
# | 05 | the losses: InfoNCE, ICL, IDL |
# | 06 | training |
# | 07 | evaluation |
# | 08 | ablations with statistical power: the gallery (ICL/IDL, K, τ, sharing, related heads), probes, the ICL normaliser |
# | 09 | efficiency: FLOPs per component, cost against gallery size, Figure 1 redrawn |
# | 10 | related methods: GLCCL and EERCF on the same trunk |
# | 11 | search at scale: a FAISS index and two-stage retrieval |

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

# %%
import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.patches import FancyBboxPatch

import glscl_lite
from glscl_lite import nb

logging.getLogger().setLevel(logging.ERROR)  # open_clip warns on every random-weight model
pd.set_option("display.width", 160)
S = nb.series(globals())  # the shared parameters, resolved; writes a synthetic corpus if data_dir is empty
data_dir = S.data_dir
work_dir = Path(work_dir)
work_dir.mkdir(parents=True, exist_ok=True)
print("corpus:", data_dir.resolve())

# %% [markdown]
# ## The idea in one picture
#
# Text-video retrieval methods built on CLIP fall between two extremes:
#
# * **two towers** (CLIP4Clip's mean pooling): each caption and each video becomes one vector, a pair costs one
#   dot product. Fast, but a single vector per video blurs *which part* of the clip a caption talks about.
# * **cross-modal fusion** (X-Pool, X-CLIP, Prompt Switch): an attention block runs on every (caption, video)
#   pair. Accurate, but the block must run again for every pair; the paper credits such heads with hundreds of
#   GFLOPs (what exactly that counts is not stated -- notebook 09 shows it cannot be one pair).
#
# GLSCL keeps almost all of the work per item and adds two light interactions:
#
# * a **global interaction module (GIM)** that pools the frames with weights given by the caption. It is per pair,
#   but has *no parameters* and costs a handful of dot products (notebook 03, spec §2);
# * a **local interaction module (LIM)**: K learnable queries, shared by both modalities, read the words of a
#   caption or the frames of a video through one small decoder. The resulting K "concepts" depend on one item
#   only, so they are computed once and cached; a pair then costs K dot products (notebook 04, spec §3).
#
# Two auxiliary losses shape the concepts: the **inter-consistency loss (ICL)** pulls a caption's concepts
# towards its video's, the **intra-diversity loss (IDL)** keeps the K video concepts different from each other
# (notebook 05, spec §4). The diagram below colours each part by *when* it runs.

# %%
# The pipeline (spec §5.1).  Colours: blue = once per item (cacheable), orange = once per pair, red = training only.
ITEM, PAIR, LOSS, INPUT = "#cfe3f7", "#fbd9b0", "#f6c6c6", "#e8e8e8"


def box(ax, x, y, w, h, text, colour, fs=9, bold=False):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05,rounding_size=0.15",
                                fc=colour, ec="#444444", lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fs, weight="bold" if bold else "normal")


def arrow(ax, start, end, label=None, rad=0.0, lpos=0.5, loff=(0, 0.18)):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", lw=1.3, color="#333333", shrinkA=2, shrinkB=2,
                                connectionstyle=f"arc3,rad={rad}"))
    if label:
        x = start[0] + lpos * (end[0] - start[0]) + loff[0]
        y = start[1] + lpos * (end[1] - start[1]) + loff[1]
        ax.text(x, y, label, ha="center", va="center", fontsize=8, style="italic",
                bbox=dict(fc="white", ec="none", pad=0.5))


fig, ax = plt.subplots(figsize=(15, 7.5))
ax.set_xlim(0, 16.5); ax.set_ylim(0, 9.4); ax.axis("off")
box(ax, 1.2, 7.4, 2.1, 1.0, "caption\n'a red circle\nmoves left'", INPUT)
box(ax, 1.2, 1.8, 2.1, 1.0, "video\nT = 12 frames\n(1 fps, spec §6.2)", INPUT)
box(ax, 4.1, 7.4, 2.5, 1.2, "CLIP text encoder\ncausal + padding mask\n(spec §1.2)", ITEM)
box(ax, 4.1, 1.8, 2.5, 1.2, "CLIP image encoder\nCLS token of each frame\n(spec §1.3)", ITEM)
box(ax, 7.3, 1.8, 2.6, 1.2, "temporal transformer\n4 blocks copied from\nCLIP text (spec §1.4)", ITEM)
box(ax, 10.9, 7.6, 3.4, 1.5, "GIM  (0 parameters, per pair)\nw_v = softmax_v(<t, f_v> / τ)\n"
    "u = sum_v w_v f_v\nSim1 = cos(t, u)      (spec §2)", PAIR)
box(ax, 10.9, 3.9, 3.4, 2.3, "LIM  (per item, cacheable)\nK shared queries Q + one decoder\n"
    "words  -> text concepts  (K x D)\nframes -> video concepts (K x D)\n"
    "Sim2 = mean_k cos(t_k, v_k)\n(spec §3)", ITEM)
box(ax, 14.9, 5.8, 3.0, 1.0, "Sim = Sim1 + λ·Sim2\n(λ = 0.5, spec §5)", PAIR, bold=True)
box(ax, 14.8, 8.0, 2.6, 0.8, "InfoNCE, both ways\n(spec §4.1)", LOSS)
box(ax, 14.8, 3.0, 2.6, 0.9, "ICL: a caption's concepts\nmatch its video's (§4.3)", LOSS)
box(ax, 14.8, 1.5, 2.6, 0.9, "IDL: the K video concepts\nstay distinct (§4.2)", LOSS)
arrow(ax, (2.25, 7.4), (2.85, 7.4), "ids")
arrow(ax, (2.25, 1.8), (2.85, 1.8), "pixels")
arrow(ax, (5.35, 1.8), (6.0, 1.8), "T x D")
arrow(ax, (5.35, 7.7), (9.2, 7.7), "sentence t (EOT token)", lpos=0.45)
arrow(ax, (5.35, 7.0), (9.2, 4.6), "words W (L x D)", lpos=0.45, loff=(0.2, 0.25))
arrow(ax, (8.6, 2.2), (9.2, 7.0), "frames F (T x D)", lpos=0.8, loff=(-0.85, 0.0))
arrow(ax, (8.6, 1.9), (9.2, 3.3), "F", lpos=0.5, loff=(0.0, 0.0))
arrow(ax, (12.6, 7.3), (13.4, 6.1), "Sim1", loff=(0.1, 0.2))
arrow(ax, (12.6, 4.6), (13.4, 5.5), "Sim2", loff=(0.1, -0.1))
arrow(ax, (14.8, 6.3), (14.8, 7.6))
arrow(ax, (12.6, 3.4), (13.5, 3.0))
arrow(ax, (12.6, 2.9), (13.5, 1.6))
for colour, label in [(ITEM, "once per caption / video (cacheable)"), (PAIR, "once per (caption, video) pair"),
                      (LOSS, "training losses"), (INPUT, "inputs")]:
    ax.plot([], [], "s", ms=12, color=colour, mec="#444444", label=label)
ax.legend(loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, -0.04), fontsize=9)
ax.set_title("GLSCL: CLIP encoders -> temporal transformer -> GIM (per pair) + LIM (per item)", fontsize=12)
plt.show()

# %% [markdown]
# Two things to take from the picture:
#
# 1. Everything blue runs once per caption or per video and can be stored. At search time a new caption costs one
#    pass through the text encoder and the LIM; scoring it against a stored video is the GIM (T·D for the frame
#    weights, T² with the video's stored frame Gram matrix for the pooled norm) plus K·D for the local score. With
#    T = 12, K = 8, D = 512 that is about 10 K multiply-adds per pair (spec §5 writes the GIM as 2·T·D, about 16 K
#    in all), no network layer at all.
# 2. The two auxiliary losses only act on the LIM's concepts. The retrieval loss sees the combined score.
#
# ## The paper's numbers (Table I, MSR-VTT 1k-A)
#
# Table I of the paper, as transcribed in spec §10.1 from the README images. `*` rows use QB-Norm post-processing,
# which the released code has commented out (spec S16). FLOPs are for the *similarity head only*, CLIP excluded.

# %%
# Paper Table I (spec §10.1): t2v and v2t R@1/R@5/R@10 (%), MdR, MnR; head FLOPs in G.  nan = not reported.
nan = np.nan
TABLE_I = [
    # backbone, method,      t2v: R1   R5    R10   MdR  MnR    v2t: R1   R5    R10   MdR  MnR    FLOPs
    ("B/32", "CLIP4Clip",     44.5, 71.4, 81.6, 2.0, 15.3,  42.7, 70.9, 80.6, 2.0, 11.6,   0.5),
    ("B/32", "CenterCLIP",    44.2, 71.6, 82.1, 2.0, 15.1,  42.8, 71.7, 82.2, 2.0, 10.9,   1.5),
    ("B/32", "X-CLIP",        46.1, 73.0, 83.1, 2.0, 13.2,  46.8, 73.3, 84.0, 2.0,  9.1, 220.9),
    ("B/32", "TS2-Net",       47.0, 74.5, 83.8, 2.0, 13.0,  45.3, 74.1, 83.7, 2.0,  9.2,   6.1),
    ("B/32", "X-Pool",        46.9, 72.8, 82.2, 2.0, 14.3,  44.4, 73.3, 84.0, 2.0,  9.0, 275.0),
    ("B/32", "CLIP-VIP",      46.5, 72.1, 82.5, nan,  nan,   nan,  nan,  nan, nan,  nan,   0.5),
    ("B/32", "DiCoSA",        46.7, 75.0, 82.9, 2.0, 13.0,  44.1, 73.5, 82.7, 2.0,  9.8,   0.51),
    ("B/32", "DiCoSA*",       47.5, 74.7, 83.8, 2.0, 13.2,  46.7, 75.2, 84.3, 2.0,  8.9,   0.51),
    ("B/32", "Prompt Switch", 47.8, 73.9, 82.2, nan, 14.1,  46.0, 74.3, 84.8, nan,  8.5, 298.5),
    ("B/32", "GLSCL",         48.1, 73.9, 82.3, 2.0, 13.8,  47.1, 73.0, 83.2, 2.0, 10.3,   1.0),
    ("B/32", "GLSCL*",        50.0, 73.7, 82.8, 1.5, 14.2,  49.4, 74.5, 83.9, 2.0,  9.6,   1.0),
    ("B/16", "CLIP4Clip",     45.6, 71.2, 80.9, 2.0, 15.2,  43.2, 72.5, 80.7, 2.0, 10.9,   0.5),
    ("B/16", "CenterCLIP",    48.4, 73.8, 82.0, 2.0, 13.8,  47.7, 75.0, 83.3, 2.0, 10.2,   1.5),
    ("B/16", "X-CLIP",        49.3, 75.8, 84.8, 2.0, 12.2,  48.9, 76.8, 84.5, 2.0,  8.1, 220.9),
    ("B/16", "GLSCL",         49.5, 75.1, 83.9, 2.0, 12.6,  48.9, 76.3, 85.8, 2.0,  8.4,   1.0),
    ("B/16", "GLSCL*",        50.5, 75.2, 83.8, 1.0, 12.8,  49.2, 76.1, 86.2, 2.0,  8.5,   1.0),
]
metrics = ["R@1", "R@5", "R@10", "MdR", "MnR"]
columns = pd.MultiIndex.from_tuples([("", "backbone"), ("", "method")] + [("text->video", m) for m in metrics]
                                    + [("video->text", m) for m in metrics] + [("head", "GFLOPs")])
table1 = pd.DataFrame(TABLE_I, columns=columns)
table1.style.format(precision=1, na_rep="-").highlight_max(
    subset=[("text->video", "R@1"), ("video->text", "R@1")], color="#d6f5d6")

# %% [markdown]
# GLSCL has the best R@1 among the methods without post-processing, with a head of about 1 GFLOP. The abstract's
# "nearly 220 times faster" is X-CLIP's 220.9 G divided by GLSCL's 1.0 G.
#
# ## Figure 1 redrawn: accuracy against head cost
#
# The paper's Figure 1 plots text-to-video R@1 against the head GFLOPs of Table I on a log axis. The paper does not
# say what one count covers (one pair, a batch, a whole model); notebook 09 shows that per-pair costs of these
# designs are far below one GFLOP, so read the x-axis as "the paper's reported number", not "per pair". Below it is
# redrawn from the Table I values (spec §9 notes that a few points in the original figure disagree with the table by
# up to 1.7 points; the table is used here).

# %%
# Figure 1 (spec §9), from the Table I numbers: ViT-B/32, t2v R@1 against head GFLOPs (log x).
b32 = table1[table1[("", "backbone")] == "B/32"]
fig, ax = plt.subplots(figsize=(8, 5))
for _, row in b32.iterrows():
    name, r1, flops = row[("", "method")], row[("text->video", "R@1")], row[("head", "GFLOPs")]
    ours = name.startswith("GLSCL")
    post = name.endswith("*")
    ax.scatter(flops, r1, s=160 if ours else 70, marker="*" if ours else "o",
               facecolors="none" if post else ("crimson" if ours else "steelblue"),
               edgecolors="crimson" if ours else "steelblue", linewidths=1.5, zorder=3)
    ax.annotate(name, (flops, r1), textcoords="offset points", xytext=(7, -3 if not post else 5), fontsize=9)
ax.set_xscale("log")
ax.set_xlabel("similarity-head GFLOPs as reported in Table I (log scale; unit of counting not stated, see 09)")
ax.set_ylabel("MSR-VTT 1k-A text->video R@1 (%)")
ax.set_title("Paper Figure 1 redrawn from Table I (hollow = with QB-Norm)")
xclip = b32[b32[("", "method")] == "X-CLIP"][("head", "GFLOPs")].item()
glscl = b32[b32[("", "method")] == "GLSCL"][("head", "GFLOPs")].item()
ax.annotate("", xy=(glscl * 1.15, 47.75), xytext=(xclip / 1.15, 47.75),
            arrowprops=dict(arrowstyle="<->", color="gray"))
ax.text(np.sqrt(glscl * xclip), 47.9, f"{xclip:.1f} / {glscl:.1f} = {xclip / glscl:.0f}x fewer head FLOPs",
        ha="center", color="gray")
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# How the authors counted "1.0 G" is not in the available text. The official code imports `thop`, which does not
# see inside `nn.MultiheadAttention`, and measuring the official modules gives 0.80 GFLOPs for everything after
# CLIP for one pair (spec §9, §13). Notebook 09 measures the FLOPs itself. The gap between the
# extremes (0.5 G and 300 G) is what matters here, not the last digit.
#
# ## Your environment
#
# What this machine can run. The check never downloads anything: it asks the local cache whether the OpenAI
# weights are there.

# %%
from glscl_lite.model import backbone as bb  # weight-cache helpers (no download)

anno_json = data_dir / "MSRVTT_data.json"
generator = {}
if anno_json.exists() and anno_json.stat().st_size < 50e6:  # the real MSR-VTT json is ~100 MB: skip parsing
    generator = json.loads(anno_json.read_text()).get("info", {}).get("generator") or {}
env = {
    "python": platform.python_version(),
    "torch": torch.__version__,
    "open_clip": __import__("open_clip").__version__,
    "glscl_lite": getattr(glscl_lite, "__version__", "?"),
    "GPU": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)",
    "CPU threads used by torch": torch.get_num_threads(),
    "corpus": str(data_dir.resolve()),
    "corpus kind": (f"synthetic ({generator.get('n_videos')} videos, seed {generator.get('seed')})"
                    if generator else "MSR-VTT annotation folder"),
    "frame cache of this config present": (Path(S.config().frame_cache or "-") / "index.json").exists(),
    "OpenAI ViT-B-32 weights in local cache": bb.weights_cached("ViT-B-32-quickgelu", "openai"),
    "model hub reachable": bb.hub_reachable(),
    "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "(unset)"),
}
pd.Series(env, name="value").to_frame()

# %% [markdown]
# Without a GPU and without the OpenAI weights the series still runs end to end: `smoke=True` uses the project's own
# stand-in CLIP (`glscl-synthetic-hybrid`, `pretrained="synthetic"`: a 4.1 M-parameter CLIP on 64-px frames,
# pretrained by `glscl-lite pretrain` on frames of the synthetic world and shipped in the package,
# `glscl_lite.model.standin`)
# under a GLSCL head, on the synthetic corpus. The numbers it produces show the mechanics, not the paper's accuracy.
#
# ## Presets: the paper's settings and the smoke settings
#
# All hyperparameters live in one dataclass, `glscl_lite.config.Config`, whose keys keep the official flag names.
# Presets are small JSON files listing what they change. `paper` has the values of the official MSR-VTT training
# script (β = 0.02); `paper-readme` differs only in the README's β = 0.005 (spec S9: which one produced Table I
# is unknown); `smoke` is the small CPU setting (the stand-in CLIP, trained at `lr · coef_lr` with the paper's
# `coef_lr = 1e-3`; the old from-scratch setting is `--set base_encoder=glscl-tiny --set pretrained=none
# --set coef_lr=1`).

# %%
from glscl_lite.config import Config, list_presets, load_preset

default = Config().to_dict()
presets = {name: load_preset(name).to_dict() for name in list_presets()}
changed = sorted({k for p in presets.values() for k, v in p.items() if v != default[k]})
table = pd.DataFrame({"default": {k: default[k] for k in changed},
                      **{name: {k: (p[k] if p[k] != default[k] else "") for k in changed}
                         for name, p in presets.items()}})
table

# %% [markdown]
# The defaults already *are* the official MSR-VTT values, except β, the paths and the run-time options: every
# quirk of the official code is the default, each with a switch (the package README lists them).
#
# ## Pointing the series at real MSR-VTT
#
# On a machine with internet access and a GPU:
#
# ```bash
# # 1. data: CLIP4Clip's annotation zip + Frozen-in-Time's video zip (~6.5 GB), resumable, then checked
# glscl-lite data download --dest data/msrvtt
# glscl-lite data check --anno data/msrvtt/msrvtt_data --videos data/msrvtt/MSRVTT/videos/all
#
# # 2. OpenAI CLIP weights, once (open_clip caches them; use the QuickGELU name, notebook 02)
# python -c "import open_clip; open_clip.create_model('ViT-B-32-quickgelu', pretrained='openai')"
#
# # 3. decode every video once into a 224-px frame cache (the GPU is otherwise starved by decoding)
# glscl-lite cache frames --anno data/msrvtt/msrvtt_data --videos data/msrvtt/MSRVTT/videos/all \
#                         --out data/msrvtt/frames-224 --size 224
#
# # 4. the notebooks with real data: every notebook takes the same parameters (table below);
# #    06 trains the paper run and 07 evaluates it, then 02-04 inspect it (same -p list, --only 02 03 04)
# glscl-lite notebooks --out runs/notebooks-paper --only 06 07 -p smoke=False -p preset=paper \
#     -p data_dir=data/msrvtt/msrvtt_data -p video_dir=data/msrvtt/MSRVTT/videos/all \
#     -p frame_cache=data/msrvtt/frames-224
# ```
#
# The `paper` preset uses `base_encoder="ViT-B-32-quickgelu"` with `pretrained="openai"`; offline, pass the weights as
# a file (`-p pretrained=$HOME/.cache/clip/ViT-B-32.pt`, OpenAI's format) or pre-fill the Hugging Face cache and set
# `HF_HUB_OFFLINE=1` (both tested in `tests/test_offline_weights.py`).
#
# ### The series' parameters
#
# Every notebook's `parameters` cell starts with the same block, so one `-p NAME=VALUE` reaches the whole series
# (`glscl-lite notebooks -p ...`, or papermill per notebook). A notebook lists its own parameters after it, under
# `# this notebook`. The block, its defaults and meanings come from one place, `glscl_lite.nb.SERIES_PARAMETERS`:

# %%
pd.DataFrame([{"parameter": k, "default": repr(d), "meaning": m}
              for k, (d, m) in nb.SERIES_PARAMETERS.items()]).set_index("parameter")

# %% [markdown]
# How they combine (`nb.series(globals())` resolves them in each notebook's setup cell):
#
# * **no preset** (`preset=None`): the small CPU config (the `smoke` preset: stand-in CLIP and GLSCL head);
#   `smoke=False` trains it longer on a 1,000-video synthetic corpus (`tiny_run`);
# * **a preset** (`paper`, `paper-readme`, `glccl`, ...): that config pointed at `data_dir`; `video_dir`,
#   `frame_cache`, `pretrained` and `device` override it; the run folder is `<work_dir>/<preset>_run`
#   unless `run_dir` names one;
# * notebooks that only *look* at a model (02, 05, 09) build it with the config's CLIP weights: the shipped stand-in
#   in smoke mode, the preset's with a preset, random ViT-B/32 weights with `smoke=False` and no preset -- unless
#   `pretrained` says otherwise -- so they never need the network;
# * 03, 04, 07 and 11 look at a *trained* model: `run_dir` when given, else the preset's finished run, else (no
#   preset) the trained GLSCL shipped with the package (`glscl_lite.model.shipped`: the stand-in CLIP plus a head
#   trained on a 10,000-video synthetic corpus), shown on a held-out corpus whose scenes its head never saw.

# %%
out = subprocess.run([sys.executable, "-m", "glscl_lite", "--help"], capture_output=True, text=True)
assert out.returncode == 0 and all(cmd in out.stdout for cmd in ("synth", "train", "eval", "profile", "ablate"))
print(out.stdout)
