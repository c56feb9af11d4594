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
fig.suptitle(nb.run_label(run_dir), fontsize=9)
plt.tight_layout(); plt.show()

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
# ## A trained model: what it retrieves, what counts as right, and hubs
#
# Everything above is notebook 06's run -- in smoke mode 16 steps of a fresh head on the stand-in CLIP, tested on 8
# videos: whatever it scores there is mostly noise, as its figure titles say. To see *learned* behaviour the rest of this part uses `S.inspection_model()`: without a `preset` or
# `run_dir` that is the trained GLSCL shipped with the package (the stand-in CLIP this project pretrained on its
# synthetic world, frozen, plus a GLSCL head trained on a 10,000-video synthetic corpus; `glscl_lite.model.shipped`).
#
# **Which videos to test it on.** The shipped head was trained on the corpus of seed 0, and every seed-0 corpus draws
# the same scenes and captions for the same video ids: 5 of the smoke corpus's 8 test videos are *training* videos
# of the head. Its score there is partly memory (the first table below shows it). So the gallery here is a corpus of
# another seed (`glscl_lite.heldout`, seed 1: scenes the head never saw), 200 videos in smoke mode, 1,000 otherwise;
# every video is in the gallery and several of its captions are queries.
#
# **What counts as right.** The synthetic scene specs say which videos each caption is *true of*
# (`glscl_lite.data.caption_truth`): "a red circle moves left" is true of every video with a red circle moving left.
# Retrieval metrics count only the paired video; below, a result is also *right* when the caption is true of it.

# %%
from glscl_lite import heldout
from glscl_lite.data.cache import FrameCache
from glscl_lite.data.caption_truth import oracle_recall, scene_facts
from glscl_lite.data.msrvtt import all_video_ids
from glscl_lite.features import video_inputs
from glscl_lite.metrics import dual_softmax

t_model, t_cfg, origin = S.inspection_model()
shipped = S.run_dir is None and S.preset is None
cpu = torch.device("cpu")
if shipped:
    gallery_dir = heldout.heldout_corpus(S.work_dir, 200 if smoke else 1000, image_size=t_model.backbone.image_size)
    t_cfg = t_cfg.replace(anno_path=str(gallery_dir), video_path=str(gallery_dir / "videos"),
                          frame_cache=str(gallery_dir / f"frames-{t_model.backbone.image_size}"))
    gallery = all_video_ids(gallery_dir)
else:  # a run or a preset's model: the notebook corpus's test split
    gallery_dir, gallery = data_dir, list(test.video_ids)
    t_cfg = t_cfg.replace(anno_path=str(data_dir))
t_source, t_features = video_inputs(t_cfg, t_model.backbone.image_size)
g_anno = msrvtt.load_annotations(gallery_dir)
per_video = 5 if smoke and shipped else 20
queries_t = [c for v in gallery for c in g_anno.captions(v)[:per_video]]
evalset_t = EvalSet("trained model gallery", queries_t, gallery)
gt_t = np.asarray(evalset_t.text_video)
res_t = evaluate_model(t_model, evalset_t, t_cfg, cpu, source=t_source, features=t_features, dsl=True,
                       return_similarity=True)
sim_t = res_t["similarity"]
try:  # which gallery videos each query is true of (synthetic corpora only)
    meanings = heldout.caption_meanings(gallery_dir, gallery)
    q_meaning = [meanings[c.video_id][[x.caption for x in g_anno.captions(c.video_id)].index(c.caption)]
                 for c in queries_t]
    scenes_t = heldout.corpus_scenes(gallery_dir)
    facts_t = [scene_facts(scenes_t[v]) for v in gallery]
    truth = heldout.truth_matrix(q_meaning, facts_t)
except (ValueError, KeyError):
    q_meaning, truth = None, np.eye(len(gallery), dtype=bool)[gt_t]   # real data: only the pair is known
assert truth[np.arange(len(gt_t)), gt_t].all(), "every caption is true of its own video"
n_true = truth.sum(1)
print(f"{origin}\n{len(queries_t)} queries ({per_video} captions per video) x {len(gallery)} videos of {gallery_dir}; "
      f"a caption is true of {n_true.mean():.1f} gallery videos on average (median {np.median(n_true):.0f})")

# %%
nv = len(gallery)
rows = {"text -> video": res_t["t2v"], "text -> video, DSL": res_t["t2v_dsl"],
        "random ranking (expected)": {"R1": 100 / nv, "R5": 500 / nv, "R10": 1000 / nv, "MdR": (nv + 1) / 2,
                                      "MnR": (nv + 1) / 2},
        "oracle (perfect model, ties among true videos)": {**oracle_recall(n_true), "MdR": np.nan, "MnR": np.nan}}
