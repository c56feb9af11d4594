"""Diagnostic probes (moment, order, binding), caption semantics and the oracle, eval --probes."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from glscl_lite.data import synthetic as syn
from glscl_lite.data.caption_truth import (CaptionMeaning, caption_true_of, count_true, oracle_recall,
                                           scene_facts, traced_captions)
from glscl_lite.data.probes import PROBE_NAMES, probes_complete, read_probe_csv, scene_of
from glscl_lite.data.synthetic import Background, Event, Scene, SceneObject
from glscl_lite.errors import DataError
from glscl_lite.probes_eval import ProbeVideos, pair_accuracy, score_probes

ORDER_WORDS = {"before", "after", "first", "later"}


def _rows(corpus, name):
    with open(corpus / "probes" / f"{name}.csv", newline="") as f:
        return list(csv.DictReader(f))


def _test_ids(corpus):
    with open(corpus / "MSRVTT_JSFUSION_test.csv", newline="") as f:
        return [r["video_id"] for r in csv.DictReader(f)]


def _scenes_by_id(corpus):
    data = json.loads((corpus / "MSRVTT_data.json").read_text())
    return {v["video_id"]: Scene.from_dict(v["synthetic"]["scene"]) for v in data["videos"]}


# ------------------------------------------------------------------------------------ files
def test_probe_files_exist_and_use_test_scenes_only(corpus):
    test = _test_ids(corpus)
    data = json.loads((corpus / "MSRVTT_data.json").read_text())
    corpus_ids = {v["video_id"] for v in data["videos"]}
    assert probes_complete(corpus)
    headers = {"moment": ["video_id", "sentence", "kind", "source"],
               "order": ["pair", "video_id", "sentence", "source"],
               "binding": ["pair", "video_id", "sentence", "source"]}
    for name in PROBE_NAMES:
        with open(corpus / "probes" / f"{name}.csv", newline="") as f:
            assert next(csv.reader(f)) == headers[name]
        rows = _rows(corpus, name)
        assert {r["source"] for r in rows} <= set(test)  # test-split scenes only
        for r in rows:
            assert r["video_id"] not in corpus_ids and r["video_id"].startswith(f"probe_{name}_")
            assert (corpus / "videos" / f"{r['video_id']}.mp4").stat().st_size > 0
    moment = _rows(corpus, "moment")
    assert len(moment) == 2 * len(test) and [r["source"] for r in moment[::2]] == test
    assert [r["kind"] for r in moment] == ["moment", "full"] * len(test)
    n_pairs = math.ceil(len(test) / 2)
    for name in ("order", "binding"):
        rows = _rows(corpus, name)
        assert [int(r["pair"]) for r in rows] == [k for k in range(n_pairs) for _ in (0, 1)]
        assert all(a["video_id"].endswith("_a") and b["video_id"].endswith("_b")
                   and a["video_id"][:-2] == b["video_id"][:-2] and a["source"] == b["source"]
                   and a["sentence"] != b["sentence"] for a, b in zip(rows[::2], rows[1::2]))
    # nothing about probes leaks into the corpus annotations or split lists
    assert not any(v.startswith("probe_") for v in corpus_ids)
    assert "probe_" not in (corpus / "MSRVTT_train.9k.csv").read_text()


def test_missing_probes_are_named_with_the_command(tmp_path):
    from glscl_lite.data.probes import load_oracle

    with pytest.raises(DataError, match=r"order\.csv: probe file not found.*glscl-lite synth"):
        read_probe_csv(tmp_path, "order")
    with pytest.raises(DataError, match=r"oracle\.json: oracle file not found.*glscl-lite synth"):
        load_oracle(tmp_path)


def test_probes_are_deterministic_and_an_old_corpus_is_regenerated(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    syn.generate_corpus(a, n_videos=16, seed=3, workers=1, progress=False)
    syn.generate_corpus(b, n_videos=16, seed=3, workers=2, progress=False)
    for name in ("moment.csv", "order.csv", "binding.csv", "oracle.json", "info.json"):
        assert (a / "probes" / name).read_bytes() == (b / "probes" / name).read_bytes(), name
    summary = syn.generate_corpus(a, n_videos=16, seed=3, workers=1, progress=False)
    assert summary["reused"] and summary["probes"]["order_pairs"] == 4 and summary["probes"]["moment_videos"] == 8
    # a corpus whose probes are incomplete (e.g. written before probes existed) is not reused
    (a / "probes" / "oracle.json").unlink()
    assert syn.generate_corpus(a, n_videos=16, seed=3, workers=1, progress=False)["reused"] is False
    assert probes_complete(a)
    assert syn.generate_corpus(a, n_videos=16, seed=3, workers=1, progress=False)["reused"] is True
    # a corpus of generator version 1 (no probes) is replaced, not reused
    anno = a / "MSRVTT_data.json"
    data = json.loads(anno.read_text())
    data["info"]["generator"]["version"] = 1
    anno.write_text(json.dumps(data))
    assert syn.GENERATOR_VERSION == 2
    assert syn.generate_corpus(a, n_videos=16, seed=3, workers=1, progress=False)["reused"] is False
    assert (a / "probes" / "order.csv").read_bytes() == (b / "probes" / "order.csv").read_bytes()


# ------------------------------------------------------------------------------------ probe content
def _all_frames(path):
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_order_twin_is_the_reversed_video(corpus):
    from glscl_lite.data.video import read_frames

    rows = _rows(corpus, "order")
    for a, b in zip(rows[::2], rows[1::2]):
        fa = _all_frames(corpus / "videos" / f"{a['video_id']}.mp4").astype(int)
        fb = _all_frames(corpus / "videos" / f"{b['video_id']}.mp4").astype(int)
        assert fa.shape == fb.shape
        reversed_err = np.abs(fa - fb[::-1]).mean()
        assert reversed_err < 2.0 < np.abs(fa - fb).mean()  # H.264 noise only
        # 1-fps sampling of 12 frames picks mirrored positions: the twin's clip is the reversed clip
        sa, _ = read_frames(corpus / "videos" / f"{a['video_id']}.mp4", 12, 1)
        sb, _ = read_frames(corpus / "videos" / f"{b['video_id']}.mp4", 12, 1)
        assert np.abs(sa.astype(int) - sb[::-1].astype(int)).mean() < 2.0
        scene = scene_of(corpus, a["video_id"])
        (ev_a,), (ev_b,) = [[e for e in scene.events if e.obj == k] for k in (0, 1)]
        assert ev_a.kind == "disappears" and ev_b.kind == "appears" and ev_a.time < ev_b.time
        wa, wb = a["sentence"].split(), b["sentence"].split()
        assert sorted(wa) == sorted(wb) or {x for x in set(wa) ^ set(wb)} <= ORDER_WORDS


def test_order_source_reverses_real_frames_only(corpus):
    rows = _rows(corpus, "order")
    a, b = rows[0]["video_id"], rows[1]["video_id"]
    src = ProbeVideos(corpus / "videos", 12, 32, reverse_of={b: a})
    fa, ma = src.get(a)
    fb, mb = src.get(b)
    n = int(ma.sum())
    assert np.array_equal(ma, mb) and np.array_equal(fb[:n], fa[:n][::-1]) and not fb[n:].any()


def test_binding_twins_swap_colours(corpus):
    rows = _rows(corpus, "binding")
    for a, b in zip(rows[::2], rows[1::2]):
        sa, sb = scene_of(corpus, a["video_id"]), scene_of(corpus, b["video_id"])
        assert syn.scene_differences(sa, sb) == ["objects.0.colour", "objects.1.colour"]
        assert (sa.objects[0].colour, sa.objects[1].colour) == (sb.objects[1].colour, sb.objects[0].colour)
        assert sa.objects[0].shape != sa.objects[1].shape
        for caption, scene, other in ((a["sentence"], sa, sb), (b["sentence"], sb, sa)):
            meaning = _binding_meaning(caption, scene)
            assert caption_true_of(meaning, scene_facts(scene))
            assert not caption_true_of(meaning, scene_facts(other))
        assert sorted(a["sentence"].split()) == sorted(b["sentence"].split())


def _binding_meaning(caption: str, scene: Scene) -> CaptionMeaning:
    """Claims of a binding caption: each shape word with the colour word just before it."""
    words = caption.split()
    claims = []
    for k, obj in enumerate(scene.objects[:2]):
        at = next(i for i, w in enumerate(words) if w in syn.SHAPE_WORDS[obj.shape])
        colour = next(c for c, ws in syn.COLOUR_WORDS.items() if words[at - 1] in ws)
        claims += [("shape", k, obj.shape), ("colour", k, colour)]
    return CaptionMeaning(caption, "binding", tuple(claims))


def test_moment_probe_object_is_on_screen_at_most_a_third(corpus):
    scenes = _scenes_by_id(corpus)
    oracle = json.loads((corpus / "probes" / "oracle.json").read_text())["moment"]
    rows = _rows(corpus, "moment")
    for q, (m, full) in enumerate(zip(rows[::2], rows[1::2])):
        scene = scene_of(corpus, m["video_id"])
        base = scenes[m["source"]]
        assert scene.objects[:-1] == base.objects and set(base.events) < set(scene.events)
        k = len(scene.objects) - 1
        t = np.arange(scene.n_frames(syn.DEFAULT_FPS)) / syn.DEFAULT_FPS
        *_, visible = syn.object_track(scene.objects[k], scene.event_of(k), t, scene.duration)
        assert 0 < visible.mean() <= 1 / 3 + 1e-9
        assert scene.objects[k].shape not in {o.shape for o in base.objects}
        assert full["sentence"] in {c.text for c in traced_captions(base, _caption_rng(corpus, m["source"]))}
        assert oracle["moment"]["n_true"][q] >= 1 and oracle["full"]["n_true"][q] >= 1


def _caption_rng(corpus, video_id):
    seed = json.loads((corpus / "MSRVTT_data.json").read_text())["info"]["generator"]["seed"]
    return syn.scene_rng(seed, int(video_id[len("video"):]), 2)


# ------------------------------------------------------------------------------------ semantics / oracle
def test_traced_captions_equal_the_generator_and_are_true_of_their_scene():
    for i in range(40):
        scene = syn.sample_scene(syn.scene_rng(5, i, 0), require="order" if i % 4 == 0 else None)
        texts = [c.text for c in syn.make_captions(scene, syn.scene_rng(5, i, 2))]
        meanings = traced_captions(scene, syn.scene_rng(5, i, 2))
        assert [m.text for m in meanings] == texts
        assert all(caption_true_of(m, scene_facts(scene)) for m in meanings)


def test_hard_negative_twins_falsify_the_captions_that_name_the_change():
    hits = 0
    for i in range(30):
        attribute = syn.HARD_NEGATIVE_ATTRIBUTES[i % 5]
        base = syn.sample_scene(syn.scene_rng(6, i, 0), require=attribute)
        twin = syn.make_hard_negative(base, attribute, syn.scene_rng(6, i, 1))
        changed = {p.split(".")[1] for p in syn.scene_differences(base, twin) if p.startswith("objects.")}
        for m in traced_captions(base, syn.scene_rng(6, i, 2)):
            names = {c[0] for c in m.claims if len(c) == 3 and c[1] in {int(k) for k in changed}}
            if attribute == "colour" and "colour" in names:
                assert not caption_true_of(m, scene_facts(twin)), m
                hits += 1
            if attribute == "shape" and "shape" in names:
                assert not caption_true_of(m, scene_facts(twin)), m
                hits += 1
    assert hits > 20


def _obj(shape, colour, motion="still", size="medium", x=0.3, y=0.5):
    return SceneObject(shape=shape, colour=colour, size=size, motion=motion, x=x, y=y,
                       speed=0.03 if motion in syn.DIRECTIONAL_MOTIONS else 0.0, angle=0.0)


def test_oracle_counts_on_hand_built_scenes():
    grass, sky = Background("grass", seed=1), Background("sky", seed=2)
    red_left = _obj("circle", "red", "left")
    scenes = [
        Scene((red_left, _obj("square", "blue", x=0.7)), grass, (), 10.0),            # 0
        Scene((_obj("circle", "red", "right"), _obj("square", "blue", x=0.7)), grass, (), 10.0),  # 1
        Scene((_obj("circle", "blue", "left"), _obj("square", "red", x=0.7)), grass, (), 10.0),   # 2 swap
        Scene((red_left,), sky, (), 10.0),                                                # 3
        Scene((_obj("circle", "red"), _obj("star", "yellow", x=0.7)), grass,            # 4 events
              (Event("disappears", 0, 3.0), Event("appears", 1, 7.0)), 10.0),
        Scene((_obj("circle", "red"), _obj("star", "yellow", x=0.7)), grass,            # 5 reversed order
              (Event("appears", 0, 7.0), Event("disappears", 1, 3.0)), 10.0),
    ]
    facts = [scene_facts(s) for s in scenes]
    red_circle = CaptionMeaning("a red circle", "object", (("shape", 0, "circle"), ("colour", 0, "red")))
    red_circle_left = CaptionMeaning("a red circle moves left", "object",
                                     red_circle.claims + (("motion_in", 0, frozenset({"left"})),))
    bound = CaptionMeaning("a red circle and a blue square on the grass", "global",
                           red_circle.claims + (("shape", 1, "square"), ("colour", 1, "blue"), ("bg_kind", "grass")))
    two = CaptionMeaning("two shapes", "scene", (("count", "==", 2),))
    order = CaptionMeaning("the red circle disappears before the yellow star appears", "temporal",
                           red_circle.claims + (("shape", 1, "star"), ("event", 0, frozenset({"disappears"})),
                                                ("event", 1, frozenset({"appears"})), ("event_before", 0, 1)))
    late = CaptionMeaning("a star appears near the end", "moment",
                          (("shape", 0, "star"), ("event", 0, frozenset({"appears"})), ("time", 0, frozenset({"late"}))))
    got = count_true([red_circle, red_circle_left, bound, two, order, late], facts)
    assert got == [[0, 1, 3, 4, 5], [0, 3], [0, 1], [0, 1, 2, 4, 5], [4], [4]]
    assert oracle_recall([len(g) for g in got])["R1"] == pytest.approx(100 * np.mean([1 / 5, 1 / 2, 1 / 2, 1 / 5, 1, 1]),
                                                                       abs=1e-3)
    assert oracle_recall([1, 2, 4, 8], ks=(1, 5))["R5"] == pytest.approx(100 * (1 + 1 + 1 + 5 / 8) / 4, abs=1e-3)


def test_oracle_file_matches_a_recount(corpus):
    oracle = json.loads((corpus / "probes" / "oracle.json").read_text())["test"]
    scenes = _scenes_by_id(corpus)
    test = _test_ids(corpus)
    facts = [scene_facts(scenes[v]) for v in test]
    assert [c["video_id"] for c in oracle["captions"]] == test
    for c in oracle["captions"]:
        meaning = next(m for m in traced_captions(scenes[c["video_id"]], _caption_rng(corpus, c["video_id"]))
                       if m.text == c["sentence"])
        true = [test[j] for j in count_true([meaning], facts)[0]]
        assert c["video_id"] in true and c["true_videos"] == true and c["n_true"] == len(true)
    assert oracle["R1"] == oracle_recall([c["n_true"] for c in oracle["captions"]])["R1"]


# ------------------------------------------------------------------------------------ metrics / eval
def test_pair_accuracy_counts_wins_and_ties():
    sim = torch.tensor([[[0.9, 0.1], [0.2, 0.8]],    # both right both ways
                        [[0.1, 0.9], [0.8, 0.2]],    # both wrong
                        [[0.5, 0.5], [0.3, 0.3]]])   # caption ties; videos: a prefers Ca, b prefers Ca
    out = pair_accuracy(sim)
    assert out["t2v"] == pytest.approx(100 * (2 + 0 + 1) / 6, abs=1e-3)
    assert out["v2t"] == pytest.approx(100 * (2 + 0 + 1) / 6, abs=1e-3)


def test_order_blind_pooling_scores_exactly_50_percent():
    """Any permutation-invariant pooling of frame features gives Va == Vb for a reversed twin."""
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(64, 9, 16, generator=g)
    texts = torch.randn(64, 2, 16, generator=g)
    for pool in (lambda f: f.mean(1), lambda f: f.max(1).values, lambda f: torch.logsumexp(f, 1)):
        va, vb = pool(frames), pool(frames.flip(1))
        sim = torch.stack([torch.stack([(texts[:, c] * v).sum(-1) for v in (va, vb)], -1) for c in (0, 1)], 1)
        assert pair_accuracy(sim) == {"t2v": 50.0, "v2t": 50.0, "acc": 50.0}
    # an order-aware pooling is not tied
    sim_aware = torch.stack([torch.stack([(texts[:, c] * v).sum(-1) for v in (frames[:, 0], frames[:, -1])], -1)
                             for c in (0, 1)], 1)
    assert pair_accuracy(sim_aware)["acc"] != 50.0


@pytest.mark.parametrize("head", ["meanp", "glscl"])
def test_order_blind_models_score_exactly_50_on_the_order_probe(corpus, head):
    """Without the temporal transformer, mean pooling and GLSCL's GIM+LIM are permutation invariant."""
    from glscl_lite.config import load_config
    from glscl_lite.model import GLSCL

    torch.manual_seed(0)
    cfg = load_config("smoke", [f"anno_path={corpus}", f"video_path={corpus / 'videos'}", f"head={head}",
                                "agg_module=None"])
    model = GLSCL(cfg).eval()
    out = score_probes(model, cfg, torch.device("cpu"), names=["order"])
    assert out["order"]["acc"] == 50.0 and out["order"]["t2v"] == 50.0 and out["order"]["n_pairs"] > 0


