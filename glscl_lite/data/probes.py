"""Diagnostic probes and the retrieval oracle of a synthetic corpus (``DIR/probes/``).

``glscl-lite synth`` writes, beside the JSFUSION test list and built from **test-split scenes only**:

* ``moment.csv`` (``video_id, sentence, kind, source``): one probe video per test video, the test
  scene plus a *flash* object that is on screen for 20-30 % of the clip (it appears in the last
  part or disappears in the first part).  Two queries per video: ``kind=moment`` describes only the
  flash ("a spinning small red star appears near the end"; the gallery's flashes take the least
  used descriptions, so these captions are nearly unique); ``kind=full`` is a whole-clip caption of
  the test scene (its first global caption that is still true of the probe video).  Mean pooling
  dilutes the flash over the clip; text-conditioned pooling can pick its frames.
* ``order.csv`` (``pair, video_id, sentence, source``): pairs of videos with the same content in the
  opposite temporal order.  Video ``_a`` shows object A until about a third of the clip (it then
  disappears), object B from about two thirds (it appears), other objects moving throughout;
  video ``_b`` is the exact frame-by-frame reversal of ``_a`` (motions reversed, B first, A last).
  The two captions differ only in order words ("A is on the screen before B" / "... after B").
* ``binding.csv`` (``pair, video_id, sentence, source``): attribute-swap pairs: video ``_b`` is video
  ``_a`` with the colours of two objects exchanged; captions "a red circle and a blue square" /
  "a blue circle and a red square".
* ``oracle.json``: for every JSFUSION test caption, the test videos it is true of (from the scene
  specifications, :mod:`glscl_lite.data.caption_truth`), hence the best R@1/5/10 any model can reach;
  the same for the two query kinds of the moment probe over the moment gallery.
* ``info.json``: counts, video ids per probe, and the generator parameters.

Sizes: ``n_test`` moment videos and ``ceil(n_test / 2)`` pairs each of order and binding (the first
half of the JSFUSION list), so a 10,000-video corpus (1,000 test videos) gets 1,000 moment videos,
500 order and 500 binding pairs: 3,000 extra videos.  Probe video ids (``probe_<name>_<k>...``) cannot
collide with corpus ids (``video<i>``); they are not in ``MSRVTT_data.json`` or any split list, so no
training or cache code sees them.  Everything is deterministic for the corpus seed (streams 10-12 of
:func:`~glscl_lite.data.synthetic.scene_rng`).
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import json
import math
import multiprocessing
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from glscl_lite.data import synthetic as syn
from glscl_lite.data.caption_truth import (CaptionMeaning, caption_true_of, count_true, oracle_recall,
                                           scene_facts, traced_captions)
from glscl_lite.data.synthetic import Event, Scene, SceneObject, encode_video, render_video, scene_rng
from glscl_lite.errors import DataError

__all__ = ["PROBE_DIR", "PROBE_NAMES", "PAIR_FRACTION", "moment_probe", "order_probe", "binding_probe",
           "write_probes", "probes_complete", "read_probe_csv", "probe_dir", "load_oracle", "scene_of",
           "probe_summary"]

PROBE_DIR = "probes"
PROBE_NAMES = ("moment", "order", "binding")
PAIR_FRACTION = 0.5
"""Order and binding pairs are built from this share of the test videos (the first ones)."""
STREAMS = {"moment": 10, "order": 11, "binding": 12}
FLASH_FRACTION = (0.2, 0.3)
"""The flash object of a moment probe is on screen for this share of the clip (at most a third)."""
ORDER_WINDOWS = ((0.3, 0.4), (0.6, 0.7))
"""Object A disappears, object B appears, at these shares of the clip (never on screen together)."""
ORDER_MAX_SECONDS = 11
"""Order clips last ``m + 1/fps`` seconds (``m * fps + 1`` frames, m <= 11): with 1-fps sampling
and 12 frames the sampled frames of ``_b`` are exactly the reversed sampled frames of ``_a``."""

MOMENT_TEMPLATES = {
    "appears": ("{np} appears near the end", "near the end {np} appears",
                "{np} shows up toward the end of the video", "late in the clip {np} pops up"),
    "disappears": ("{np} disappears early in the video", "near the beginning {np} vanishes",
                   "{np} vanishes shortly after the start", "early in the video {np} disappears"),
}
ORDER_TEMPLATES = (
    ("{a} is on the screen before {b}", "{a} is on the screen after {b}"),
    ("first there is {a} and then {b}", "first there is {b} and then {a}"),
    ("{a} comes before {b}", "{a} comes after {b}"),
    ("{a} is shown first and {b} is shown later", "{a} is shown later and {b} is shown first"),
    ("we see {a} and later {b}", "we see {b} and later {a}"),
)
"""(caption of ``_a``, caption of ``_b``): the same words except order words."""
BINDING_TEMPLATES = ("{a} and {b}", "a video of {a} and {b}", "there is {a} and {b}",
                     "{a} and {b} on the screen", "an animation with {a} and {b}")


# ================================================================================== probe scenes
def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _np(rng: np.random.Generator, obj: SceneObject, size: bool) -> tuple[str, bool]:
    """"a small red star" (size with the given flag); returns the phrase and whether size is in it."""
    words = ([_pick(rng, syn.SIZE_WORDS[obj.size])] if size else []) + \
        [_pick(rng, syn.COLOUR_WORDS[obj.colour]), _pick(rng, syn.SHAPE_WORDS[obj.shape])]
    head = " ".join(words)
    return f"{'an' if head[0] in 'aeiou' else 'a'} {head}", size


def _calm(obj: SceneObject, duration: float) -> SceneObject:
    """``obj`` without any enter/leave placement: a translating object crosses at most 40 % of the
    frame around a central path, so it stays on screen for the whole clip."""
    if obj.motion not in syn.DIRECTIONAL_MOTIONS:
        return obj
    horizontal = bool(syn.DIRECTIONAL_MOTIONS[obj.motion][0])
    along = min(max(obj.x if horizontal else obj.y, 0.35), 0.65)
    travel = min(0.4, 2 * (min(along, 1 - along) - 0.1))
    obj = replace(obj, x=along, speed=round(travel / duration, 4)) if horizontal else \
        replace(obj, y=along, speed=round(travel / duration, 4))
    return obj


FLASH_MOTIONS = ("still", "spin", "grow", "shrink")
"""Motions of a moment probe's flash object (it must stay in place while it is on screen)."""


