"""The stand-in CLIP: per-frame captions, pretraining (resume, determinism, learning), zero-shot,
and the shipped weights (offline load, sha256, recorded accuracy on fresh frames)."""
from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from glscl_lite.data import frame_world as fw
from glscl_lite.data import synthetic as syn
from glscl_lite.errors import UserError
from glscl_lite.pretrain import PretrainSettings, build_model, export_weights, pretrain, read_log

TINY = dict(model="glscl-tiny", batch_size=16, lr=2e-3, warmup=2)


# ---------------------------------------------------------------------------------- frame world
def test_frames_are_deterministic_and_captions_describe_what_is_visible():
    a, b = fw.make_frame("train", 3, 17, 64), fw.make_frame("train", 3, 17, 64)
    assert np.array_equal(a.image, b.image) and a.caption == b.caption and a.image.shape == (64, 64, 3)
    assert not np.array_equal(a.image, fw.make_frame("train", 3, 18, 64).image)
    for i in range(60):
        s = fw.make_frame("train", 0, i, 64)
        for o in s.objects:  # every visible object is named with one of its words
            assert any(w in s.caption for w in syn.SIZE_WORDS[o.size]), (s.caption, o)
            assert any(w in s.caption for w in syn.COLOUR_WORDS[o.colour]), (s.caption, o)
            assert any(w in s.caption for w in syn.SHAPE_WORDS[o.shape]), (s.caption, o)
        if not s.objects:
            assert s.caption.startswith(fw.EMPTY_PHRASES), s.caption


def test_frame_state_follows_the_scene_at_that_instant():
    obj = syn.SceneObject(shape="star", colour="red", size="medium", motion="still", x=0.5, y=0.5, speed=0.0, angle=0.0)
    bg = syn.Background(kind="grass", seed=1)
    scene = syn.Scene(objects=(obj,), background=bg, events=(syn.Event("changes_colour", 0, 4.0, "blue"),), duration=8.0)
    assert fw.frame_objects(scene, 1.0)[0].colour == "red"
    assert fw.frame_objects(scene, 5.0)[0].colour == "blue"
    assert fw.frame_objects(scene, 5.0)[0].position == "in the middle"
    gone = syn.Scene(objects=(obj,), background=bg, events=(syn.Event("disappears", 0, 4.0),), duration=8.0)
    assert len(fw.frame_objects(gone, 1.0)) == 1 and fw.frame_objects(gone, 5.0) == ()
    # outside the square centre crop of a 4:3 frame: not described
    edge = syn.Scene(objects=(syn.SceneObject("star", "red", "small", "still", 0.05, 0.5, 0.0, 0.0),),
                     background=bg, events=(), duration=8.0)
    assert fw.frame_objects(edge, 1.0) == ()
    grow = syn.SceneObject("circle", "red", "medium", "grow", 0.5, 0.5, 0.0, 0.0)
    sizes = [fw.frame_objects(syn.Scene((grow,), bg, (), 10.0), t)[0].size for t in (0.0, 5.0, 9.9)]
    assert sizes == ["small", "medium", "large"]


def test_twins_differ_in_one_object_shape_or_size_and_one_caption_word():
    changed = set()
    for i in range(40):
        a, b = fw.make_twins("train", 0, i, 64)
        if not a.objects:  # nothing to change: a random frame stands in
            continue
        diff = [(x, y) for x, y in zip(a.objects, b.objects) if x != y]
        assert len(a.objects) == len(b.objects) and len(diff) == 1, (a.objects, b.objects)
        (x, y), = diff
        kinds = {k for k in ("shape", "size", "colour", "position") if getattr(x, k) != getattr(y, k)}
        assert kinds in ({"shape"}, {"size"}), kinds
        changed |= kinds
        assert a.background == b.background
        edits = [op for op in difflib.SequenceMatcher(a=a.caption.split(), b=b.caption.split()).get_opcodes()
                 if op[0] != "equal"]
        assert len(edits) == 1, (a.caption, b.caption)  # one word (or one multi-word synonym) replaced
        assert not np.array_equal(a.image, b.image)
    assert changed == {"shape", "size"}


