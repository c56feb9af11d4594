"""The synthetic corpus: MSR-VTT layout, counts, determinism, decodability, caption content,
hard negatives, and caption lengths against the real MSR-VTT test captions."""
from __future__ import annotations

import csv
import json
import re
import statistics
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from glscl_lite.data import synthetic as S
from glscl_lite.data.synthetic import Scene, generate_corpus
from glscl_lite.utils import OutputError

N_VIDEOS = 48
VIDEO_KEYS = {"category", "url", "video_id", "start time", "end time", "split", "id"}
SENTENCE_KEYS = {"caption", "video_id", "sen_id"}
CSV_FILES = ("MSRVTT_train.9k.csv", "MSRVTT_train.7k.csv", "MSRVTT_JSFUSION_test.csv")
REAL_TEST_CSV = [
    Path(__file__).resolve().parents[2] / "shared" / "data" / "msrvtt" / "MSRVTT_JSFUSION_test.csv",
    Path("/work/shared/data/msrvtt/MSRVTT_JSFUSION_test.csv"),
]


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _decode(path: Path):
    import decord

    vr = decord.VideoReader(str(path))
    return vr, vr.get_batch(list(range(len(vr)))).asnumpy()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    summary = generate_corpus(out, n_videos=N_VIDEOS, seed=0, workers=2, progress=False)
    data = json.loads((out / "MSRVTT_data.json").read_text())
    return out, summary, data


@pytest.fixture(scope="module")
def captions_by_video(corpus):
    _, _, data = corpus
    by: dict[str, list[str]] = {}
    for s in data["sentences"]:
        by.setdefault(s["video_id"], []).append(s["caption"])
    return by


# ------------------------------------------------------------------------------------ layout
def test_layout_and_field_names(corpus):
    out, summary, data = corpus
    assert set(data) == {"info", "videos", "sentences"}
    assert sorted(p.name for p in out.iterdir()) == sorted(["MSRVTT_data.json", "videos", "probes", *CSV_FILES])
    assert [v["video_id"] for v in data["videos"]] == [f"video{i}" for i in range(N_VIDEOS)]
    for i, v in enumerate(data["videos"]):
        assert set(v) - {"synthetic"} == VIDEO_KEYS
        assert v["id"] == i and isinstance(v["category"], int) and 0 <= v["category"] < 20
        assert isinstance(v["url"], str) and v["split"] in ("train", "validate", "test")
        assert isinstance(v["start time"], float) and isinstance(v["end time"], float)
        assert 6.0 <= v["end time"] - v["start time"] <= 16.0
        assert (out / "videos" / f"{v['video_id']}.mp4").stat().st_size > 0
    for s in data["sentences"]:
        assert set(s) == SENTENCE_KEYS
    assert _read_csv(out / "MSRVTT_train.9k.csv")[0] == ["video_id"]
    assert _read_csv(out / "MSRVTT_train.7k.csv")[0] == ["video_id"]
    assert _read_csv(out / "MSRVTT_JSFUSION_test.csv")[0] == ["key", "vid_key", "video_id", "sentence"]
    assert summary["n_videos"] == N_VIDEOS and summary["n_captions"] == 20 * N_VIDEOS
    assert summary["videos_per_minute"] > 0 and not summary["reused"]
    json.dumps(summary)


def test_counts_and_splits(corpus, captions_by_video):
    out, summary, data = corpus
    assert all(len(captions_by_video[f"video{i}"]) == 20 for i in range(N_VIDEOS))
    assert [s["sen_id"] for s in data["sentences"]] == list(range(20 * N_VIDEOS))
    nine = [r[0] for r in _read_csv(out / "MSRVTT_train.9k.csv")[1]]
    seven = [r[0] for r in _read_csv(out / "MSRVTT_train.7k.csv")[1]]
    test_rows = _read_csv(out / "MSRVTT_JSFUSION_test.csv")[1]
    test = [r[2] for r in test_rows]
    assert len(test) == 8 == summary["n_test"] and len(nine) == 40 == summary["n_train"]
    assert set(nine) | set(test) == {f"video{i}" for i in range(N_VIDEOS)} and not set(nine) & set(test)
    assert set(seven) < set(nine) and len(seven) == round(40 * 7010 / 9000) == summary["n_train_7k"]
    split = {v["video_id"]: v["split"] for v in data["videos"]}
    seven_splits = {split[v] for v in seven}
    assert seven_splits == {"train", "validate"}
    assert {split[v] for v in test} == {"test"}
    for i, (key, vid_key, video_id, sentence) in enumerate(test_rows):
        assert key == f"ret{i}" and vid_key == "msr" + video_id[len("video"):]
        assert sentence in captions_by_video[video_id]


