# %% [markdown]
# # 01 · Data: the MSR-VTT format and a synthetic stand-in
#
# GLSCL is trained and tested on MSR-VTT: 10,000 YouTube clips of 10 to 30 seconds, each with 20 captions written
# by crowd workers. The retrieval literature uses one fixed split, "9k train / 1k-A test" (spec §6.1). This notebook
# shows
#
# 1. the annotation files and what the loader builds from them,
# 2. the synthetic corpus that the project generates in the same format (no download possible here),
# 3. how a video becomes 12 frames and a mask (spec §6.2),
# 4. reduced splits with a validation set carved from the *training* videos,
# 5. the data check, on a healthy and on a deliberately broken corpus.

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
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from glscl_lite import nb
from glscl_lite.data import msrvtt, synthetic, video

logging.getLogger().setLevel(logging.ERROR)
pd.set_option("display.max_colwidth", 90)
S = nb.series(globals())  # the shared parameters, resolved; writes a synthetic corpus if data_dir is empty
data_dir = S.data_dir
video_dir = S.video_file("x").parent
work_dir = Path(work_dir)
work_dir.mkdir(parents=True, exist_ok=True)
print(sorted(p.name for p in data_dir.iterdir()))

# %% [markdown]
# ## 1. The annotation files
#
# An MSR-VTT annotation folder (the layout of CLIP4Clip's `msrvtt_data.zip`, used by DiCoSA and GLSCL) holds:
#
# | file | content |
# |---|---|
# | `MSRVTT_data.json` | `videos` (one entry per clip: id, category, url, start/end time, split) and `sentences` (caption, video_id, sen_id): 200,000 captions for the real data |
# | `MSRVTT_train.9k.csv` | one column `video_id`: the 9,000 training videos |
# | `MSRVTT_train.7k.csv` | the older 7,010-video training list (a subset of the 9k list) |
# | `MSRVTT_JSFUSION_test.csv` | the 1k-A test set: `key, vid_key, video_id, sentence`, **one** caption per test video |
#
# The videos are separate: `<video_id>.mp4` in a video folder.

# %%
# spec §6.1: the CLIP4Clip / DiCoSA annotation layout
raw = json.loads((data_dir / msrvtt.ANNOTATION_JSON).read_text())
videos = pd.DataFrame(raw["videos"])
is_synthetic = "synthetic" in videos.columns
sentences = pd.DataFrame(raw["sentences"])
print(f"{len(videos)} videos, {len(sentences)} captions ({len(sentences) / len(videos):.0f} per video)")
videos.drop(columns=["synthetic"], errors="ignore").head()

# %%
sentences.head()

# %%
train9k = pd.read_csv(data_dir / msrvtt.TRAIN_9K_CSV)
train7k = pd.read_csv(data_dir / msrvtt.TRAIN_7K_CSV)
test = pd.read_csv(data_dir / msrvtt.TEST_CSV)
print(f"9k list: {len(train9k)} videos | 7k list: {len(train7k)} videos | test: {len(test)} captions")
test.head()

# %% [markdown]
# The package reads these files with validation (every error names the file, the row and the reason).
# Training pairs are **every caption of every training video**: one epoch of real MSR-VTT is 9,000 × 20 = 180,000
# (caption, video) pairs, while the test set ranks 1,000 captions against 1,000 videos (spec §6.1).

# %%
anno = msrvtt.load_annotations(data_dir)
train_ids = msrvtt.read_video_list(data_dir / msrvtt.TRAIN_9K_CSV)
pairs = msrvtt.training_pairs(anno, train_ids)
test_captions = msrvtt.read_caption_csv(data_dir / msrvtt.TEST_CSV)
print(f"{len(anno)} videos with captions, {anno.n_captions} captions")
print(f"training pairs: {len(pairs)} = {len(train_ids)} videos x {len(pairs) / len(train_ids):.0f} captions")
print(f"test: {len(test_captions)} captions of {len({c.video_id for c in test_captions})} videos")
print("first pair:", pairs[0])

