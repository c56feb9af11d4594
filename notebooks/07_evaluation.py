# %% [markdown]
# # 07 · Evaluation
#
# The run of notebook 06, evaluated the way the paper reports results (spec §8): every test caption ranks all test
# videos (text → video) and every video ranks all captions (video → text); R@1, R@5, R@10 are the percentages of
# queries whose right answer is in the top 1, 5, 10, MdR and MnR the median and mean rank (1 = first). Then:
#
# * the similarity matrix and its two parts,
# * what the model retrieves for a few captions, and where it fails,
# * DSL post-processing, reported beside the raw numbers and never instead of them,
# * how the official metric treats ties.
#
# The run is loaded through `nb.ensure_run` with the same settings as notebook 06 (`nb.run_settings`), so it is
# reused, not retrained — unless `max_steps` differs: then the run in that folder is extended.
# In smoke mode the test set has 8 videos and the model is tiny and barely trained: the numbers illustrate the
# procedure, not GLSCL's accuracy.

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
top_k = 5           # videos shown per query in the qualitative results

# %%
import json
import logging
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.testing import assert_close

from glscl_lite import nb
from glscl_lite.data import msrvtt
from glscl_lite.data.splits import EvalSet, build_splits, video_source
from glscl_lite.evaluate import encode_texts, encode_videos, evaluate_model, load_run_model
from glscl_lite.metrics import METRIC_KEYS, ranks_from_scores, retrieval_metrics

logging.getLogger().setLevel(logging.ERROR)
if smoke:  # tiny tensors: one thread is as fast, and far faster when other jobs share the CPU
    torch.set_num_threads(1)
S = nb.series(globals())  # the shared parameters, resolved; writes a synthetic corpus if data_dir is empty
data_dir = S.data_dir

cfg, run_dir = S.run(run_name, max_steps)  # the run 06 trains and 07 evaluates

results = nb.ensure_run(cfg, run_dir, progress=not smoke)   # loads the finished run of notebook 06
model, run_cfg, device = load_run_model(run_dir, "best", device=S.device)
print(f"{run_dir}: best checkpoint from step {results['best_step']} of {results['steps']}, on {device}")

# %% [markdown]
# ## Metrics, both ways
#
# `evaluate_model` encodes each caption and each video once (including the LIM concepts), scores all pairs in
# blocks, and ranks. It also reports the two phases' times, like the official log line `time profile: feat ...
# match ...`. The result must equal the test numbers the trainer stored for the same checkpoint.

# %%
splits = build_splits(cfg)
test = splits.test
source = video_source(cfg, model.backbone.image_size)
res = evaluate_model(model, test, cfg, device, source=source, dsl=True, return_similarity=True)
sim = res["similarity"]
for direction in ("t2v", "v2t"):
    assert res[direction] == results["test"][direction]
print(f"{res['n_texts']} captions x {res['n_videos']} videos; encoding {res['seconds_feat']:.2f} s, "
      f"scoring {res['seconds_match']:.4f} s; same numbers as results.json")

# %%
n = res["n_videos"]
chance = {"R1": 100 / n, "R5": 100 * min(5, n) / n, "R10": 100 * min(10, n) / n, "MdR": (n + 1) / 2, "MnR": (n + 1) / 2}
table = pd.DataFrame({
    "text -> video": res["t2v"], "video -> text": res["v2t"],
    "random ranking (expected)": chance,
    "text -> video, DSL (post-processing)": res["t2v_dsl"], "video -> text, DSL (post-processing)": res["v2t_dsl"],
}).T[list(METRIC_KEYS)]
table.round(2)

# %% [markdown]
# **DSL** (dual softmax) multiplies each caption-to-video score by a softmax *over all test captions* for that
# video, which down-weights videos that score high for every caption. It needs every test query at once, so a
# search engine answering one query at a time cannot use it; several papers report it without saying so (field
# notes §4). GLSCL's released code has no DSL at all, and its paper's `*` rows use QB-Norm instead. Here DSL is
# off by default and, when asked for, always printed next to the raw numbers.
#
# ## The similarity matrix and its two parts
#
# The score is `Sim1 + λ·Sim2` (λ = 0.5). `encode_texts` and `encode_videos` give the per-item sides, and the head's
# `score_parts` splits the score into the global and local parts. The ground truth is on the diagonal:

# %%
with torch.no_grad():
    text_side = encode_texts(model, test.captions, cfg, device)
    video_side = encode_videos(model, test.video_ids, cfg, device, source=source)
    parts = model.head.score_parts(text_side, video_side)
assert_close(parts["sim"].cpu(), sim, atol=1e-5, rtol=1e-5)
show = min(len(test.captions), 40)  # the first rows/columns only, for a large test set
fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
for ax, key, title in zip(axes, ("sim1", "sim2", "sim"), ("Sim1: global (GIM)", "Sim2: local (LIM)",
                                                           f"Sim1 + {cfg.loss2_weight}·Sim2")):
    m = parts[key][:show, :show].cpu().numpy()
    im = ax.imshow(m, cmap="viridis")
    gt = np.asarray(test.text_video[:show])
    ax.scatter(gt[gt < show], np.arange(show)[gt < show], marker="s", s=60, facecolors="none", edgecolors="red")
    ax.set_title(title); ax.set_xlabel("video"); ax.set_ylabel("caption")
    fig.colorbar(im, ax=ax, shrink=0.8)
plt.suptitle(f"test similarities (red squares: ground truth) -- {nb.run_label(run_dir)}", y=1.0)
plt.show()

# %% [markdown]
# ## Every caption of the test videos
#
# The 1k-A protocol uses one caption per test video. MSR-VTT has 20 per video, and they differ a lot (notebook 01):
# some describe the whole clip, some a single object or moment. Ranking *all* captions of the test videos against
# the same videos gives 20 times more queries, and the package's metrics handle several captions per video (for
# video → text, a video's rank is that of its best-ranked caption).

# %%
anno = msrvtt.load_annotations(data_dir)
all_caps = [c for v in test.video_ids if v in anno for c in anno.captions(v)]
multi = EvalSet("test, all captions", all_caps, list(test.video_ids))
res_multi = evaluate_model(model, multi, cfg, device, source=source, return_similarity=True)
print(f"{res_multi['n_texts']} captions x {res_multi['n_videos']} videos")
display(pd.DataFrame({"text -> video": res_multi["t2v"], "video -> text": res_multi["v2t"]}).T.round(2))
ranks = ranks_from_scores(res_multi["similarity"], multi.text_video, ties="optimistic")  # one rank per caption
kinds = {v: (anno.videos.get(v, {}).get("synthetic") or {}).get("caption_kinds") for v in test.video_ids}
if all(kinds.values()):
    kind_of = [kinds[c.video_id][[x.caption for x in anno.captions(c.video_id)].index(c.caption)] for c in all_caps]
    by_kind = pd.DataFrame({"kind": kind_of, "rank": ranks + 1}).groupby("kind")["rank"]
    display(by_kind.agg(captions="size", mean_rank="mean", R1=lambda r: 100 * (r == 1).mean()).round(2))


# %% [markdown]
# For the synthetic corpus the kind of every caption is known, so the table splits the ranks by kind. Captions about
# one object or one moment, and captions about the order of events, are the cases that the text-conditioned pooling
# and the local concepts are meant for; compare their ranks with the whole-clip captions. (With the barely trained
# smoke model the differences between kinds are mostly noise.)
#
# ## What the model retrieves
#
# For a few test captions, the top videos by score (thumbnails from the frame source of the run), with the right
# video framed in green:

# %%
def thumbs(video_id, n=3):
    frames, mask = source.get(video_id)
    real = np.flatnonzero(np.asarray(mask))
    pick = real[np.linspace(0, len(real) - 1, n).astype(int)]
    return np.concatenate([np.asarray(frames[i]) for i in pick], axis=1)