def test_eval_probes_cli_json(tmp_path, smoke_overrides, capsys, monkeypatch):
    from glscl_lite.cli import main
    from glscl_lite.train import train

    run = tmp_path / "run"
    train("smoke", smoke_overrides + ["epochs=1", "max_steps=2", "batch_size=16"], run, progress=False)
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--probes", "--json", str(tmp_path / "e.json")]) == 0
    res = json.loads((tmp_path / "e.json").read_text())
    assert set(res["probes"]) == {"moment", "order", "binding"}
    assert set(res["probes"]["moment"]) == {"moment", "full", "n_videos"}
    assert {"R1", "R5", "oracle"} <= set(res["probes"]["moment"]["moment"])
    for name in ("order", "binding"):
        p = res["probes"][name]
        assert 0 <= p["acc"] <= 100 and p["chance"] == 50.0 and p["n_pairs"] == math.ceil(res["n_texts"] / 2)
    assert res["oracle"]["n_matched"] == res["n_texts"] and 0 < res["oracle"]["R1"] <= 100
    err = capsys.readouterr().err
    assert "oracle" in err and "order: pairwise accuracy" in err
    # a corpus without probes: one line naming the file and the command that makes it
    monkeypatch.setattr("glscl_lite.data.probes.probe_dir", lambda d: tmp_path / "no-probes")
    assert main(["eval", "--run", str(run), "--probes"]) == 2
    assert "oracle.json: oracle file not found" in capsys.readouterr().err


