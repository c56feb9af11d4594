# %% [markdown]
# # 08 · Ablations: ICL, IDL, number of queries, sharing
#
# GLSCL adds three things to a CLIP retrieval model: a parameter-free global interaction (GIM), a
# local interaction (LIM) of **K learnable queries** shared by both modalities, and two extra losses,
# **ICL** (inter-consistency: matched text and video concepts should agree) and **IDL**
# (intra-diversity: the K video concepts should differ).  The paper ablates each of them
# (spec/glscl.md §10.3; its numbers are not available to us).  This notebook
#
# 1. defines the ablation **grids** (`glscl_lite.ablation`),
# 2. runs a grid: every *(setting, seed)* cell is one ordinary training run,
# 3. summarises the results as **mean ± std over seeds** and plots them (`glscl_lite.plots`),
# 4. says what such numbers can and cannot tell, and points at two quirks of the official code that
#    an ablation of ICL/IDL runs straight into (the loss-name swap S2 and the ICL normaliser S3).
#
# The same thing from a shell — what produced `docs/results/` (after `glscl-lite synth --out data/ablation --videos
# 1000`):
# `glscl-lite ablate --config docs/results/ablation_config.json --grid full --seeds 0 1 2 --pretrain-steps 400
# --out runs/ablation-gallery --feature-cache runs/ablation-gallery/features --export docs/results`.

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
results_csv = None   # a finished grid's CSV to show; None: smoke -> the committed gallery, else the grid run here
gallery_config = "../docs/results/ablation_config.json"  # base config of the committed gallery (no preset)
seeds = [0, 1, 2]    # seeds per setting (smoke: one)
grid = "full"        # grid to run when smoke is False
pretrain_steps = 400  # end-to-end steps that stand in for pretrained CLIP (no preset; a preset keeps its weights)

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from glscl_lite import ablation, plots
from glscl_lite.config import load_config
from glscl_lite import nb

pd.set_option("display.width", 160)
if smoke:  # tiny tensors: one thread is as fast, and far faster when other jobs share the CPU
    torch.set_num_threads(1)
S = nb.series(globals())  # the shared parameters, resolved; writes a synthetic corpus if data_dir is empty
data_dir = S.data_dir
work_dir = Path(work_dir)

# %% [markdown]
# ## 1. Grids
#
# A grid is a list of named settings, each a dict of config overrides.  The built-in ones:
#
# | grid | settings | config keys |
# |---|---|---|
# | `icl_idl` | ICL on/off × IDL on/off | `icl`, `idl` |
# | `queries` | K ∈ {1, 2, 4, 8, 16} | `query_number` |
# | `sharing` | shared/unshared queries × shared/unshared decoder | `query_share`, `cross_att_share` |
# | `icl_normalizer` | official (÷K) / batch (÷B) | `icl_normalizer` |
# | `full` | the union | |
#
# Settings are compared by the config they produce: whichever grid lists it, the setting equal to
# the base config (ICL and IDL on, K = 8, both shared, official normaliser) is called `default` and
# runs once.  A JSON file `{"name": {"key": value, ...}, ...}` is a grid too; an unknown key fails
# before anything runs, with the list of valid keys.

# %%
if smoke or preset:   # the tiny smoke config, or the chosen preset pointed at data_dir
    base = S.config()
else:                 # the committed gallery's base config, pointed at data_dir
    base = load_config(gallery_config).replace(anno_path=str(data_dir), video_path=str(S.video_file("x").parent),
                                               frame_cache=str(S.frame_cache or data_dir / "frames-64"))
    base = base.replace(**({"pretrained": S.weights()} if pretrained is not None else {}),
                        **({"device": device} if device else {}))
print("base config:", preset or ("smoke" if smoke else gallery_config))
full = ablation.expand_grid("full", base)
pd.DataFrame({"setting": [s.name for s in full],
              "changes from the base config": [s.changed or "(base config)" for s in full]})

# %%
try:
    ablation.expand_grid({"typo": {"query_numbr": 4}}, base)
except ablation.GridError as exc:
    print(str(exc)[:160], "...")