def test_durations_and_frames(corpus):
    _, summary, data = corpus
    durations = [v["end time"] - v["start time"] for v in data["videos"]]
    under = sum(d < 12 for d in durations)
    assert 0 < under < len(durations) / 2, "some videos under 12 s, most longer"
    assert summary["videos_under_12s"] == under
    for v in data["videos"]:
        assert v["synthetic"]["n_frames"] == round(v["end time"] * summary["fps"])


# ------------------------------------------------------------------------------- determinism
def test_determinism_and_worker_independence(corpus, tmp_path):
    out, _, data = corpus
    again = tmp_path / "again"
    generate_corpus(again, n_videos=N_VIDEOS, seed=0, workers=1, progress=False)
    for name in ("MSRVTT_data.json", *CSV_FILES):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    for v in data["videos"][::6]:
        _, a = _decode(out / "videos" / f"{v['video_id']}.mp4")
        _, b = _decode(again / "videos" / f"{v['video_id']}.mp4")
        assert np.array_equal(a, b), v["video_id"]

    other = tmp_path / "other"
    generate_corpus(other, n_videos=N_VIDEOS, seed=1, progress=False)
    assert (other / "MSRVTT_data.json").read_bytes() != (out / "MSRVTT_data.json").read_bytes()
    _, a = _decode(out / "videos" / "video0.mp4")
    _, b = _decode(other / "videos" / "video0.mp4")
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_reuse_and_regenerate(tmp_path):
    out = tmp_path / "small"
    first = generate_corpus(out, n_videos=16, seed=3, progress=False)
    assert not first["reused"]
    again = generate_corpus(out, n_videos=16, seed=3, progress=False)
    assert again["reused"] and again["seconds"] < first["seconds"]
    changed = generate_corpus(out, n_videos=16, seed=4, progress=False)
    assert not changed["reused"]
    info = json.loads((out / "MSRVTT_data.json").read_text())["info"]
    assert info["generator"]["seed"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left"


def test_output_errors(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=re.escape(str(blocker / "corpus"))):
        generate_corpus(blocker / "corpus", n_videos=16, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        generate_corpus(foreign, n_videos=16, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(S.SynthesisError):
        generate_corpus(tmp_path / "odd", n_videos=16, size=(161, 120), progress=False)
    with pytest.raises(S.SynthesisError):
        generate_corpus(tmp_path / "few", n_videos=4, progress=False)


# ----------------------------------------------------------------------------------- decoding
def test_decord_decodes_every_video(corpus):
    out, summary, data = corpus
    width, height = map(int, summary["size"].split("x"))
    for v in data["videos"]:
        vr, frames = _decode(out / "videos" / f"{v['video_id']}.mp4")
        assert len(vr) == v["synthetic"]["n_frames"]
        assert vr.get_avg_fps() == pytest.approx(summary["fps"])
        assert frames.shape == (len(vr), height, width, 3)


def test_decoded_frames_match_rendering(corpus):
    out, summary, data = corpus
    size = tuple(map(int, summary["size"].split("x")))
    errors = []
    for v in data["videos"]:
        scene = Scene.from_dict(v["synthetic"]["scene"])
        drawn = S.render_video(scene, size, summary["fps"]).astype(np.int16)
        _, decoded = _decode(out / "videos" / f"{v['video_id']}.mp4")
        assert decoded.shape == drawn.shape
        errors.append(np.abs(decoded.astype(np.int16) - drawn).mean())
        # lossy H.264 + 4:2:0 chroma: thin brick mortar lines cost the most (about 6.5)
        assert errors[-1] < 8.0, v["video_id"]
    assert np.mean(errors) < 4.0


def test_224_class_size(tmp_path):
    scene = S.sample_scene(S.scene_rng(0, 5))
    frames = S.render_video(scene, (298, 224), 4)
    S.encode_video(frames, tmp_path / "v.mp4", 4)
    vr, decoded = _decode(tmp_path / "v.mp4")
    assert decoded.shape == (scene.n_frames(4), 224, 298, 3)
    assert np.abs(decoded.astype(np.int16) - frames.astype(np.int16)).mean() < 6.0


# ----------------------------------------------------------------------------------- captions
def test_captions_are_msrvtt_like(corpus, captions_by_video):
    _, _, data = corpus
    for s in data["sentences"]:
        c = s["caption"]
        assert c and c == c.lower() and c == c.strip() and not c.endswith(".") and "  " not in c
        assert 3 <= len(c.split()) <= 30
    for vid, caps in captions_by_video.items():
        assert len(set(caps)) >= 18, f"{vid}: too many duplicate captions"


def test_partial_relevance_and_temporal_captions(corpus, captions_by_video):
    _, _, data = corpus
    partial = temporal = 0
    for v in data["videos"]:
        syn = v["synthetic"]
        n_obj = len(syn["scene"]["objects"])
        caps = captions_by_video[v["video_id"]]
        assert set(syn["caption_kinds"]) <= set(S.CAPTION_KINDS) and "global" in syn["caption_kinds"]
        for text, kind, objs in zip(caps, syn["caption_kinds"], syn["caption_objects"]):
            if kind in ("object", "moment") and n_obj > 1 and len(objs) == 1:
                partial += 1
            if kind == "temporal":
                temporal += 1
                assert re.search(r"\b(first|then|after|before|later|until)\b", text), text
    assert partial >= 100 and temporal >= 50


def _phrase_in(phrase: str, text: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}\b", text) is not None


def test_captions_agree_with_scene(corpus, captions_by_video):
    """No caption names a shape or colour that its video does not show."""
    _, _, data = corpus
    colour_tokens = {tok for words in S.COLOUR_WORDS.values() for w in words for tok in w.split()}
    colour_tokens -= {"dark", "light", "pale"}
    for v in data["videos"]:
        scene = Scene.from_dict(v["synthetic"]["scene"])
        shapes = {o.shape for o in scene.objects}
        names = {o.colour for o in scene.objects} | {e.colour for e in scene.events if e.colour}
        names |= set(scene.background.colours)
        allowed = {tok for n in names for w in S.COLOUR_WORDS[n] for tok in w.split()}
        allowed |= set(S.SCENE_COLOUR_WORDS.get(scene.background.kind, ()))
        for text in captions_by_video[v["video_id"]]:
            for shape, words in S.SHAPE_WORDS.items():
                if shape not in shapes:
                    assert not any(_phrase_in(w, text) for w in words), (v["video_id"], text)
            assert not (set(text.split()) & colour_tokens) - allowed, (v["video_id"], text)


def test_hard_negatives_differ_in_exactly_one_attribute(corpus):
    out, _, data = corpus
    pairs = data["info"]["hard_negative_pairs"]
    assert pairs, "no hard negatives"
    by_id = {v["video_id"]: v for v in data["videos"]}
    test_ids = {r[2] for r in _read_csv(out / "MSRVTT_JSFUSION_test.csv")[1]}
    assert any(a in test_ids for a, _, _ in pairs), "no hard negatives among the test videos"
    for a, b, attribute in pairs:
        assert attribute in S.HARD_NEGATIVE_ATTRIBUTES
        assert (a in test_ids) == (b in test_ids), "pair crosses the train/test split"
        assert by_id[b]["synthetic"]["hard_negative_of"] == a
        assert by_id[b]["synthetic"]["differs_in"] == attribute
        sa, sb = (Scene.from_dict(by_id[x]["synthetic"]["scene"]) for x in (a, b))
        diff = S.scene_differences(sa, sb)
        assert diff, (a, b)
        if attribute in ("colour", "shape", "motion"):
            assert len(diff) == 1 and re.fullmatch(rf"objects\.\d+\.{attribute}", diff[0]), diff
            k = int(diff[0].split(".")[1])
            if attribute == "motion":
                assert S.MOTION_FLIPS[sa.objects[k].motion] == sb.objects[k].motion
        elif attribute == "background":
            assert all(d.startswith("background.") for d in diff) and "background.seed" not in diff
            assert sa.background.kind != sb.background.kind
        else:
            assert all(re.fullmatch(r"events\.\d+\.(time|kind|obj|colour)", d) for d in diff), diff
            key = lambda e: (e.kind, e.obj, e.colour)  # noqa: E731
            assert sorted(map(key, sa.events)) == sorted(map(key, sb.events))
            assert sorted(e.time for e in sa.events) == sorted(e.time for e in sb.events)
            assert [e.obj for e in sa.events] != [e.obj for e in sb.events]


def test_scene_round_trip_and_hard_negative_kinds():
    for i in range(30):
        for attribute in S.HARD_NEGATIVE_ATTRIBUTES:
            base = S.sample_scene(S.scene_rng(7, i), require=attribute)
            assert Scene.from_dict(base.to_dict()) == base
            copy = S.make_hard_negative(base, attribute, S.scene_rng(7, i, 1))
            assert S.scene_differences(base, copy)


def test_caption_lengths_match_real_msrvtt(corpus):
    path = next((p for p in REAL_TEST_CSV if p.is_file()), None)
    if path is None:
        pytest.skip("real MSR-VTT split files (../shared) not available")
    with open(path, newline="") as f:
        real = [len(r["sentence"].split()) for r in csv.DictReader(f)]
    _, _, data = corpus
    ours = [len(s["caption"].split()) for s in data["sentences"]]
    assert abs(statistics.mean(ours) - statistics.mean(real)) <= 1.0
    assert abs(statistics.median(ours) - statistics.median(real)) <= 1.0
    assert abs(np.percentile(ours, 90) - np.percentile(real, 90)) <= 2.5
    assert abs(np.percentile(ours, 10) - np.percentile(real, 10)) <= 1.5
    assert abs(statistics.pstdev(ours) - statistics.pstdev(real)) <= 1.5
    # no single length dominates (template captions tend to pile up on a few lengths)
    assert max(Counter(ours).values()) / len(ours) < 0.2