# %% [markdown]
# ## 2. The synthetic corpus
#
# No dataset can be downloaded on the machines this project runs on, so `glscl_lite.data.synthetic` writes a corpus
# in exactly this layout: real H.264 mp4 files and the same json/CSV files. Each video is a *scene*: one to three
# coloured shapes with a motion (left, right, up, down, grow, shrink, spin, still) on a background, and sometimes
# an event (an object enters, leaves, changes colour, appears or disappears part-way through). Its 20 captions are
# written from the scene by templates, and they are deliberately of different kinds, like real captions:
#
# * `global` / `scene`: the whole clip,
# * `object`: only one of the objects (partial relevance),
# * `moment`: only what happens at one moment,
# * `temporal`: an order of events ("first ... then ...").
#
# Some videos are **hard negatives**: near copies of another video that differ in one attribute only (a colour, a
# shape, a motion direction, the background, or the order of two events).
#
# Generating a small corpus takes a second or two; the same seed always gives the same corpus.

# %%
demo = work_dir / "synthetic-demo"
summary = synthetic.generate_corpus(demo, n_videos=16, seed=1, progress=False)
pd.Series(summary).to_frame("value").T

# %%
# The synthetic examples below need a synthetic corpus: the series corpus if it is one, else the demo corpus.
synth_dir = data_dir if is_synthetic else demo
sraw = raw if is_synthetic else json.loads((demo / msrvtt.ANNOTATION_JSON).read_text())
svideos = {v["video_id"]: v for v in sraw["videos"]}
scaptions = {}
for s in sraw["sentences"]:
    scaptions.setdefault(s["video_id"], []).append(s["caption"])
print("caption kinds:", sraw["info"]["caption_kinds"])
print("hard-negative pairs (video, near copy, attribute):", sraw["info"]["hard_negative_pairs"])


def pick_showcase():
    # a video with an event, several caption kinds and a temporal caption
    for vid, v in svideos.items():
        s = v["synthetic"]
        if s["scene"]["events"] and "temporal" in s["caption_kinds"] and len(set(s["caption_kinds"])) >= 4:
            return vid
    return next(iter(svideos))


showcase = pick_showcase()
scene = synthetic.Scene.from_dict(svideos[showcase]["synthetic"]["scene"])
print(f"\n{showcase}: {scene.duration:.1f} s, background {scene.background.kind} {scene.background.colours}")
print("events:", [(e.kind, e.obj, round(e.time, 1)) for e in scene.events])
pd.DataFrame([o.__dict__ for o in scene.objects])


# %% [markdown]
# Below: the 12 frames that the loader keeps (one per second, see part 3) and captions of each kind. Notice how a
# `moment` or `object` caption is true for only part of the frames. This is the "partial relevance" that motivates
# a text-conditioned pooling (the GIM, notebook 03) over a plain average of the frames.

# %%
def frame_strip(axes, path, title=None, max_frames=12):
    info = video.probe_video(path, max_frames=max_frames)
    idx = video.sample_frame_indices(info["frames"], info["fps"], max_frames)
    frames, n = video.read_frames(path, max_frames=max_frames)
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < n:
            ax.imshow(frames[i])
            ax.set_title(f"{idx[i] / info['fps']:.0f} s", fontsize=8)
    if title:
        axes[0].text(-0.1, 0.5, title, transform=axes[0].transAxes, ha="right", va="center", fontsize=9)
    return frames


fig, axes = plt.subplots(1, 12, figsize=(16, 1.8))
frame_strip(axes, synth_dir / "videos" / f"{showcase}.mp4", showcase)
plt.show()

kinds = svideos[showcase]["synthetic"]["caption_kinds"]
by_kind = (pd.DataFrame({"kind": kinds, "caption": scaptions[showcase]})
           .groupby("kind", sort=False).head(2).sort_values("kind"))
by_kind

# %% [markdown]
# ### Hard negatives
#
# A hard-negative pair differs in one attribute. A model that only recognises "there are shapes moving on a
# striped background" cannot tell the two apart. Order negatives (the same two events, swapped in time) need the
# temporal transformer.