# %% [markdown]
# ## 2. Run a grid
#
# Each cell *(setting, seed)* is one `train(...)` run into `out/runs/<setting>__seed<s>/`: training,
# model selection on the validation videos carved out of the training list (never the test split),
# and the test evaluation of the best checkpoint.  After each finished cell `out/results.csv` (one
# row per setting × seed × split × direction) is rewritten; running the same call again skips
# finished cells and resumes unfinished ones.
#
# **Feature-cache mode** makes a grid affordable on a CPU: CLIP is frozen (`freeze_backbone=True`),
# its outputs are computed once, and a cell only trains the temporal transformer and the LIM.  Every
# setting of these grids leaves CLIP alone, so they all share the cache.  A randomly initialised CLIP
# depends on the seed, so the cache then holds one folder per seed.
#
# A frozen *random* CLIP is a problem, though: its features carry so little that the head stays near
# chance, and an ablation of noise shows noise.  The full grid (`smoke=False`, and `docs/results/`)
# therefore first trains the tiny model end to end for `pretrain_steps` steps on the training split
# and freezes *that* CLIP (`pretrain_steps=`, a stand-in for the OpenAI weights).  The smoke run
# below skips this: it only shows the machinery.

# %%
if smoke:
    run = dict(grid="icl_idl", seeds=[0], overrides=["epochs=1", "max_steps=6", "eval_every=0", "log_every=1"],
               pretrain_steps=None)
    out = work_dir / "ablation-smoke"
else:   # a preset brings its own weights: no stand-in pretraining
    run = dict(grid=grid, seeds=seeds, overrides=[], pretrain_steps=None if preset else pretrain_steps)
    out = work_dir / f"ablation-{preset or 'tiny'}"
out = Path(run_dir) if run_dir else out   # run_dir: the grid's own output folder
print("grid output:", out)

# what section 3 shows: results_csv when given; in smoke mode the committed gallery (the smoke grid is noise)
shown = Path(results_csv) if results_csv else (Path("../docs/results/ablation_results.csv") if smoke else None)
if not smoke and shown is not None and shown.exists():
    print(f"{shown} given: showing it instead of running the {grid} grid")
    df_run = None
else:
    t0 = time.time()
    df_run = ablation.run_ablation(base, run["overrides"], grid=run["grid"], seeds=run["seeds"], out=out,
                                   feature_cache=out / "features", pretrain_steps=run["pretrain_steps"],
                                   progress=False)
    print(f"{run['grid']} x {len(run['seeds'])} seed(s): {df_run['setting'].nunique()} settings, "
          f"{len(df_run)} rows in {time.time() - t0:.1f} s -> {out / 'results.csv'}")
    n_settings = len(ablation.expand_grid(run["grid"], base))
    assert len(df_run) == n_settings * len(run["seeds"]) * 2 * 2  # setting x seed x (val, test) x (t2v, v2t)
    assert df_run["R1"].between(0, 100).all()
    display(df_run.head(8))

# %% [markdown]
# ## 3. Results: mean ± std over seeds
#
# In smoke mode the rest of the notebook shows the committed full grid (`docs/results/`) when present, because a
# six-step grid is noise; with `smoke=False` it shows the grid just run (in `run_dir`, or
# `<work_dir>/ablation-<preset or tiny>`), unless `results_csv` names a finished grid to show instead.  `summarize`
# gives mean and sample
# standard deviation over seeds per setting, split and direction; chance level for R@1 is
# 100 / number of test videos.

# %%
if shown is not None and shown.exists():
    df = pd.read_csv(shown)
    source = f"{shown} (see docs/results/README.md for how it was made)"
    metrics_path = shown.with_name("ablation_train_metrics.csv")
    metrics = pd.read_csv(metrics_path) if metrics_path.exists() else ablation.load_train_metrics(out)
else:
    df, source = df_run, f"the grid just run in {out}"
    metrics = ablation.load_train_metrics(out)
n_test = int(df.loc[df["split"] == "test", "n_videos"].iloc[0])
chance = 100.0 / n_test
summary = ablation.summarize(df)
display(Markdown(f"Results from {source}: {df['setting'].nunique()} settings x {df['seed'].nunique()} seed(s), "
                 f"{n_test} test videos, chance R@1 = {chance:.1f} %."))