if shipped:  # the same model on the notebook corpus's test split: partly its own training videos
    nb_src, nb_feat = video_inputs(t_cfg.replace(anno_path=str(data_dir), video_path=str(S.video_file("x").parent),
                                                 frame_cache=cfg.frame_cache, feature_cache=None),
                                   t_model.backbone.image_size)
    leak = evaluate_model(t_model, test, t_cfg, cpu, source=nb_src, features=nb_feat)
    n_test = leak["n_videos"]
    rows[f"(same model, notebook test split: {n_test} videos, chance R1 {100 / n_test:.1f} %, partly seen in training)"] = \
        leak["t2v"]
pd.DataFrame(rows).T[list(METRIC_KEYS)].round(2)

# %% [markdown]
# R@K counts only the paired video; the oracle row is the best any model can do when a caption is true of several
# videos and the pair is drawn among them at random -- the ceiling of these metrics on this gallery.
#
# ### Top 5 for a few queries
#
# Frames: green = the paired video, gold = another video the caption is true of (right, though R@1 does not count
# it), gray = a video the caption is not true of.

# %%
rng_q = np.random.default_rng(0)
shown = rng_q.choice(len(queries_t), size=min(5, len(queries_t)), replace=False)
k5 = min(top_k, nv)
top5 = torch.topk(sim_t, k5, dim=1).indices.numpy()


def thumbs_of(src, video_id, n=3):
    frames, mask = src.get(video_id)
    real = np.flatnonzero(np.asarray(mask))
    pick = real[np.linspace(0, len(real) - 1, n).astype(int)]
    return np.concatenate([np.asarray(frames[i]) for i in pick], axis=1)


t_thumbs = t_source if t_source is not None else FrameCache(t_cfg.frame_cache)
fig, axes = plt.subplots(len(shown), k5, figsize=(3.0 * k5, 1.5 * len(shown) + 0.6), squeeze=False)
for row, qi in enumerate(shown):
    for col, vi in enumerate(top5[qi]):
        ax = axes[row, col]
        ax.imshow(thumbs_of(t_thumbs, gallery[vi])); ax.set_xticks([]); ax.set_yticks([])
        paired, true = vi == gt_t[qi], truth[qi, vi]
        colour = "limegreen" if paired else "gold" if true else "lightgray"
        for sp in ax.spines.values():
            sp.set_color(colour); sp.set_linewidth(4 if true else 1)
        ax.set_title(f"#{col + 1} {gallery[vi]} {'paired' if paired else 'true' if true else 'not true'}", fontsize=8)
    rank = int((sim_t[qi] > sim_t[qi, gt_t[qi]]).sum()) + 1
    axes[row, 0].set_ylabel(textwrap.fill(queries_t[qi].caption, 30) + f"\n(paired: rank {rank}; true of "
                            f"{n_true[qi]})", fontsize=8, rotation=0, ha="right", va="center")
fig.suptitle(textwrap.fill(f"top {k5} -- {origin}; green paired, gold also true, gray not true", 120), fontsize=9)
plt.tight_layout(); plt.show()

# %%
in_top5_true = truth[np.arange(len(gt_t))[:, None], top5].any(1)
in_top5_pair = (top5 == gt_t[:, None]).any(1)
# a random ranking: P(some true video among k picks) = 1 - C(N - n, k) / C(N, k)
p_rand = 1 - np.array([np.prod([(nv - n - j) / (nv - j) for j in range(k5)]) if nv - n >= k5 else 0.0
                       for n in n_true])
top1 = top5[:, 0]
top1_true = truth[np.arange(len(gt_t)), top1]
summary = pd.Series({
    f"top {k5} holds the paired video (R@{k5})": 100 * in_top5_pair.mean(),
    f"top {k5} holds a video the caption is true of": 100 * in_top5_true.mean(),
    f"  top {k5}, random ranking (expected)": 100 * p_rand.mean(),
    "top 1 is the paired video (R@1)": 100 * (top1 == gt_t).mean(),
    "top 1 is a video the caption is true of": 100 * top1_true.mean(),
    "  top 1, random ranking (expected)": 100 * (n_true / nv).mean(),
}, name="% of queries").round(1)
summary.to_frame()

# %% [markdown]
# ### Failures, explained by the oracle
#
# A query whose top-1 is not its paired video is a "miss" for R@1. The scene specs split the misses: either the
# top-1 is another video the caption is also true of (not a model error: the caption cannot tell the two apart), or
# the caption is false of it -- a real error, and then the claims it breaks say what the model got wrong (a claim
# that no object of that video meets on its own: colour, shape, motion, ...; "binding/order" when each claim holds
# for some object but not together, or the order of two events is wrong).