def test_batches_hold_twin_pairs_then_single_frames():
    from glscl_lite.pretrain import FrameCaptionBatches

    data = FrameCaptionBatches(seed=0, batch_size=8, image_size=64, context_length=32, start=0, stop=1, twins=0.5)
    images, ids, captions = data.batch(3)
    assert images.shape == (8, 64, 64, 3) and ids.shape == (8, 32)
    a, b = fw.make_twins("train", 0, 3 * 8 + 2, 64)
    assert captions[2:4] == [a.caption, b.caption]
    assert captions[4:] == [fw.make_frame("train", 0, 3 * 8 + i, 64).caption for i in range(4, 8)]


def test_minimal_sets_show_one_object_in_distinct_shapes_with_one_caption_word_changed():
    full = 0
    for i in range(12):
        frames = fw.make_minimal_set("train", 0, 8 * i, 64, ("shape",), 8)
        assert len(frames) == 8
        if not frames[0].objects:  # nothing to change: random frames stand in
            continue
        full += 1
        changed = {k for f in frames[1:] for k, (x, y) in enumerate(zip(frames[0].objects, f.objects)) if x != y}
        assert len(changed) == 1, changed  # the same object changes in every frame of the set
        (k,) = changed
        shapes = [f.objects[k].shape for f in frames]
        assert sorted(shapes) == sorted(syn.SHAPES)  # all eight shapes, each once
        assert len({(o.colour, o.size, o.position) for f in frames for o in (f.objects[k],)}) == 1
        for f in frames[1:]:
            edits = [op for op in difflib.SequenceMatcher(a=frames[0].caption.split(), b=f.caption.split()).get_opcodes()
                     if op[0] != "equal"]
            assert len(edits) == 1 and f.background == frames[0].background, (frames[0].caption, f.caption)
    assert full >= 6
    # a set of two is exactly a twin pair (so runs trained on twins keep their frames)
    for i in range(6):
        pair, twins = fw.make_minimal_set("train", 1, 2 * i, 64, ("shape", "size"), 2), fw.make_twins("train", 1, 2 * i, 64)
        assert [f.caption for f in pair] == [f.caption for f in twins]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(pair, twins))
    sizes = fw.make_minimal_set("train", 0, 3, 64, ("size",), 3)
    if sizes[0].objects and len(sizes[0].objects) == len(sizes[1].objects):
        assert len({f.objects for f in sizes}) == 3
    assert fw.max_set_size(("shape",)) == 8 and fw.max_set_size(("shape", "size")) == 3
    with pytest.raises(ValueError, match="2 to 3 frames, got 4"):
        fw.make_minimal_set("train", 0, 0, 64, ("shape", "size"), 4)


def test_position_sets_move_one_object_to_other_thirds_and_caption_positions():
    full = 0
    for i in range(12):
        frames = fw.make_minimal_set("train", 2, 9 * i, 64, ("position",), 9)
        assert len(frames) == 9
        if not frames[0].objects:  # nothing to move: random frames stand in
            continue
        full += 1
        changed = {k for f in frames[1:] for k, (x, y) in enumerate(zip(frames[0].objects, f.objects)) if x != y}
        assert len(changed) == 1, changed
        (k,) = changed
        assert len({f.objects[k].position for f in frames}) == 9  # every third of the frame once
        assert len({(f.objects[k].shape, f.objects[k].colour, f.objects[k].size) for f in frames}) == 1
        assert all(f.objects[k].position in f.caption for f in frames)  # positions always captioned
        for f in frames[1:]:
            assert not np.array_equal(f.image, frames[0].image)
            edits = [op for op in difflib.SequenceMatcher(a=frames[0].caption.split(), b=f.caption.split()).get_opcodes()
                     if op[0] != "equal"]
            old = " ".join(frames[0].caption.split()[edits[0][1]:edits[-1][2]])
            new = " ".join(f.caption.split()[edits[0][3]:edits[-1][4]])
            assert old in frames[0].objects[k].position and new in f.objects[k].position, (frames[0].caption, f.caption)
    assert full >= 6
    assert fw.max_set_size(("position",)) == 9 and fw.max_set_size(("shape", "position")) == 8
    # adding the attribute left the shape and size sets (and twins) exactly as they were drawn before
    assert fw.TWIN_ATTRIBUTES == ("shape", "size")
    with pytest.raises(ValueError, match="subset of"):
        fw.make_minimal_set("train", 0, 0, 64, ("colour",), 2)