def _options(scene: Scene, motions: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """Every (shape, colour, size, motion) a new object of ``scene`` may have: a shape not in the
    scene, a colour that stands out from the background and is worn by no object before or after a
    colour change (one not worn by a present object if none is left), a motion from ``motions``."""
    shapes = [s for s in syn.SHAPES if s not in {o.shape for o in scene.objects}]
    taken = {o.colour for o in scene.objects} | {e.colour for e in scene.events if e.colour}
    allowed = syn.allowed_colours(scene.background)
    colours = [c for c in allowed if c not in taken] or \
        [c for c in allowed if c not in {o.colour for o in scene.objects}]
    return [(sh, c, sz, m) for sh in shapes for c in colours for sz in syn.SIZES for m in motions
            if m != "spin" or sh in syn.SPIN_SHAPES]


def _placed(scene: Scene, rng: np.random.Generator, shape: str, colour: str, size: str,
            motion: str) -> SceneObject:
    """The new object, placed where it is farthest from the scene's objects (best of 24 tries)."""
    t = np.linspace(0.0, scene.duration, 9)
    tracks = [syn.object_track(o, scene.event_of(k), t, scene.duration) for k, o in enumerate(scene.objects)]
    best, best_gap = (0.5, 0.5), -1.0
    for _ in range(24):
        x, y = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.25, 0.75))
        gap = min((float(np.min(np.hypot((tx - x) * 4 / 3, ty - y))) for tx, ty, *_ in tracks), default=1.0)
        if gap > best_gap:
            best, best_gap = (x, y), gap
    speed = float(rng.uniform(40.0, 120.0)) * _pick(rng, (1, -1)) if motion == "spin" else 0.0
    return SceneObject(shape=shape, colour=colour, size=size, motion=motion, x=round(best[0], 4),
                       y=round(best[1], 4), speed=round(speed, 4), angle=0.0)


def _extra_object(scene: Scene, rng: np.random.Generator, motions: Sequence[str] = FLASH_MOTIONS) -> SceneObject:
    """A new object for ``scene`` with random attributes among :func:`_options`, placed far from the others."""
    return _placed(scene, rng, *_pick(rng, _options(scene, motions)))