# %%
miss = np.flatnonzero(top1 != gt_t)
not_error = miss[top1_true[miss]]
real = miss[~top1_true[miss]]
print(f"{len(miss)} of {len(gt_t)} queries miss R@1: {len(not_error)} ({100 * len(not_error) / max(1, len(miss)):.0f} %) "
      f"rank first another video the caption is true of -- not model errors; {len(real)} "
      f"({100 * len(real) / max(1, len(miss)):.0f} %) rank first a video it is false of")
if q_meaning is not None and len(real):
    broken = [heldout.failed_claims(q_meaning[i], facts_t[top1[i]]) for i in real]
    counts = pd.Series([b for bs in broken for b in bs]).value_counts()
    kind_counts = pd.Series([q_meaning[i].kind for i in real]).value_counts()
    all_kinds = pd.Series([m.kind for m in q_meaning]).value_counts()
    display(pd.DataFrame({"real errors whose top-1 breaks this claim": counts,
                          "% of real errors": (100 * counts / len(real)).round(1)}))
    display(pd.DataFrame({"real errors": kind_counts, "queries": all_kinds,
                          "error rate %": (100 * kind_counts / all_kinds).round(1)}).fillna(0).rename_axis("caption kind"))
    examples = [{"query": queries_t[i].caption, "ranked first": gallery[top1[i]],
                 "true of it?": bool(top1_true[i]),
                 "why": "caption also true of it" if top1_true[i] else ", ".join(heldout.failed_claims(q_meaning[i],
                                                                                                   facts_t[top1[i]])),
                 "its first caption": g_anno.captions(gallery[top1[i]])[0].caption}
                for i in list(not_error[:3]) + list(real[:4])]
    display(pd.DataFrame(examples))

# %% [markdown]
# ### Which words can it read? Claim errors against chance
#
# Counting broken claims among the errors mixes two things: how often a kind of claim is made, and how often the
# model gets it wrong. Per kind of claim, take every query that makes it and ask whether the video ranked first
# breaks it; beside that, the same rate for a video drawn at random (`chance_claim_errors`, an exact average
# over the gallery). A claim the model reads is broken far less often than chance; a claim it cannot read sits
# near chance, however often it is made.

# %%
from glscl_lite.data.caption_truth import chance_claim_errors, claim_errors