# %%
pairs_hn = sraw["info"]["hard_negative_pairs"]
if pairs_hn:
    a, b, attribute = pairs_hn[0]
    sa = synthetic.Scene.from_dict(svideos[a]["synthetic"]["scene"])
    sb = synthetic.Scene.from_dict(svideos[b]["synthetic"]["scene"])
    print(f"{b} is a near copy of {a}; they differ in: {attribute}")
    print("differences:", synthetic.scene_differences(sa, sb))
    fig, axes = plt.subplots(2, 12, figsize=(16, 3.4))
    frame_strip(axes[0], synth_dir / "videos" / f"{a}.mp4", a)
    frame_strip(axes[1], synth_dir / "videos" / f"{b}.mp4", b)
    plt.show()
    display(pd.DataFrame({a: scaptions[a][:4], b: scaptions[b][:4]}))
else:
    print("this corpus has no hard-negative pair")

# %% [markdown]
# ## 3. From a video file to 12 frames and a mask
#
# The official loader (spec §6.2) reads **one frame per second**, starting at frame 0: the candidate indices are
# `0, s, 2s, ...` with stride `s = round(fps)`. If there are more than `max_frames = 12` candidates, 12 of them are
# picked evenly with `np.linspace`; if there are fewer, all are kept and the clip is **padded** to 12 with empty
# frames, and a mask marks which frames are real. Most MSR-VTT clips are 10 to 30 s long, so most are subsampled and
# a few are padded. The synthetic clips (6 to 16 s) are built to have both cases.

# %%
# spec §6.2: 1-fps candidates from frame 0, np.linspace down to max_frames, padding below
rows = []
for label, seconds, fps in [("short synthetic", 6, 4), ("synthetic", 12.5, 4), ("long synthetic", 16, 4),
                            ("MSR-VTT-like", 15, 30), ("long MSR-VTT-like", 30, 29.97)]:
    n = int(seconds * fps)
    idx = video.sample_frame_indices(n, fps, max_frames=12)
    rows.append({"clip": label, "frames in file": n, "fps": fps, "stride": max(1, round(fps)),
                 "1-fps candidates": len(range(0, n, max(1, round(fps)))), "kept": len(idx),
                 "padded": 12 - len(idx), "kept indices": idx.tolist()})
pd.DataFrame(rows)

# %%
fig, axes = plt.subplots(2, 1, figsize=(12, 2.6), sharex=False)
for ax, (seconds, fps) in zip(axes, [(6, 4), (30, 29.97)]):
    n = int(seconds * fps)
    stride = max(1, round(fps))
    cand = np.arange(0, n, stride)
    kept = video.sample_frame_indices(n, fps, 12)
    t = np.arange(n) / fps
    ax.vlines(t, 0, 0.4, color="lightgray", lw=0.6)
    ax.plot(cand / fps, np.full(len(cand), 0.6), "o", color="steelblue", ms=5, label="1-fps candidates")
    ax.plot(kept / fps, np.full(len(kept), 0.9), "v", color="crimson", ms=7, label="kept (<= 12)")
    ax.set_yticks([]); ax.set_ylim(-0.1, 1.2)
    ax.set_title(f"{seconds} s at {fps} fps: {len(cand)} candidates, {len(kept)} kept, {12 - len(kept)} padded",
                 fontsize=9)
axes[1].set_xlabel("time (s)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=2, fontsize=8,
           bbox_to_anchor=(0.5, 1.08), frameon=False)
plt.tight_layout(); plt.show()

# %% [markdown]
# `load_clip` does the whole thing for one video: decode the kept frames, resize the short side to the model's
# resolution and centre-crop (bicubic, like CLIP's own preprocessing), pad to `max_frames` and return the mask.
# Frames stay `uint8` until the model normalises them on its device. The shortest video of the corpus shows the
# padding:

# %%
durations = {v: svideos[v]["synthetic"]["n_frames"] for v in svideos}
shortest = min(durations, key=durations.get)
frames, mask = video.load_clip(synth_dir / "videos" / f"{shortest}.mp4", max_frames=12, image_size=64)
print(f"{shortest}: frames {frames.dtype} {frames.shape}, mask {mask.tolist()}")
fig, axes = plt.subplots(1, 12, figsize=(16, 1.7))
for i, ax in enumerate(axes):
    ax.imshow(frames[i]); ax.set_xticks([]); ax.set_yticks([])
    for s in ax.spines.values():
        s.set_color("crimson" if not mask[i] else "white"); s.set_linewidth(2)
    ax.set_title("pad" if not mask[i] else f"frame {i}", fontsize=8, color="crimson" if not mask[i] else "black")
plt.show()

# %% [markdown]
# A padded frame is not skipped by the official code: it is an all-zero tensor **after** CLIP normalisation, i.e.
# an image of the flat CLIP mean colour, and it goes through the image encoder like any frame (spec S17). The global
# module later masks it out; the local module does not (spec S5, notebook 04). `normalize_frames` reproduces this
# exactly:

# %%
# spec S17: padding is an all-zero tensor after normalisation
x = video.normalize_frames(frames, mask)  # float [T, 3, S, S], CLIP mean/std, padded frames exactly 0
per_frame = x.abs().flatten(1).max(1).values
pf = per_frame.numpy()
assert (pf[mask == 0] == 0).all() and (pf[mask == 1] > 0).all()  # padding exactly 0, real frames not
print("max |x| per frame:", [round(float(v), 2) for v in per_frame])
print("a padded frame as pixels = the CLIP mean colour:", [round(255 * m) for m in video.CLIP_MEAN])

# %% [markdown]
# ## 4. Reduced splits, with validation carved from training
#
# The official code has no validation split: for MSR-VTT its "val" loader *is* the 1k-A test set, and the best
# checkpoint is chosen on it (spec S6). Here model selection never touches the test set: `make_reduced_split` draws
# validation videos from the training list (and optionally a smaller training subset), writes them as CSVs in the
# same formats, and checks that nothing overlaps the test set. The CLI equivalent is
# `glscl-lite data split --anno DIR --train-videos N --val-videos M`.

# %%
# spec S6: the official code selects models on the test set; here validation comes from training videos
n_train, n_val = (16, 8) if smoke else (None, 50)
written = msrvtt.make_reduced_split(data_dir, work_dir / "splits-demo", train_videos=n_train, val_videos=n_val)
sub_train = msrvtt.read_video_list(written["train"])
val_caps = msrvtt.read_caption_csv(written["val"])
test_ids = {c.video_id for c in test_captions}
print({k: v.name for k, v in written.items()})
print(f"train subset: {len(sub_train)} videos | validation: {len(val_caps)} captions of "
      f"{len({c.video_id for c in val_caps})} videos")
val_ids = {c.video_id for c in val_caps}
assert not (set(sub_train) & val_ids) and not ((set(sub_train) | val_ids) & test_ids)  # never the test set
print("train & val overlap:", set(sub_train) & {c.video_id for c in val_caps} or "none",
      "| train/val & test overlap:", (set(sub_train) | {c.video_id for c in val_caps}) & test_ids or "none")
pd.read_csv(written["val"]).head(3)

# %% [markdown]
# A run uses such files through the config keys `train_csv` and `val_csv` (paths relative to `anno_path`, or
# absolute). Without `val_csv`, training carves `val_videos` videos out of the training list itself, with a fixed
# seed, so every run sees the same validation set. `build_splits` is what the trainer calls:

# %%
from glscl_lite.config import Config
from glscl_lite.data.splits import build_splits

for label, cfg in [("carved by the trainer", Config(anno_path=str(data_dir), val_videos=8 if smoke else 500)),
                   ("reduced split files", Config(anno_path=str(data_dir), train_csv=str(written["train"].resolve()),
                                                  val_csv=str(written["val"].resolve())))]:
    s = build_splits(cfg)
    print(f"{label:>22}: {len(s.train):5d} training pairs of {len(s.train_videos):4d} videos | "
          f"val {len(s.val.captions)} captions | test {len(s.test.captions) if s.test else 0} captions")