ablation.format_summary(summary, split="test", direction="t2v")

# %%
fig = plots.plot_r1_per_setting(df, chance=chance)
plt.show()

# %%
k_rows = ablation.sweep(df, "query_number") if "query_number" in df.columns else df.iloc[:0]
if not k_rows.empty and k_rows["query_number"].nunique() > 1:
    fig = plots.plot_r1_vs_k(k_rows, chance=chance)
    plt.show()
else:
    print("this grid does not sweep K (query_number)")

# %% [markdown]
# Validation vs test: model selection used the validation split, so its numbers are optimistic;
# the test split was only evaluated once per cell, with the selected checkpoint.

# %%
ablation.format_summary(summary, split="val", direction="t2v", metrics=("R1", "R5"))

# %% [markdown]
# ### Loss terms
#
# `plot_loss_terms` takes any DataFrame of `metrics.jsonl` training records (the training notebook
# uses it for one run).  Here: one line per setting, mean over seeds.  The terms are shown as they
# enter the total loss: `idl` already multiplied by α, `icl` = MSE + β·R.  A setting with a loss
# switched off has no line in that panel.

# %%
fig = plots.plot_loss_terms(metrics)
plt.show()

# %% [markdown]
# ## 4. What these numbers do and do not show
#
# * **Synthetic data, tiny model.** The corpus is generated (shapes, motions, templated captions)
#   and the model is the tiny open_clip config at 64 px.  The gallery's CLIP is *not* OpenAI's: it
#   was trained end to end on the synthetic training split for a few hundred steps on a CPU, then
#   frozen.  The numbers say how this re-implementation behaves on this data; they are not the
#   paper's Table I and do not confirm or refute its ablations.
# * **Chance level.** With N test videos, random ranking gives R@1 = 100/N %, R@5 = 500/N %,
#   MdR ≈ N/2.  Read every bar against the dotted line.
# * **Seeds.** Every cell re-draws data order, dropout and head initialisation (and, with a random
#   CLIP, CLIP itself).  Field notes §4: reproductions of CLIP4Clip-family models differ by 0.5–3
#   R@1 points between seeds and GPUs, and maintainers attribute paper gaps to exactly that.  A
#   difference smaller than about one standard deviation over seeds is not a finding; with 3 seeds
#   the std itself is rough (its own relative error is about 50 %).
# * **Short training.** Cells train for a fraction of an epoch to a couple of epochs; a loss that
#   only pays off late (the paper's 5 epochs on 9k videos) can look useless here.
# * **One grid, one axis at a time.** Each setting changes one thing from the base config;
#   interactions (e.g. K with the ICL target, below) are not separated.

# %% [markdown]
# ## 5. Two quirks of the official code that an ICL/IDL ablation meets
#
# **S2 — the loss names are swapped.**  In the official `modeling.py` the variable
# `Intra_Consistency` holds what the paper calls **ICL** (cross-modal consistency between matched
# text and video concepts) and `Inter_Diversity` holds **IDL** (diversity among one item's
# concepts).  `glscl_lite` names keys and logged terms after the paper (`icl`, `idl`), so "turn off
# ICL" here means turning off the code's `Intra_Consistency`.  IDL is applied to the *video*
# concepts only in the code, although the paper speaks of visual and textual queries
# (`idl_modalities="both"` switches the text side on).
#
# **S3 — the ICL normaliser.**  ICL's second term is `β · Σ_k (c_k − 0.75)²` with
# `c_k = (1/K) Σ_b ⟨v̂_bk, t̂_bk⟩`: the sum over the **batch** is divided by **K**, not by **B**.  The
# 0.75 target therefore means a mean matched-concept cosine of `0.75 · K / B`, which moves with the
# batch size, the number of GPUs and K itself.  `icl_normalizer="batch"` divides by B (mean cosine
# 0.75 as the text suggests); the `icl_normalizer` grid compares the two.  Note the confound for
# the K sweep: under the official normaliser changing K also changes what ICL asks for.