k = min(top_k, len(test.video_ids))
queries = list(range(min(3, len(test.captions))))
fig, axes = plt.subplots(len(queries), k, figsize=(3.2 * k, 1.45 * len(queries) + 0.3), squeeze=False)
for row, qi in enumerate(queries):
    scores = sim[qi]
    order = torch.argsort(scores, descending=True)[:k].tolist()
    gt = test.text_video[qi]
    for col, vi in enumerate(order):
        ax = axes[row, col]
        ax.imshow(thumbs(test.video_ids[vi])); ax.set_xticks([]); ax.set_yticks([])
        for s in ax.spines.values():
            s.set_color("limegreen" if vi == gt else "lightgray"); s.set_linewidth(4 if vi == gt else 1)
        ax.set_title(f"#{col + 1} {test.video_ids[vi]}  {scores[vi]:.3f}", fontsize=8)
    gt_rank = int((scores > scores[gt]).sum()) + 1
    axes[row, 0].set_ylabel(textwrap.fill(test.captions[qi].caption, 28) + f"\n(right video: rank {gt_rank})",
                            fontsize=8, rotation=0, ha="right", va="center")
plt.tight_layout(); plt.show()
fig.suptitle(nb.run_label(run_dir), fontsize=9)

# %% [markdown]
# ## Failure cases
#
# The captions (from all captions of the test videos) whose right video ranks worst, with the video the model put
# first. The synthetic corpus records hard-negative pairs (near copies that differ in one attribute, notebook 01);
# when the top video is the right video's partner, the table says which attribute the model missed.

# %%
info = json.loads((data_dir / msrvtt.ANNOTATION_JSON).read_text()).get("info", {}) if (data_dir / msrvtt.ANNOTATION_JSON).stat().st_size < 50e6 else {}

partner = {}
for a, b, attribute in info.get("hard_negative_pairs", []):
    partner[(a, b)] = partner[(b, a)] = attribute
msim = res_multi["similarity"]
worst = np.argsort(-ranks, kind="stable")[:5]
rows = []
for i in worst:
    c = multi.captions[i]
    top = int(torch.argmax(msim[i]))
    top_id = multi.video_ids[top]
    rows.append({"caption": c.caption, "right video": c.video_id, "its rank": int(ranks[i]) + 1,
                 "ranked first": top_id, "score gap": float(msim[i, top] - msim[i, multi.text_video[i]]),
                 "hard negative?": f"yes, differs in {partner[(c.video_id, top_id)]}" if (c.video_id, top_id) in partner
                 else "-"})
failures = pd.DataFrame(rows)
display(failures)
hard = [(a, b, attr) for (a, b), attr in partner.items() if a in multi.video_ids and b in multi.video_ids and a < b]
print("hard-negative pairs inside this test gallery:", hard or "none")

# %%
worst_caption = failures.iloc[0]
fig, axes = plt.subplots(2, 1, figsize=(10, 3.2))
for ax, vid, label in [(axes[0], worst_caption["right video"], "right video"),
                       (axes[1], worst_caption["ranked first"], "ranked first")]:
    ax.imshow(thumbs(vid, n=6)); ax.set_xticks([]); ax.set_yticks([])
    ax.set_ylabel(f"{label}\n{vid}", rotation=0, ha="right", va="center", fontsize=9)
fig.suptitle(textwrap.fill(f"'{worst_caption['caption']}' -- {nb.run_label(run_dir)}", 100), fontsize=10)
plt.show()


# %% [markdown]
# ## The official tie semantics (spec §8)
#
# The official `compute_metrics` (inherited from CLIP4Clip) sorts each row and finds the rank of the ground-truth
# score by *value*: `np.where(sorted_row - gt_score == 0)`. When the ground truth ties with other items, every tied
# position matches, so that query contributes several ranks, and the denominator grows with it. The package
# reproduces this by default (`ties="official"`) and offers `"optimistic"` (rank = number of strictly higher
# scores) and `"pessimistic"`. A teaching copy of the official lines, checked against the package, on a 3 × 3
# example with ties:

# %%
def official_ranks(x):
    # the official compute_metrics: sort each row (descending), find the GT value by equality
    sx = np.sort(-x, axis=1)
    d = np.diag(-x)[:, None]
    return np.where(sx - d == 0)[1]