if q_meaning is not None:
    errors = claim_errors(q_meaning, [facts_t[i] for i in top1])
    sample = q_meaning[:: max(1, len(q_meaning) // 1000)]  # chance: an expectation, 1,000 queries are plenty
    chance = chance_claim_errors(sample, facts_t)
    table = pd.DataFrame({k: {"queries making it": e["captions"], "% whose first video breaks it": e["pct"],
                              "% at chance": chance.get(k, np.nan)} for k, e in errors.items()}).T
    table["read? (chance - model, points)"] = table["% at chance"] - table["% whose first video breaks it"]
    display(table[table["queries making it"] >= 20].round(1))

# %% [markdown]
# On the shipped model the answer is sharp (measured on the 10,000-video corpus in
# [`docs/results/pretrain`](../docs/results/pretrain/README.md#why-the-first-video-is-wrong), 3 seeds): colour and
# background are read (broken 9 and 10 % of the time against 82 and 92 % by chance), shape mostly (21 against 80; the
# head shipped before, on a stand-in that read shape half the time, broke it 50 % of the time), and **motion hardly
# at all (62 against 76)**. Motion is a change of position over time, and the stand-in CLIP was pretrained on single
# frames whose embedding barely says *where* an object is: on the former hybrid a linear probe found the right third
# of the frame 30 % of the time (chance 11 %). No temporal module can recover a position its input does not carry. A
# stand-in pretrained with *position twins* does carry it (position 82 %, motion probe 31 -> 64 %), yet GLSCL on it
# still misses motion as often and loses colour: the same page tells that experiment.

# %% [markdown]
# ### Hubness: how often each video is ranked first
#
# In high-dimensional retrieval a few gallery items ("hubs") are near to many queries and come first for far more
# of them than their share; others never do. The k-occurrence `N_1(v)` counts the queries that rank video `v`
# first; with Q queries and N videos its mean is Q/N, and a right-skewed distribution (large skewness, a long
# tail of big `N_1`) is the signature of hubs. DSL divides each video's scores by how much *all* queries like it
# (a softmax over the queries, per video), which is aimed at exactly this.

# %%
n1_raw = heldout.k_occurrence(sim_t, 1)
sim_dsl = dual_softmax(sim_t)
n1_dsl = heldout.k_occurrence(sim_dsl, 1)
# what an ideal ranker gives: each query's top-1 drawn among the videos it is true of
rng_h = np.random.default_rng(0)
oracle_top = np.array([rng_h.choice(np.flatnonzero(t)) for t in truth])
n1_oracle = np.bincount(oracle_top, minlength=nv)
top1_dsl = sim_dsl.argmax(1).numpy()


def hub_stats(n1, top):
    big = np.argsort(-n1)[:5]
    return {"max N_1": int(n1.max()), "skewness of N_1": round(heldout.skewness(n1), 2),
            "% videos never ranked first": round(100 * np.mean(n1 == 0), 1),
            "% of top-1s on the 5 biggest hubs": round(100 * n1[big].sum() / n1.sum(), 1),
            "R@1 (paired) %": round(100 * np.mean(top == gt_t), 1),
            "top-1 true of the caption %": round(100 * truth[np.arange(len(top)), top].mean(), 1)}


hubs = pd.DataFrame({"raw scores": hub_stats(n1_raw, top1), "DSL": hub_stats(n1_dsl, top1_dsl),
                     "oracle ranker (random among true videos)": hub_stats(n1_oracle, oracle_top)}).T
print(f"{len(gt_t)} queries, {nv} videos: mean N_1 = {len(gt_t) / nv:.1f}")
hubs

# %%
fig, ax = plt.subplots(1, 2, figsize=(12, 3.6))
bins = np.arange(0, max(n1_raw.max(), n1_dsl.max()) + 2) - 0.5
for n1, name, c in ((n1_raw, "raw scores", "C3"), (n1_dsl, "DSL", "C0"), (n1_oracle, "oracle ranker", "k")):
    ax[0].hist(n1, bins=bins, histtype="step", lw=1.5, color=c,
               label=f"{name} (skew {heldout.skewness(n1):.1f}, max {n1.max()})")
ax[0].set(xlabel="N_1: queries that rank the video first", ylabel="videos", yscale="log",
          title="k-occurrence distribution")
ax[0].legend(fontsize=8)
order_h = np.argsort(-n1_raw)[:15]
ax[1].bar(np.arange(15) - 0.2, n1_raw[order_h], 0.4, color="C3", label="raw")
ax[1].bar(np.arange(15) + 0.2, n1_dsl[order_h], 0.4, color="C0", label="DSL")
ax[1].plot(np.arange(15), truth[:, order_h].sum(0) * len(gt_t) / truth.sum(), "k_", ms=14,
           label="share of queries true of it (scaled)")
ax[1].set_xticks(np.arange(15), [gallery[i] for i in order_h], rotation=60, fontsize=7)
ax[1].set(ylabel="N_1", title="the 15 biggest hubs of the raw scores")
ax[1].legend(fontsize=8)
fig.suptitle(textwrap.fill(f"hubness -- {origin}", 130), fontsize=9)
plt.tight_layout(); plt.show()

# %% [markdown]
# How to read it. The oracle ranker (each query's top-1 drawn among the videos its caption is true of) shows the
# N_1 spread that the captions themselves justify; the raw scores are far more skewed: a few videos come first for
# several times their share, and they are not the videos many captions are true of (black ticks). DSL takes the top-1s
# away from exactly those hubs (right panel) and leaves fewer videos never ranked first. But it does not stop there.
# In the smoke run (200 videos, 1,000 queries, the shipped model) the 15 biggest raw hubs went from 217 top-1s to
# 66 and the videos never ranked first from 4.0 to 0.5 %, yet the skewness of N_1 *rose* from 1.48 to 2.71 and the
# largest N_1 from 19 to 39: DSL made new, bigger hubs of videos that were no hubs before. R@1 fell (34.9 → 33.6 %)
# and so did the share of top-1s true of their caption (52.7 → 49.3 %). (The head shipped before, on the former
# hybrid stand-in, went the other way on the same gallery: skewness 2.48 → 1.64, no new hubs, R@1 28.5 → 27.8 %;
# the first head, on the plain stand-in, made new hubs like this one.) So whether DSL "fixes hubness" depends on the
# model; R@1 dropped a little both times. The line below says what it did in this run. DSL also needs every query
# at once: a benchmark-time operation, not a search engine's.

# %%
old_hubs = np.argsort(-n1_raw)[:15]
print(f"the 15 biggest raw hubs: {n1_raw[old_hubs].sum()} top-1s raw -> {n1_dsl[old_hubs].sum()} with DSL; "
      f"skewness of N_1 {heldout.skewness(n1_raw):.2f} -> {heldout.skewness(n1_dsl):.2f}, max N_1 {n1_raw.max()} -> "
      f"{n1_dsl.max()}, videos never first {np.mean(n1_raw == 0):.1%} -> {np.mean(n1_dsl == 0):.1%}; "
      f"R@1 {100 * np.mean(top1 == gt_t):.1f} -> {100 * np.mean(top1_dsl == gt_t):.1f} %")

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