def moment_probe(base: Scene, rng: np.random.Generator,
                 usage: Optional[dict[tuple, int]] = None) -> tuple[Scene, CaptionMeaning]:
    """``base`` plus a flash object on screen for 20-30 % of the clip, and its moment caption
    ("a spinning small red star appears near the end": motion, size, colour, shape, event, time).

    ``usage`` counts the (shape, colour, size, motion, event) descriptions used so far in a gallery;
    the flash takes one of the least used that fits ``base`` (and the count is updated), so that a
    gallery's moment captions are as distinct as the vocabulary allows."""
    options = [o + (kind,) for o in _options(base, FLASH_MOTIONS) for kind in ("appears", "disappears")]
    if usage is not None:
        least = min(usage.get(o, 0) for o in options)
        options = [o for o in options if usage.get(o, 0) == least]
    choice = _pick(rng, options)
    if usage is not None:
        usage[choice] = usage.get(choice, 0) + 1
    *attributes, kind = choice
    flash = _placed(base, rng, *attributes)
    k = len(base.objects)
    share = float(rng.uniform(*FLASH_FRACTION))
    time = round((1.0 - share if kind == "appears" else share) * base.duration, 4)
    events = tuple(sorted(base.events + (Event(kind=kind, obj=k, time=time),), key=lambda e: (e.time, e.obj)))
    scene = replace(base, objects=base.objects + (flash,), events=events)
    adjective = _pick(rng, syn.MOTION_ADJECTIVES[flash.motion])
    phrase, _ = _np(rng, flash, size=True)
    phrase = f"{'an' if adjective[0] in 'aeiou' else 'a'} {adjective} {phrase.split(' ', 1)[1]}"
    text = _pick(rng, MOMENT_TEMPLATES[kind]).format(np=phrase)
    claims = [("shape", k, flash.shape), ("colour", k, flash.colour), ("size", k, flash.size),
              ("motion_in", k, frozenset(m for m, adj in syn.MOTION_ADJECTIVES.items() if adjective in adj)),
              ("event", k, frozenset({kind})), ("time", k, frozenset({"late" if kind == "appears" else "early"}))]
    return scene, CaptionMeaning(text, "moment", tuple(claims))


def _two_objects(base: Scene, rng: np.random.Generator, duration: float) -> tuple[SceneObject, ...]:
    """The base objects, calmed for ``duration``, with a second object added to one-object scenes."""
    objects = tuple(_calm(o, duration) for o in base.objects)
    if len(objects) < 2:
        plain = replace(base, objects=objects, events=(), duration=duration)
        objects += (_extra_object(plain, rng, motions=("still", "spin", "grow", "shrink")),)
    return objects


def order_probe(base: Scene, rng: np.random.Generator, fps: int) -> tuple[Scene, str, str]:
    """Scene of video ``_a`` (A until ~1/3, B from ~2/3) and the captions of ``_a`` and ``_b``
    (video ``_b`` is the frame reversal of ``_a``)."""
    duration = min(ORDER_MAX_SECONDS, max(6, int(base.duration))) + 1.0 / fps
    objects = _two_objects(base, rng, duration)
    t_a = round(float(rng.uniform(*ORDER_WINDOWS[0])) * duration, 4)
    t_b = round(float(rng.uniform(*ORDER_WINDOWS[1])) * duration, 4)
    events = (Event(kind="disappears", obj=0, time=t_a), Event(kind="appears", obj=1, time=t_b))
    scene = Scene(objects=objects, background=base.background, events=events, duration=duration)
    size = bool(rng.random() < 0.3)
    a, _ = _np(rng, objects[0], size)
    b, _ = _np(rng, objects[1], size)
    first, second = _pick(rng, ORDER_TEMPLATES)
    return scene, first.format(a=a, b=b), second.format(a=a, b=b)


def binding_probe(base: Scene, rng: np.random.Generator) -> tuple[Scene, Scene, str, str]:
    """Scenes ``_a`` and ``_b`` (objects 0 and 1 swap colours; no events) and their captions."""
    objects = _two_objects(base, rng, base.duration)
    scene_a = Scene(objects=objects, background=base.background, events=(), duration=base.duration)
    swapped = list(objects)
    swapped[0] = replace(objects[0], colour=objects[1].colour)
    swapped[1] = replace(objects[1], colour=objects[0].colour)
    scene_b = replace(scene_a, objects=tuple(swapped))
    template = _pick(rng, BINDING_TEMPLATES)
    first = 0 if rng.random() < 0.5 else 1
    shape_words = [_pick(rng, syn.SHAPE_WORDS[o.shape]) for o in objects[:2]]
    colour_words = [_pick(rng, syn.COLOUR_WORDS[o.colour]) for o in objects[:2]]

    def caption(colours: Sequence[str]) -> str:
        nps = []
        for k in (first, 1 - first):
            head = f"{colours[k]} {shape_words[k]}"
            nps.append(f"{'an' if head[0] in 'aeiou' else 'a'} {head}")
        return template.format(a=nps[0], b=nps[1])

    return scene_a, scene_b, caption(colour_words), caption(colour_words[::-1])