tied = np.array([[0.9, 0.9, 0.1],    # ground truth ties with video 1
                 [0.2, 0.5, 0.5],    # ground truth ties with video 2
                 [0.3, 0.3, 0.3]], dtype=np.float32)  # all equal
print("official ranks:", official_ranks(tied), "(7 entries for 3 queries)")
assert (ranks_from_scores(tied, np.arange(3), ties="official") == official_ranks(tied)).all()
collapsed = np.full((8, 8), 0.5, dtype=np.float32)   # a model that gives every pair the same score
pd.DataFrame({(name, ties): retrieval_metrics(m, ties=ties) for name, m in [("3x3 example", tied), ("8x8 constant", collapsed)]
              for ties in ("official", "optimistic", "pessimistic")}).T[list(METRIC_KEYS)].round(2)

# %% [markdown]
# The constant matrix shows why the choice matters: with optimistic ties a collapsed model scores R@1 = 100 %; the
# official rule gives it 1/N, like random ranking. Ties are rare with fp32 scores of a trained model, but they do
# appear with half-precision scores or degenerate models, so the official rule is the safe default.
#
# ## From the command line
#
# ```bash
# glscl-lite eval --run <run folder> --json test.json          # test split, best checkpoint
# glscl-lite eval --run <run folder> --split val --dsl         # validation split, DSL numbers beside the raw ones
# ```

# %%
print(f"glscl-lite eval --run {run_dir} --json {run_dir / 'test.json'} --dsl")

# %% [markdown]
# ## Exercises
#
# Predict before you run. Fill-in cells start as `raise NotImplementedError`: the check cell below each one compares
# your function with the package on fixed inputs and, while it is still unfilled, runs the reference answer from
# `glscl_lite/exercises.py` instead (so the notebook always runs to the end; `exercises.show(NAME)` prints that
# answer -- after you tried).
#
# ### 1 · Predict, then run: chance level
#
# Random scores, N test videos, one caption each: what are R@1, R@5 and MdR on average for N = 8 and N = 1,000?
#
# <details><summary>Answer (open after predicting)</summary>
#
# R@1 = 100/N %, R@5 = 500/N % (capped at 100), MdR ≈ (N+1)/2: 12.5 %, 62.5 %, 4.5 for N = 8; 0.1 %, 0.5 %, ~500 for
# N = 1,000. Read every R@1 in this series against that.
#
# </details>

# %%
from glscl_lite import exercises

g = torch.Generator().manual_seed(0)
for n in (8, 1000):
    runs = [retrieval_metrics(torch.randn(n, n, generator=g)) for _ in range(200 if n < 100 else 5)]
    print(f"N = {n:>4}: " + ", ".join(f"{k} {np.mean([r[k] for r in runs]):.2f}" for k in ("R1", "R5", "MdR")))


# %% [markdown]
# ### 2 · Fill in: the metrics
#
# `my_metrics(sim [N,N])` with the ground truth of row i in column i and no ties: the 0-based rank of the right
# video is the number of videos scored higher; R@K = % of rows with rank < K; MdR, MnR = median and mean rank,
# 1-based. Return a dict with keys `R1, R5, R10, MdR, MnR`.

# %%
def my_metrics(sim):
    # your code here
    raise NotImplementedError


exercises.check("metrics", my_metrics);

# %% [markdown]
# ### 3 · Experiment: ties
#
# A collapsed model scores every pair the same. Predict R@1 and MdR under each tie convention (`official`,
# `optimistic`, `pessimistic`) for 8 videos, then run.
#
# <details><summary>Answer (open after predicting)</summary>
#
# optimistic: every right video ranks first (R@1 100, MdR 1); pessimistic: last (R@1 0, MdR 8); official: each tied
# position counted once, like an average (R@1 12.5, MdR 4.5) -- chance level, the honest answer.
#
# </details>

# %%
flat = torch.zeros(8, 8)
pd.DataFrame({t: retrieval_metrics(flat, ties=t) for t in ("official", "optimistic", "pessimistic")}).T