# %%
B = base.batch_size
targets = pd.DataFrame({"K": [1, 2, 4, 8, 16]})
for b in sorted({B, load_config(gallery_config).batch_size, 128}):  # this run, the gallery, the paper
    targets[f"official, B={b}"] = (0.75 * targets["K"] / b).round(3)
targets["batch normaliser"] = 0.75
display(Markdown("Mean matched-concept cosine that ICL's 0.75 target asks for:"))
targets

# %% [markdown]
# ## Capstone: design one ablation on the diagnostic probes
#
# The grids above measure retrieval recall, which mixes every skill. The synthetic corpus also holds **diagnostic
# probes** (`glscl-lite synth` writes `DATA/probes/{moment,order,binding}.csv`), each isolating one: *moment*
# (captions true of a short part of the clip), *order* (the same events, reversed), *binding* (the same objects with
# their attributes swapped). `glscl-lite eval --run RUN --probes [--json FILE]` scores a run on them (pairwise
# accuracy, chance 50 %; moment recall beside its oracle, the best the captions allow).
#
# Write a one-page, pre-registered ablation:
#
# 1. **Hypothesis tied to a mechanism.** E.g. "the GIM's caption-conditioned pooling helps *moment* captions, so τ →
#    ∞ (mean pooling, `--set temp=1000`) loses on `moment` but not on `full`"; "every head here pools frames without
#    order, so *order* stays at 50 % whatever ICL does"; "IDL's diverse concepts help *binding*".
# 2. **One switch**, everything else as the base run: `temp`, `icl`, `idl`, `icl_normalizer`, `query_number`,
#    `lim_mask_padding`, ...
# 3. **A prediction written down before running**: direction and rough size on each probe.
# 4. **Runs**: at least 3 seeds per arm on one feature cache, e.g. a grid file `{"base": {}, "mean_pool": {"temp":
#    1000}}` with `glscl-lite ablate --config BASE --grid my_grid.json --seeds 0 1 2 --out runs/capstone`, then
#    `glscl-lite eval --run runs/capstone/runs/<setting>__seed<s> --probes --json ...` for each cell.
# 5. **Decision rule**: the paired difference (same seed, same probe items) with a 95 % confidence interval --
#    bootstrap over probe pairs within a seed, and look across seeds. An interval that contains 0 means "no
#    evidence", not "no effect". Put the number beside chance and beside the oracle.
# 6. **Interpretation**, one paragraph: did the mechanism show? What else explains it -- seed noise, a ceiling at
#    the oracle, a CLIP that never learnt the attribute in the first place?
#
# The cell below is the analysis skeleton, on the numbers this notebook has: the difference in test t2v R@1 between
# two settings of the grid shown above, paired by seed, with a bootstrap CI
# (`glscl_lite.exercises.paired_bootstrap_ci`). Swap in your two arms, and for the probes the per-item outcomes from
# `eval --probes --json`. With one seed there is no interval at all: the first finding of any ablation.

# %%
import numpy as np

from glscl_lite import exercises

test_t2v = df[(df["split"] == "test") & (df["direction"] == "t2v")]
arms = sorted(test_t2v["setting"].unique())
arm_a = "default" if "default" in arms else arms[0]          # change me: the base arm
arm_b = next(s for s in arms if s != arm_a)                     # change me: your switch
a = test_t2v[test_t2v["setting"] == arm_a].sort_values("seed")["R1"].to_numpy()
b = test_t2v[test_t2v["setting"] == arm_b].sort_values("seed")["R1"].to_numpy()
print(f"{arm_b} - {arm_a}: test t2v R@1 difference per seed {np.round(b - a, 2).tolist()} (chance {chance:.1f} %)")
if len(a) >= 2:
    ci = exercises.paired_bootstrap_ci(a, b)
    print(f"mean {ci['mean_diff']:+.2f} points, 95 % bootstrap CI [{ci['lo']:+.2f}, {ci['hi']:+.2f}] over {ci['n']} seeds"
          + ("  -> contains 0: no evidence either way" if ci['lo'] <= 0 <= ci['hi'] else ""))
else:
    print("one seed: no interval -- run more seeds before reading anything into the difference")