# ================================================================================== writing
def probe_dir(corpus_dir) -> Path:
    return Path(corpus_dir) / PROBE_DIR


def _write_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def read_probe_csv(corpus_dir, name: str) -> list[dict[str, str]]:
    """Rows of ``DIR/probes/<name>.csv``; a clear error names the file and how to make it."""
    path = probe_dir(corpus_dir) / f"{name}.csv"
    if not path.is_file():
        raise DataError(f"{path}: probe file not found; the corpus predates probes or is not synthetic. "
                        f"Regenerate it with `glscl-lite synth --out {Path(corpus_dir)} ...`")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _render_one(job: tuple[str, dict, bool], video_dir: str, size: tuple[int, int], fps: int) -> str:
    video_id, scene, reverse = job
    frames = render_video(Scene.from_dict(scene), size, fps)
    if reverse:
        frames = np.ascontiguousarray(frames[::-1])
    encode_video(frames, Path(video_dir) / f"{video_id}.mp4", fps)
    return video_id


def _render_chunk(jobs, video_dir, size, fps) -> list[str]:
    return [_render_one(j, video_dir, size, fps) for j in jobs]


def _render_all(jobs: list[tuple[str, dict, bool]], video_dir: Path, size: tuple[int, int], fps: int,
                workers: int, progress: bool) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="probes", unit="video", disable=not progress)
    try:
        if workers <= 1 or len(jobs) < 4:
            for j in jobs:
                _render_one(j, str(video_dir), size, fps)
                bar.update(1)
            return
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        ctx = multiprocessing.get_context(method)
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx) as pool:
            futures = [pool.submit(_render_chunk, c, str(video_dir), size, fps) for c in chunks]
            for fut in cf.as_completed(futures):
                bar.update(len(fut.result()))
    finally:
        bar.close()


def write_probes(out: Path, seed: int, scenes: Sequence[Scene], test_indices: Sequence[int],
                 video_ids: Sequence[str], size: tuple[int, int], fps: int, workers: int = 1,
                 progress: bool = False) -> dict[str, Any]:
    """Write ``out/probes/`` and the probe videos into ``out/videos/`` for a corpus being generated.

    ``scenes``/``video_ids`` cover the whole corpus; only ``test_indices`` (the JSFUSION test
    videos, in list order) are used.  The JSFUSION captions in ``out`` must already be written: the
    oracle re-derives each one's meaning and checks the text.  Returns the info dict (also written
    as ``probes/info.json``).
    """
    pdir = probe_dir(out)
    pdir.mkdir(parents=True, exist_ok=True)
    test_rows = _read_test_rows(out)
    test = list(test_indices)
    meanings: list[list[CaptionMeaning]] = [traced_captions(scenes[i], scene_rng(seed, i, 2)) for i in test]
    queries = []
    for key, i in enumerate(test):
        choice = int(scene_rng(seed, i, 3).integers(len(meanings[key])))
        m = meanings[key][choice]
        if test_rows.get(video_ids[i]) != m.text:
            raise RuntimeError(f"{video_ids[i]}: traced caption {m.text!r} differs from the test list's "
                               f"{test_rows.get(video_ids[i])!r}; caption_truth is out of step with the generator")
        queries.append(m)
    facts = [scene_facts(scenes[i]) for i in test]
    true_sets = count_true(queries, facts)
    test_ids = [video_ids[i] for i in test]
    oracle: dict[str, Any] = {
        "definition": "n_true = number of gallery videos whose scene makes every claim of the caption true; "
                      "best expected recall@k = mean over queries of min(1, k / n_true)",
        "test": {**oracle_recall([len(t) for t in true_sets]), "n_captions": len(queries),
                 "captions": [{"video_id": test_ids[q], "sentence": m.text, "n_true": len(true_sets[q]),
                               "true_videos": [test_ids[j] for j in true_sets[q]]}
                              for q, m in enumerate(queries)]},
    }

    jobs: list[tuple[str, dict, bool]] = []
    moment_rows, moment_scenes, moment_caps, full_caps = [], [], [], []
    usage: dict[tuple, int] = {}
    for key, i in enumerate(test):
        scene, cap = moment_probe(scenes[i], scene_rng(seed, i, STREAMS["moment"]), usage)
        vid = f"probe_moment_{key:04d}"
        own = scene_facts(scene)
        full = next((m for m in meanings[key] if m.kind == "global" and caption_true_of(m, own)), None) or \
            next(m for m in meanings[key] if caption_true_of(m, own))
        moment_rows += [[vid, cap.text, "moment", video_ids[i]], [vid, full.text, "full", video_ids[i]]]
        moment_scenes.append(own)
        moment_caps.append(cap)
        full_caps.append(full)
        jobs.append((vid, scene.to_dict(), False))
    n_moment = {kind: [len(t) for t in count_true(caps, moment_scenes)]
                for kind, caps in (("moment", moment_caps), ("full", full_caps))}
    oracle["moment"] = {kind: {**oracle_recall(n), "n_true": n} for kind, n in n_moment.items()}

    n_pairs = int(math.ceil(len(test) * PAIR_FRACTION))
    order_rows, binding_rows = [], []
    for key, i in enumerate(test[:n_pairs]):
        scene, cap_a, cap_b = order_probe(scenes[i], scene_rng(seed, i, STREAMS["order"]), fps)
        a, b = f"probe_order_{key:04d}_a", f"probe_order_{key:04d}_b"
        order_rows += [[key, a, cap_a, video_ids[i]], [key, b, cap_b, video_ids[i]]]
        jobs += [(a, scene.to_dict(), False), (b, scene.to_dict(), True)]
        scene_a, scene_b, cap_a, cap_b = binding_probe(scenes[i], scene_rng(seed, i, STREAMS["binding"]))
        a, b = f"probe_binding_{key:04d}_a", f"probe_binding_{key:04d}_b"
        binding_rows += [[key, a, cap_a, video_ids[i]], [key, b, cap_b, video_ids[i]]]
        jobs += [(a, scene_a.to_dict(), False), (b, scene_b.to_dict(), False)]

    _render_all(jobs, out / "videos", size, fps, workers, progress)
    _write_rows(pdir / "moment.csv", ["video_id", "sentence", "kind", "source"], moment_rows)
    _write_rows(pdir / "order.csv", ["pair", "video_id", "sentence", "source"], order_rows)
    _write_rows(pdir / "binding.csv", ["pair", "video_id", "sentence", "source"], binding_rows)
    (pdir / "oracle.json").write_text(json.dumps(oracle))
    info = {"n_test": len(test), "moment_videos": len(moment_caps), "order_pairs": len(order_rows) // 2,
            "binding_pairs": len(binding_rows) // 2, "videos": [j[0] for j in jobs],
            "scenes": {j[0]: j[1] for j in jobs if not j[2]},
            "order_twin": "video _b is the frame-by-frame reversal of video _a",
            "oracle_test_R1": oracle["test"]["R1"], "oracle_moment_R1": oracle["moment"]["moment"]["R1"]}
    (pdir / "info.json").write_text(json.dumps(info))
    return info