# %% [markdown]
# ## 5. Checking a dataset
#
# A real download goes wrong in many small ways: missing or truncated videos, broken rows. `check_dataset` (CLI:
# `glscl-lite data check`) checks everything a run needs, decodes the first and last sampled frame of every split
# video, and returns one line per problem, naming the file and the reason. On the series corpus:

# %%
problems = msrvtt.check_dataset(data_dir, video_dir, progress=False)
print("\n".join(problems) if problems else f"OK: no problem in {data_dir.name} ({len(videos)} videos)")

# %% [markdown]
# Now a deliberately broken copy of the synthetic corpus: one video deleted, one truncated to half its bytes, one
# empty file, an empty caption in the json, a duplicated row in the 9k list, and a test row whose video does not
# exist.

# %%
broken = work_dir / "broken-corpus"
shutil.rmtree(broken, ignore_errors=True)
(broken / "videos").mkdir(parents=True)
for f in synth_dir.glob("MSRVTT_*"):
    shutil.copy(f, broken / f.name)
ids = msrvtt.read_video_list(broken / msrvtt.TRAIN_9K_CSV)
for v in svideos:  # symlinks: no copy of the video data
    (broken / "videos" / f"{v}.mp4").symlink_to((synth_dir / "videos" / f"{v}.mp4").resolve())