def test_probe_features_score_like_raw_encoding_and_refuse_other_weights(corpus, tmp_path):
    from glscl_lite.config import load_config
    from glscl_lite.model import GLSCL
    from glscl_lite.probes_eval import ProbeFeatures, _encode

    cfg = load_config("smoke", [f"anno_path={corpus}", f"video_path={corpus / 'videos'}"])
    torch.manual_seed(0)
    model = GLSCL(cfg).eval()
    dev = torch.device("cpu")
    feats = ProbeFeatures.build(model, cfg, dev)
    rows = read_probe_csv(corpus, "order")
    caps, vids = [r["sentence"] for r in rows], [r["video_id"] for r in rows]
    reverse = {b["video_id"]: a["video_id"] for a, b in zip(rows[::2], rows[1::2])}
    raw = _encode(model, cfg, dev, caps, vids, ProbeVideos(corpus / "videos", cfg.max_frames, 64, reverse_of=reverse))
    cached = _encode(model, cfg, dev, caps, vids, None, feats)
    assert torch.allclose(raw, cached, atol=1e-4)
    feats.save(tmp_path / "probe-features.pt")
    feats = ProbeFeatures.load(tmp_path / "probe-features.pt")
    got = score_probes(model, cfg, dev, features=feats, details=True)
    assert set(got) == set(PROBE_NAMES) and got["order"]["n_pairs"] == len(rows) // 2
    for name in ("order", "binding"):  # per-pair outcomes average to the reported accuracy
        p = got[name]
        assert len(p["t2v_per_pair"]) == p["n_pairs"]
        assert 100 * np.mean(p["t2v_per_pair"]) == pytest.approx(p["t2v"], abs=1e-3)
        assert 100 * np.mean(p["v2t_per_pair"]) == pytest.approx(p["v2t"], abs=1e-3)
    ranks = got["moment"]["moment"]["ranks"]
    assert len(ranks) == got["moment"]["n_videos"]
    assert 100 * np.mean(np.asarray(ranks) < 1) == pytest.approx(got["moment"]["moment"]["R1"], abs=1e-3)
    torch.manual_seed(1)  # the same architecture with random CLIP weights instead of the stand-in's
    with pytest.raises(DataError, match="other CLIP weights"):
        score_probes(GLSCL(cfg.replace(pretrained=None)).eval(), cfg, dev, features=feats)