def _read_test_rows(out: Path) -> dict[str, str]:
    with open(out / "MSRVTT_JSFUSION_test.csv", newline="") as f:
        return {r["video_id"]: r["sentence"] for r in csv.DictReader(f)}


def probes_complete(out: Path) -> bool:
    """Every probe file and probe video of the corpus at ``out`` exists (reuse check)."""
    pdir = probe_dir(out)
    names = [f"{n}.csv" for n in PROBE_NAMES] + ["oracle.json", "info.json"]
    if not all((pdir / n).is_file() for n in names):
        return False
    try:
        videos = json.loads((pdir / "info.json").read_text())["videos"]
    except (OSError, ValueError, KeyError):
        return False
    for vid in videos:
        path = Path(out) / "videos" / f"{vid}.mp4"
        if not path.is_file() or path.stat().st_size == 0:
            return False
    return True


def probe_summary(corpus_dir) -> Optional[dict[str, Any]]:
    """Counts and oracle ceilings of the corpus's probes (None when it has none), for ``synth``'s summary."""
    path = probe_dir(corpus_dir) / "info.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    keep = ("moment_videos", "order_pairs", "binding_pairs", "oracle_test_R1", "oracle_moment_R1")
    return {"dir": str(probe_dir(corpus_dir)), **{k: info[k] for k in keep if k in info}}


def load_oracle(corpus_dir) -> dict[str, Any]:
    """``DIR/probes/oracle.json``; a clear error names the file and how to make it."""
    path = probe_dir(corpus_dir) / "oracle.json"
    if not path.is_file():
        raise DataError(f"{path}: oracle file not found; regenerate the corpus with "
                        f"`glscl-lite synth --out {Path(corpus_dir)} ...`")
    return json.loads(path.read_text())


def scene_of(corpus_dir, video_id: str) -> Optional[Scene]:
    """The scene of a probe video (from ``probes/info.json``; a reversed twin has none)."""
    info = json.loads((probe_dir(corpus_dir) / "info.json").read_text())
    d = info["scenes"].get(video_id)
    return Scene.from_dict(d) if d is not None else None