missing, truncated, empty = ids[1], ids[2], ids[3]
(broken / "videos" / f"{missing}.mp4").unlink()
data = (synth_dir / "videos" / f"{truncated}.mp4").read_bytes()
(broken / "videos" / f"{truncated}.mp4").unlink()
(broken / "videos" / f"{truncated}.mp4").write_bytes(data[: len(data) // 2])
(broken / "videos" / f"{empty}.mp4").unlink()
(broken / "videos" / f"{empty}.mp4").write_bytes(b"")
j = json.loads((broken / msrvtt.ANNOTATION_JSON).read_text())
j["sentences"][5]["caption"] = "   "
(broken / msrvtt.ANNOTATION_JSON).write_text(json.dumps(j))
with open(broken / msrvtt.TRAIN_9K_CSV, "a") as f:
    f.write(f"{ids[0]}\n")
with open(broken / msrvtt.TEST_CSV, "a") as f:
    f.write("ret999,msr99999,video99999,a caption whose video does not exist\n")

for line in msrvtt.check_dataset(broken, broken / "videos", progress=False):
    print(line.replace(str(broken.resolve()), "<broken>").replace(str(broken), "<broken>"))

# %% [markdown]
# The same check from the command line exits with status 1, prints the same lines and the count, so a script can
# stop before a long run starts on bad data:

# %%
out = subprocess.run([sys.executable, "-m", "glscl_lite", "data", "check", "--anno", str(broken),
                      "--videos", str(broken / "videos"), "--quiet"], capture_output=True, text=True)
print("exit status:", out.returncode)
print(out.stdout.strip().replace(str(broken.resolve()), "<broken>").replace(str(broken), "<broken>"))
print(out.stderr.strip().splitlines()[-1])  # the count (decord's own messages come before it)
assert out.returncode == 1 and all(f"{v}.mp4" in out.stdout for v in (missing, truncated, empty))  # a line per bad file

# %% [markdown]
# ## 6. The real split files (when available)
#
# If the project's shared folder holds the real MSR-VTT split files (they are not part of the repository; the
# download command fetches them), they go through the same readers here. The cell skips quietly otherwise.

# %%
real = next((p for p in [Path("../../shared/data/msrvtt"), Path("/work/shared/data/msrvtt")]
             if (p / msrvtt.TEST_CSV).is_file()), None)
if real is None:
    print("no real split files found; skipped")
else:
    r9k = msrvtt.read_video_list(real / msrvtt.TRAIN_9K_CSV)
    r7k = msrvtt.read_video_list(real / msrvtt.TRAIN_7K_CSV)
    rtest = msrvtt.read_caption_csv(real / msrvtt.TEST_CSV)
    rtest_ids = {c.video_id for c in rtest}
    print(f"9k: {len(r9k)} videos | 7k: {len(r7k)} (subset of 9k: {set(r7k) <= set(r9k)}) | "
          f"1k-A test: {len(rtest)} captions of {len(rtest_ids)} videos (disjoint from 9k: {not rtest_ids & set(r9k)})")
    real_len = [len(c.caption.split()) for c in rtest]
    syn_len = [len(c.split()) for caps in scaptions.values() for c in caps]
    fig, ax = plt.subplots(figsize=(7, 3))
    bins = np.arange(1, 32)
    ax.hist(real_len, bins=bins, density=True, alpha=0.6, label=f"real 1k-A test (mean {np.mean(real_len):.1f})")
    ax.hist(syn_len, bins=bins, density=True, alpha=0.6, label=f"synthetic (mean {np.mean(syn_len):.1f})")
    ax.set_xlabel("words per caption"); ax.set_ylabel("share"); ax.legend()
    ax.set_title("Caption lengths: the synthetic templates follow the real test captions")
    plt.show()
    display(pd.DataFrame({"real 1k-A captions": [c.caption for c in rtest[:5]]}))

# %% [markdown]
# **Next:** notebook 02 sends these frames and captions through CLIP.

# %% [markdown]
# ## Exercises
#
# Predict before you run. Fill-in cells start as `raise NotImplementedError`: the check cell below each one compares
# your function with the package on fixed inputs and, while it is still unfilled, runs the reference answer from
# `glscl_lite/exercises.py` instead (so the notebook always runs to the end; `exercises.show(NAME)` prints that
# answer -- after you tried).
#
# ### 1 · Predict, then run: which frames?
#
# A 10-second clip at 30 fps and a 30-second one, with the official `max_frames=12`, `video_framerate=1`: how many
# frames does the loader read from each, which frame indices, and how many of the 12 slots are padding?
#
# <details><summary>Answer (open after predicting)</summary>
#
# 10 s: one candidate per second (`0, 30, ..., 270`), 10 of them, all kept, **2 padded slots**. 30 s: 30 candidates;
# more than 12, so `np.linspace(0, 29, 12)` cast to int picks 12 of them (`0, 2, 5, 7, ...`), no padding. So short
# clips carry padding (and the LIM reads it, S5), long clips skip seconds.
#
# </details>

# %%
from glscl_lite import exercises
from glscl_lite.data.video import sample_frame_indices

for seconds in (10, 30):
    idx = sample_frame_indices(seconds * 30, fps=30, max_frames=12)
    print(f"{seconds:>2} s: {len(idx)} frames read, {12 - len(idx)} padded: {idx.tolist()}")


# %% [markdown]
# ### 2 · Fill in: the official frame sampling
#
# Write `my_frame_indices` without looking at `sample_frame_indices`: candidates are one frame every `round(fps /
# framerate)` frames starting at 0; if there are more than `max_frames` of them, keep `max_frames` spread evenly
# with `np.linspace(0, n - 1, max_frames, dtype=int)`. Return int64 indices.

# %%
def my_frame_indices(n_frames_total, fps, max_frames=12, framerate=1):
    # your code here (numpy is np)
    raise NotImplementedError


exercises.check("frame_indices", my_frame_indices);

# %% [markdown]
# ### 3 · Experiment: carve your own validation split
#
# Change `n_train_try` / `n_val_try` and run. What happens when `n_val_try` is larger than the training list? Check
# that validation never touches the test videos, whatever you choose.

# %%
n_train_try, n_val_try = 8, 4   # change me
mine = msrvtt.make_reduced_split(data_dir, work_dir / "splits-exercise", train_videos=n_train_try, val_videos=n_val_try)
mine_train = msrvtt.read_video_list(mine["train"])
mine_val = {c.video_id for c in msrvtt.read_caption_csv(mine["val"])}
assert not ((set(mine_train) | mine_val) & test_ids)
print(f"train {len(mine_train)} videos, validation {len(mine_val)} videos, none of them in the test split")