def test_batches_hold_minimal_sets_then_single_frames_and_set_size_is_checked(tmp_path):
    from glscl_lite.pretrain import FrameCaptionBatches

    data = FrameCaptionBatches(seed=0, batch_size=20, image_size=64, context_length=32, start=0, stop=1, twins=0.8,
                               twin_attributes=("shape",), set_size=8)
    _, ids, captions = data.batch(1)
    assert ids.shape == (20, 32) and data.sets == 2
    assert captions[8:16] == [f.caption for f in fw.make_minimal_set("train", 0, 20 + 8, 64, ("shape",), 8)]
    assert captions[16:] == [fw.make_frame("train", 0, 20 + i, 64).caption for i in range(16, 20)]
    with pytest.raises(UserError, match=r"set_size must be in \[2, 3\]"):
        pretrain(PretrainSettings(**TINY, steps=3, set_size=8), tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()
    s = PretrainSettings(**TINY, steps=3)
    pretrain(s, tmp_path / "run", progress=False, workers=0)
    assert "set_size" not in json.loads((tmp_path / "run" / "settings.json").read_text())["settings"]
    sets = PretrainSettings(**TINY, steps=3, twins=1.0, twin_attributes=("shape",), set_size=8)
    with pytest.raises(UserError, match="settings.set_size"):
        pretrain(sets, tmp_path / "run", progress=False, workers=0)  # the same folder, other settings: refused


def test_mixed_batches_hold_shape_sets_then_size_twins_then_single_frames(tmp_path):
    from glscl_lite.pretrain import FrameCaptionBatches

    data = FrameCaptionBatches(seed=0, batch_size=24, image_size=64, context_length=32, start=0, stop=1, twins=2 / 3,
                               twin_attributes=("shape",), set_size=8, size_twins=1 / 6)
    _, ids, captions = data.batch(2)
    assert ids.shape == (24, 32) and (data.sets, data.size_pairs) == (2, 2)
    first = 2 * 24
    assert captions[8:16] == [f.caption for f in fw.make_minimal_set("train", 0, first + 8, 64, ("shape",), 8)]
    for j in range(2):  # size twins: the same words but the size word
        a, b = fw.make_minimal_set("train", 0, first + 16 + 2 * j, 64, ("size",), 2)
        assert captions[16 + 2 * j: 18 + 2 * j] == [a.caption, b.caption]
        if a.objects:  # one object changes, and only its size
            changed = [(x, y) for x, y in zip(a.objects, b.objects) if x != y]
            assert len(a.objects) == len(b.objects) and len(changed) == 1
            ((x, y),) = changed
            assert x.size != y.size and (x.shape, x.colour, x.position) == (y.shape, y.colour, y.position)
    assert captions[20:] == [fw.make_frame("train", 0, first + i, 64).caption for i in range(20, 24)]
    # more grouped frames than the batch holds, or fractions over 1: refused before anything is written
    with pytest.raises(UserError, match=r"size_twins must be a fraction in \[0, 1 - twins\]"):
        pretrain(PretrainSettings(**TINY, steps=3, twins=0.75, size_twins=0.5), tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()
    assert FrameCaptionBatches(0, 12, 64, 32, 0, 1, twins=1.0, twin_attributes=("shape",), set_size=8).sets == 1
    # a run without size twins keeps its fingerprint (the field is absent from its record)
    pretrain(PretrainSettings(**TINY, steps=3), tmp_path / "run", progress=False, workers=0)
    assert "size_twins" not in json.loads((tmp_path / "run" / "settings.json").read_text())["settings"]
    with pytest.raises(UserError, match="settings.size_twins"):
        pretrain(PretrainSettings(**TINY, steps=3, twins=0.5, size_twins=0.25), tmp_path / "run", progress=False,
                 workers=0)


def _said(caption: str, o: fw.FrameObject) -> set[str]:
    """Which of an object's attribute words a caption says (any synonym)."""
    words = {"size": syn.SIZE_WORDS[o.size], "colour": syn.COLOUR_WORDS[o.colour], "shape": syn.SHAPE_WORDS[o.shape]}
    return {a for a, ws in words.items() if any(f" {w} " in f" {caption} " for w in ws)}


def test_partial_captions_say_some_words_and_a_set_always_says_the_changed_one(tmp_path):
    from glscl_lite.pretrain import FrameCaptionBatches

    dropped = {"size": 0, "colour": 0, "shape": 0}
    no_background = full_words = partial_words = 0
    for i in range(80):
        full, part = fw.make_frame("train", 2, i, 64), fw.make_frame("train", 2, i, 64, partial=1.0)
        assert fw.make_frame("train", 2, i, 64, partial=0.0).caption == full.caption  # 0: the captions of before
        assert np.array_equal(part.image, full.image) and part.objects == full.objects
        if len(part.objects) == 1:  # one object: its phrase says a non-empty subset of its words
            (o,) = part.objects
            said = _said(part.caption, o)
            assert said, part.caption
            for a in set(dropped) - said:
                dropped[a] += 1
            if "shape" not in said:
                assert any(f" {n}" in part.caption for n in syn.GENERIC_NOUNS), part.caption
        no_background += part.caption.split()[-1] != full.caption.split()[-1]  # the background phrase ends a caption
        full_words, partial_words = full_words + len(full.caption.split()), partial_words + len(part.caption.split())
    assert min(dropped.values()) >= 3 and no_background >= 10 and partial_words < 0.85 * full_words
    sets = 0
    for i in range(16):
        frames = fw.make_minimal_set("train", 2, 8 * i, 64, ("shape",), 8, partial=1.0)
        if not frames[0].objects:
            continue
        sets += 1
        (k,) = {k for f in frames[1:] for k, (x, y) in enumerate(zip(frames[0].objects, f.objects)) if x != y}
        for f in frames:  # the changed shape is said in every frame, and only it changes
            assert "shape" in _said(f.caption, f.objects[k]), f.caption
        for f in frames[1:]:
            edits = [op for op in difflib.SequenceMatcher(a=frames[0].caption.split(), b=f.caption.split()).get_opcodes()
                     if op[0] != "equal"]
            assert len(edits) == 1, (frames[0].caption, f.caption)
    assert sets >= 8
    data = FrameCaptionBatches(0, 12, 64, 32, 0, 1, twins=0.5, partial_captions=0.5)
    _, _, captions = data.batch(1)
    assert captions[6:] == [fw.make_frame("train", 0, 12 + i, 64, partial=0.5).caption for i in range(6, 12)]
    with pytest.raises(UserError, match=r"partial_captions must be a fraction in \[0, 1\]"):
        pretrain(PretrainSettings(**TINY, steps=3, partial_captions=1.5), tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()
    pretrain(PretrainSettings(**TINY, steps=3), tmp_path / "run", progress=False, workers=0)
    assert "partial_captions" not in json.loads((tmp_path / "run" / "settings.json").read_text())["settings"]
    with pytest.raises(UserError, match="settings.partial_captions"):
        pretrain(PretrainSettings(**TINY, steps=3, partial_captions=0.5), tmp_path / "run", progress=False, workers=0)


def test_zero_shot_frames_show_one_object_on_a_named_scene():
    frames = fw.zero_shot_frames(12, 64, seed=0)
    assert all(len(f.objects) == 1 and f.background in syn.SCENE_BACKGROUNDS for f in frames)


def test_frame_streams_are_not_corpus_streams():
    corpus = syn.scene_rng(0, 5, 0).integers(1 << 30, size=4)
    assert not np.array_equal(corpus, fw.frame_rng("train", 0, 5).integers(1 << 30, size=4))
    assert not np.array_equal(fw.frame_rng("eval", 0, 5).integers(1 << 30, size=4),
                              fw.frame_rng("train", 0, 5).integers(1 << 30, size=4))


# ---------------------------------------------------------------------------------- pretraining
def test_settings_are_checked_before_anything_is_written(tmp_path):
    with pytest.raises(UserError, match="lr must be a positive"):
        pretrain(PretrainSettings(lr=float("nan")), tmp_path / "a", progress=False)
    with pytest.raises(UserError, match="twins must be a fraction"):
        pretrain(PretrainSettings(twins=1.5), tmp_path / "c", progress=False)
    with pytest.raises(UserError, match="warmup"):
        pretrain(PretrainSettings(steps=5, warmup=5), tmp_path / "b", progress=False)
    assert not any((tmp_path / n).exists() for n in "abc")


def test_resume_after_interruption_gives_the_same_weights(tmp_path):
    s = PretrainSettings(steps=6, **TINY)
    threads = torch.get_num_threads()
    pretrain(s, tmp_path / "straight", progress=False, workers=0, checkpoint_every=2, log_every=1, threads=1)
    assert torch.get_num_threads() == threads  # --threads applies to the call only
    pretrain(s, tmp_path / "resumed", progress=False, workers=0, checkpoint_every=2, log_every=1, threads=1,
             max_cpu_seconds=1e-9)  # stops after its first step, with a checkpoint
    assert read_log(tmp_path / "resumed") == [] or read_log(tmp_path / "resumed")[-1]["step"] == 1
    pretrain(s, tmp_path / "resumed", progress=False, workers=0, checkpoint_every=2, log_every=1, threads=1)
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["loss"] for r in read_log(tmp_path / "straight")] == [r["loss"] for r in read_log(tmp_path / "resumed")]
    with pytest.raises(UserError, match="settings.steps: recorded 6, now 7"):
        pretrain(PretrainSettings(steps=7, **TINY), tmp_path / "straight", progress=False, workers=0)


def test_rendering_workers_share_the_steps_and_train_the_same_weights(tmp_path):
    """Several rendering processes split the steps between them (each step once, in order), so the
    number of workers changes nothing in what is learned."""
    from torch.utils.data import DataLoader

    from glscl_lite.pretrain import FrameCaptionBatches

    data = FrameCaptionBatches(seed=0, batch_size=4, image_size=64, context_length=32, start=2, stop=7, twins=0.5)
    seen = [ids for _, ids in DataLoader(data, batch_size=None, num_workers=3)]
    assert len(seen) == 5
    for step, ids in zip(range(2, 7), seen):
        assert torch.equal(ids, data.batch(step)[1]), step
    s = PretrainSettings(steps=4, **TINY)
    pretrain(s, tmp_path / "w0", progress=False, workers=0, threads=1)
    pretrain(s, tmp_path / "w3", progress=False, workers=3, threads=1)
    a = torch.load(tmp_path / "w0" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "w3" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert {r["device"] for r in read_log(tmp_path / "w3")} == {"cpu"}


def test_device_is_checked_before_anything_is_written(tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            pretrain(PretrainSettings(steps=3, **TINY), tmp_path / "a", progress=False, device="cuda")
    with pytest.raises(UserError, match="device must be cpu, cuda"):
        pretrain(PretrainSettings(steps=3, **TINY), tmp_path / "a", progress=False, device="tpu")
    assert not (tmp_path / "a").exists()


def test_export_refuses_an_unfinished_run_and_records_the_hash(tmp_path):
    s = PretrainSettings(steps=3, **TINY)
    pretrain(s, tmp_path / "run", progress=False, workers=0, max_cpu_seconds=1e-9, threads=1)
    with pytest.raises(UserError, match="stopped at step 1 of 3"):
        export_weights(tmp_path / "run")
    pretrain(s, tmp_path / "run", progress=False, workers=0, threads=1)
    dest = export_weights(tmp_path / "run")
    record = json.loads((tmp_path / "run" / "weights.json").read_text())
    from glscl_lite.provenance import file_sha256

    assert record["sha256"] == file_sha256(dest)["sha256"] and record["steps_done"] == 3
    assert all(v.dtype == torch.float16 for v in torch.load(dest).values() if v.is_floating_point())


@pytest.mark.slow
def test_short_pretraining_lifts_zero_shot_accuracy_well_above_chance(tmp_path):
    """80 steps of batch 32 on the tiny config (under a CPU minute): the background, the first
    attribute CLIP's objective picks up here, goes from chance (12.5 %) to far above it."""
    from glscl_lite.model.standin import load_standin
    from glscl_lite.zeroshot import CHANCE, zero_shot

    s = PretrainSettings(model="glscl-tiny", steps=80, batch_size=32, lr=2e-3, warmup=10)
    before = zero_shot(build_model(s), n_frames=200)
    pretrain(s, tmp_path / "run", progress=False, workers=0)
    export_weights(tmp_path / "run")
    after = zero_shot(load_standin(tmp_path / "run"), n_frames=200)
    print("zero-shot before", before, "after", after)
    assert before["background"] < 2 * CHANCE["background"]
    assert after["background"] >= 4 * CHANCE["background"], after


# ---------------------------------------------------------------------------------- shipped stand-in
def test_every_shipped_standin_is_found_by_its_model_name():
    from glscl_lite.model.standin import DEFAULT_MODEL, shipped_models

    assert DEFAULT_MODEL in shipped_models()
    assert "glscl-synthetic-hybrid-head" not in shipped_models()        # the trained GLSCL head is not a stand-in


def assert_reaches_recorded(fresh: dict[str, float], recorded: dict[str, float], n: int) -> None:
    """Every attribute on ``n`` fresh frames within 4 binomial standard errors of its recorded accuracy."""
    for attr, acc in recorded.items():
        se = 100 * max(np.sqrt(acc / 100 * (1 - acc / 100) / n), 1 / n)
        assert fresh[attr] >= acc - 4 * se, (attr, fresh[attr], acc)


@pytest.mark.parametrize("name", __import__("glscl_lite.model.standin", fromlist=["x"]).shipped_models())
def test_shipped_weights_load_offline_and_reach_their_recorded_accuracy(name):
    """Fresh frames (seed 1; the record used seed 0): every attribute within 4 binomial standard
    errors of its recorded accuracy, and at the issue's goals' order of magnitude."""
    from glscl_lite.model.standin import load_standin, shipped_record
    from glscl_lite.zeroshot import zero_shot

    record = shipped_record(model=name)
    model = load_standin(model=name)
    n = 300
    fresh = zero_shot(model, n_frames=n, seed=1)
    assert_reaches_recorded(fresh, record["zeroshot"]["zero_shot"], n)


FORMER_HYBRID = Path(__file__).resolve().parents[1] / "docs/results/pretrain/hybrid"


def test_the_shipped_hybrid_is_the_partial_caption_standin_and_reads_shape_on_fresh_frames():
    """The package's hybrid stand-in is the partial-caption one (stop 24): on frames of a stream none
    of its reports used (seed 10) shape is read far above the former hybrid's 50 %."""
    from glscl_lite.model.standin import load_standin, shipped_record
    from glscl_lite.zeroshot import zero_shot

    record = shipped_record(model="glscl-synthetic-hybrid")
    assert record["settings"]["partial_captions"] == 0.5 and record["settings"]["size_twins"] == 0.25
    fresh = zero_shot(load_standin(model="glscl-synthetic-hybrid"), n_frames=300, seed=10)
    assert fresh["shape"] >= 70 and fresh["colour"] >= 90 and fresh["size"] >= 80, fresh


def test_the_former_shipped_hybrid_loads_by_path_and_reaches_its_recorded_accuracy():
    """The hybrid shipped until stop 24 is kept beside its results as a pretraining folder (weights,
    record, log): it loads by path with its sha256 checked and, on fresh frames (seed 10), reads every
    attribute within 4 binomial standard errors of its recorded accuracy."""
    from glscl_lite.model.standin import load_standin, shipped_record
    from glscl_lite.provenance import file_sha256
    from glscl_lite.zeroshot import zero_shot

    record = shipped_record(FORMER_HYBRID)
    assert file_sha256(FORMER_HYBRID / "weights.fp16.pt")["sha256"] == record["sha256"]
    assert record["sha256"] != shipped_record(model="glscl-synthetic-hybrid")["sha256"]
    n = 300
    fresh = zero_shot(load_standin(FORMER_HYBRID), n_frames=n, seed=10)
    assert_reaches_recorded(fresh, record["zeroshot"]["zero_shot"], n)


def test_shipped_weights_with_a_wrong_hash_or_model_are_refused(tmp_path):
    from glscl_lite.model.backbone import create_clip
    from glscl_lite.model.standin import load_into, load_standin, standin_files

    path, record = standin_files()
    shutil.copy(path, tmp_path / "w.fp16.pt")
    shutil.copy(record, tmp_path / "w.json")
    with open(tmp_path / "w.fp16.pt", "r+b") as f:
        f.seek(-10, 2)
        f.write(b"0123456789")
    with pytest.raises(UserError, match="sha256"):
        load_standin(tmp_path / "w.fp16.pt")
    with pytest.raises(UserError, match="ships no stand-in weights for base_encoder='glscl-tiny'"):
        create_clip("glscl-tiny", "synthetic")
    with pytest.raises(UserError, match="stand-in CLIP for base_encoder='glscl-synthetic-hybrid'"):  # a folder made for another model
        load_into(create_clip("glscl-tiny", None), path, "glscl-tiny")
    with pytest.raises(UserError, match="not found"):
        load_standin(tmp_path / "missing.pt")


def test_backbone_with_pretrained_synthetic_uses_the_shipped_weights():
    from glscl_lite.model.backbone import CLIPBackbone
    from glscl_lite.model.standin import load_standin, shipped_record

    name = shipped_record()["settings"]["model"]
    bb = CLIPBackbone(name, pretrained="synthetic")
    ref = load_standin()
    for (k, v), (k2, v2) in zip(bb.clip.state_dict().items(), ref.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k


def test_init_shipped_continues_the_packages_stand_in_under_a_portable_name(tmp_path):
    from glscl_lite.model.standin import shipped_record, shipped_weights

    s = PretrainSettings(model="glscl-synthetic", steps=2, warmup=1, batch_size=4, seed=5, init="shipped")
    model = build_model(s)
    shipped = torch.load(shipped_weights("glscl-synthetic"))
    assert all(torch.equal(v, shipped[k].float()) for k, v in model.state_dict().items())
    pretrain(s, tmp_path / "run", progress=False, workers=0, threads=1)
    export_weights(tmp_path / "run")
    record = json.loads((tmp_path / "run" / "weights.json").read_text())
    assert record["settings"]["init"] == "shipped"                    # no path of the machine it ran on
    assert record["init_from"]["sha256"] == shipped_record(model="glscl-synthetic")["sha256"]
    with pytest.raises(UserError, match="init: no stand-in weights"):  # a model the package ships no weights for
        PretrainSettings(**TINY, steps=3, init="shipped").check()


def test_zeroshot_cli_writes_the_contract_json(tmp_path):
    from glscl_lite.cli import main

    assert main(["zeroshot", "--frames", "40", "--json", str(tmp_path / "z.json")]) == 0
    report = json.loads((tmp_path / "z.json").read_text())
    assert set(report["zero_shot"]) == {"colour", "shape", "size", "background"}
    assert set(report["retrieval"]) == {"t2i_R1", "i2t_R1"}
    assert set(report["zero_shot_joint"]) == set(report["zero_shot"])
    assert all(0 <= v <= 100 for v in [*report["zero_shot"].values(), *report["retrieval"].values()])


def test_joint_reading_takes_the_attributes_of_the_best_prompt_and_reads_the_hybrid_better():
    """The ``joint`` reading equals a brute-force argmax over the 1,920 prompts; on the former shipped
    hybrid it reads shape far better than the ensemble (documented: 75 against 50 % on 1,000 frames)."""
    from glscl_lite.data.frame_world import zero_shot_frames
    from glscl_lite.model.standin import load_standin
    from glscl_lite.zeroshot import _encode_images, _encode_texts, prompt_table, zero_shot, zero_shot_predictions

    model = load_standin(FORMER_HYBRID)
    n = 200
    joint = zero_shot_predictions(model, n, seed=1, reading="joint")
    table = prompt_table()
    frames = zero_shot_frames(n, 64, seed=1)
    sim = (_encode_images(model, torch.from_numpy(np.stack([f.image for f in frames])))
           @ _encode_texts(model, [r["prompt"] for r in table]).T)
    best = [table[i] for i in sim.argmax(1).tolist()]
    for attr in ("colour", "shape", "size", "background"):
        assert joint[attr][0] == [b[attr] for b in best]
    assert joint["shape"][1] == [f.objects[0].shape for f in frames]
    ensemble, by_joint = zero_shot(model, n, seed=1)["shape"], zero_shot(model, n, seed=1, reading="joint")["shape"]
    assert by_joint >= ensemble + 10, (ensemble, by_joint)
    with pytest.raises(ValueError, match="reading must be one of"):
        zero_shot_predictions(model, 2, reading="best")


def test_twin_attributes_choose_what_twins_change_and_old_folders_keep_their_fingerprint(tmp_path):
    for i in range(12):
        a, b = fw.make_twins("train", 0, 2 * i, 64, ("shape",))
        if len(a.objects) == len(b.objects) and a.objects != b.objects:   # not a random twin
            changed = [(x, y) for x, y in zip(a.objects, b.objects) if x != y]
            assert len(changed) == 1 and changed[0][0].shape != changed[0][1].shape
            assert changed[0][0].size == changed[0][1].size
    with pytest.raises(ValueError, match="twin attributes"):
        fw.make_twins("train", 0, 0, 64, ("colour",))
    with pytest.raises(UserError, match="twin_attributes"):
        PretrainSettings(**TINY, steps=3, twin_attributes=()).check()
    s = PretrainSettings(**TINY, steps=3)
    pretrain(s, tmp_path / "run", progress=False)
    recorded = json.loads((tmp_path / "run" / "settings.json").read_text())["settings"]
    assert "twin_attributes" not in recorded                   # the default is not recorded: older folders resume
    shape_only = PretrainSettings(**TINY, steps=3, twin_attributes=("shape",))
    with pytest.raises(UserError, match=r"settings.twin_attributes: recorded \(absent: the default\), now \[.shape.\]"):
        pretrain(shape_only, tmp_path / "run", progress=False)  # the same folder, other settings: refused
    pretrain(PretrainSettings(**TINY, steps=3, twin_attributes=("shape",)), tmp_path / "shape", progress=False,
             max_cpu_seconds=0.0)                               # stops after its first step
    pretrain(shape_only, tmp_path / "shape", progress=False)     # and resumes with the same settings
    assert json.loads((tmp_path / "shape" / "settings.json").read_text())["settings"]["twin_attributes"] == ["shape"]
    assert read_log(tmp_path / "shape")[-1]["step"] == 3


def test_init_continues_from_finished_weights_and_records_them(tmp_path):
    first = PretrainSettings(steps=3, **TINY)
    pretrain(first, tmp_path / "first", progress=False, workers=0, threads=1)
    weights = export_weights(tmp_path / "first")
    with pytest.raises(UserError, match="init: no stand-in weights"):
        pretrain(PretrainSettings(steps=3, init=str(tmp_path / "nowhere"), **TINY), tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
    cont = PretrainSettings(steps=3, seed=1, init=str(tmp_path / "first"), **TINY)  # the folder or its file
    model = build_model(cont)
    shipped = torch.load(weights)
    for k, v in model.state_dict().items():  # starts from the fp16 weights, not from random ones
        assert torch.equal(v, shipped[k].float()), k
    pretrain(cont, tmp_path / "cont", progress=False, workers=0, threads=1)
    recorded = json.loads((tmp_path / "cont" / "settings.json").read_text())
    assert recorded["settings"]["init"] == str(tmp_path / "first")
    assert recorded["provenance"]["init"]["sha256"] == json.loads((tmp_path / "first" / "weights.json").read_text())["sha256"]
    export_weights(tmp_path / "cont")  # its record carries the record of the weights it continued
    chain = json.loads((tmp_path / "cont" / "weights.json").read_text())["init_from"]
    assert chain["settings"]["seed"] == 0 and chain["steps_done"] == 3 and "init_from" not in chain
    # other weights behind the same path: the folder refuses to resume from them
    shipped[next(iter(shipped))] += 1
    torch.save(shipped, weights)
    again = PretrainSettings(steps=3, seed=1, init=str(tmp_path / "first"), **TINY)
    with pytest.raises(UserError, match="sha256 .* differs from the recorded"):  # a replaced file
        pretrain(again, tmp_path / "cont", progress=False, workers=0)
    from glscl_lite.provenance import file_sha256

    record = json.loads((tmp_path / "first" / "weights.json").read_text())
    record["sha256"] = file_sha256(weights)["sha256"]  # as if re-exported from other weights
    (tmp_path / "first" / "weights.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"built from other inputs .*\(init /.*: recorded"):
        pretrain(PretrainSettings(steps=3, seed=1, init=str(tmp_path / "first"), **TINY), tmp_path / "cont",
                 progress=False, workers=0)
    # weights of another model config are refused before anything is written
    with pytest.raises(UserError, match="stand-in CLIP for base_encoder='glscl-tiny'|not of model|made for"):
        pretrain(PretrainSettings(steps=3, init=str(tmp_path / "first"), model="glscl-synthetic", batch_size=16, warmup=1),
                 tmp_path / "y", progress=False)
    assert not (tmp_path / "y").exists()
