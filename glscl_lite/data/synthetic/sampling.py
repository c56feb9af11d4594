"""Sampling scenes from a seed (:func:`sample_scene`, :func:`scene_rng`) and hard negatives
(:func:`make_hard_negative`, :func:`scene_differences`).

Part of :mod:`glscl_lite.data.synthetic` (the package re-exports every name).
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from typing import Any, Optional, Sequence

import numpy as np

from glscl_lite.data.synthetic.scenes import Background, Event, Scene, SceneObject
from glscl_lite.data.synthetic.settings import DURATION_STEP_S, MAX_DURATION_S, MIN_DURATION_S
from glscl_lite.data.synthetic.vocabulary import (
    BACKGROUND_COLOURS,
    BACKGROUND_KINDS,
    BACKGROUND_WEIGHTS,
    COLOURS,
    DIRECTIONAL_MOTIONS,
    EVENT_KINDS,
    EVENT_PROB,
    EVENT_WINDOWS,
    GROW_RANGE,
    MAX_OVERLAP_SAMPLES,
    MIN_CONTRAST,
    MOTION_FLIPS,
    MOTIONS,
    OBJECT_COUNT_PROBS,
    ORIENTATIONS,
    PLACEMENT_TRIES,
    RGB,
    SCENE_PALETTES,
    SHAPES,
    SIZES,
    SPIN_SHAPES,
    TIMED_EVENTS,
)


def scene_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The random generator for video ``index``: stream 0 samples its scene, 1 turns it into a
    hard negative, 2 writes its captions, 3 picks its JSFUSION test caption.  Corpus-wide
    choices use ``[seed, n_videos, 7]`` (hard-negative pairs) and ``[seed, n_videos, 9]``
    (splits)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(stream)]))


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _pick_weighted(rng: np.random.Generator, seq: Sequence[Any], weights: Sequence[float]) -> Any:
    w = np.asarray(weights, dtype=float)
    return seq[int(rng.choice(len(seq), p=w / w.sum()))]


def _r4(v: float) -> float:
    return float(round(float(v), 4))


def background_palette(bg: Background) -> tuple[RGB, ...]:
    """Representative colours of a background, for contrast checks."""
    if bg.kind in SCENE_PALETTES:
        return SCENE_PALETTES[bg.kind]
    return tuple(BACKGROUND_COLOURS[c] for c in bg.colours)


def _contrast_ok(colour: str, bg: Background) -> bool:
    return colour in _allowed_colours(bg.kind, bg.colours)


def allowed_colours(bg: Background) -> list[str]:
    """Object colours that stand out from background ``bg``."""
    return list(_allowed_colours(bg.kind, bg.colours))


@lru_cache(maxsize=None)
def _allowed_colours(kind: str, colours: tuple[str, ...]) -> tuple[str, ...]:
    palette = background_palette(Background(kind=kind, colours=colours))
    return tuple(c for c, rgb in COLOURS.items()
                 if all(math.dist(rgb, p) >= MIN_CONTRAST for p in palette))


def _sample_background(rng: np.random.Generator, seed: Optional[int] = None) -> Background:
    while True:
        kind = _pick_weighted(rng, BACKGROUND_KINDS, BACKGROUND_WEIGHTS)
        names = list(BACKGROUND_COLOURS)
        colours: tuple[str, ...] = ()
        orientation = ""
        if kind in ("solid", "noise"):
            colours = (_pick(rng, names),)
        elif kind in ("gradient", "stripes"):
            i, j = rng.choice(len(names), size=2, replace=False)
            colours = (names[int(i)], names[int(j)])
            orientation = _pick(rng, ORIENTATIONS)
        bg_seed = int(rng.integers(2**31 - 1)) if seed is None else seed
        bg = Background(kind=kind, colours=colours, orientation=orientation, seed=bg_seed)
        if len(allowed_colours(bg)) >= 6:
            return bg


def object_track(obj: SceneObject, event: Optional[Event], t: np.ndarray, duration: float):
    """Position, scale, rotation and visibility of ``obj`` at times ``t`` (seconds).

    Returns ``(x, y, scale, angle, visible)`` arrays; x and y are normalised frame coordinates
    (outside [0, 1] while off-screen), scale multiplies the size's radius, angle is in degrees.
    """
    t = np.asarray(t, dtype=float)
    x = np.full_like(t, obj.x)
    y = np.full_like(t, obj.y)
    scale = np.ones_like(t)
    angle = np.full_like(t, obj.angle)
    visible = np.ones_like(t, dtype=bool)
    if obj.motion in DIRECTIONAL_MOTIONS:
        dx, dy = DIRECTIONAL_MOTIONS[obj.motion]
        sign = dx + dy
        if event is not None and event.kind == "enters":
            along = (0.0 if sign > 0 else 1.0) + sign * obj.speed * (t - event.time)
        elif event is not None and event.kind == "leaves":
            along = (1.0 if sign > 0 else 0.0) + sign * obj.speed * (t - event.time)
        else:
            centre = obj.x if dx else obj.y
            along = centre + sign * obj.speed * (t - duration / 2)
        if dx:
            x = along
        else:
            y = along
    elif obj.motion in ("grow", "shrink"):
        a, b = GROW_RANGE if obj.motion == "grow" else GROW_RANGE[::-1]
        scale = a + (b - a) * t / duration
    elif obj.motion == "spin":
        angle = obj.angle + obj.speed * t
    if event is not None and event.kind == "appears":
        visible = t >= event.time
    elif event is not None and event.kind == "disappears":
        visible = t < event.time
    return x, y, scale, angle, visible


_OVERLAP_TIMES = np.linspace(0.0, 1.0, 9)


def _overlap_score(objects: Sequence[SceneObject], events: dict[int, Event], duration: float) -> int:
    """How many (pair, time) samples show two objects overlapping (4:3 frame assumed)."""
    if len(objects) < 2:
        return 0
    t = _OVERLAP_TIMES * duration
    tracks = [object_track(o, events.get(k), t, duration) for k, o in enumerate(objects)]
    score = 0
    for i in range(len(objects)):
        for j in range(i + 1, len(objects)):
            xi, yi, si, _, vi = tracks[i]
            xj, yj, sj, _, vj = tracks[j]
            dist = np.hypot((xi - xj) * 4 / 3, yi - yj)
            reach = 1.1 * (SIZES[objects[i].size] * si + SIZES[objects[j].size] * sj)
            score += int(np.sum((dist < reach) & vi & vj))
    return score


def _sample_event_times(rng: np.random.Generator, kinds: dict[int, str], duration: float,
                        fixed: dict[int, tuple[float, float]]) -> dict[int, float]:
    """Event times inside each kind's window, at least max(1.5 s, 15 %) apart."""
    sep = max(1.5, 0.15 * duration)
    times: dict[int, float] = {}
    for k in sorted(kinds, key=lambda k: (k not in fixed, k)):
        lo, hi = fixed.get(k, EVENT_WINDOWS[kinds[k]])
        for _ in range(30):
            t = _r4(rng.uniform(lo, hi) * duration)
            if all(abs(t - u) >= sep for u in times.values()):
                times[k] = t
                break
    return times


def sample_scene(rng: np.random.Generator, require: Optional[str] = None) -> Scene:
    """Sample a random scene.

    ``require`` makes the scene usable as the base of a hard negative of that attribute:
    ``"motion"`` guarantees an object whose motion has an opposite, ``"order"`` two objects with
    timed events (changes colour, appears, disappears) well apart in time.
    """
    raw = rng.triangular(MIN_DURATION_S, MAX_DURATION_S, MAX_DURATION_S)
    duration = round(raw / DURATION_STEP_S) * DURATION_STEP_S
    background = _sample_background(rng)
    n_obj = 1 + int(rng.choice(3, p=OBJECT_COUNT_PROBS))
    if require == "order":
        n_obj = max(n_obj, 2)
    shapes = [SHAPES[int(i)] for i in rng.permutation(len(SHAPES))[:n_obj]]
    palette = allowed_colours(background)
    colours = [palette[int(i)] for i in rng.permutation(len(palette))[:n_obj]]
    sizes = [_pick(rng, list(SIZES)) for _ in range(n_obj)]
    motions = []
    for k, shape in enumerate(shapes):
        choices = [m for m in MOTIONS if m != "spin" or shape in SPIN_SHAPES]
        if require == "motion" and k == 0:
            choices = list(MOTION_FLIPS)
        motions.append(_pick(rng, choices))

    kinds: dict[int, str] = {}
    fixed: dict[int, tuple[float, float]] = {}
    for k in range(n_obj):
        if require == "order" and k < 2:
            kinds[k] = _pick(rng, TIMED_EVENTS)
            fixed[k] = (0.2, 0.4) if k == 0 else (0.6, 0.8)
        elif rng.random() < EVENT_PROB:
            allowed = EVENT_KINDS if motions[k] in DIRECTIONAL_MOTIONS else TIMED_EVENTS
            kinds[k] = _pick(rng, allowed)
    times = _sample_event_times(rng, kinds, duration, fixed)
    events: dict[int, Event] = {}
    used_colours = set(colours)
    for k, t in times.items():
        new_colour = None
        kind = kinds[k]
        options = [c for c in palette if c not in used_colours]
        if kind == "changes_colour" and len(options) < 2:
            kind = "appears"  # keep a spare colour for colour hard negatives
        if kind == "changes_colour":
            new_colour = _pick(rng, options)
            used_colours.add(new_colour)
        events[k] = Event(kind=kind, obj=k, time=t, colour=new_colour)

    best: Optional[list[SceneObject]] = None
    best_score = 1 << 30
    for _ in range(PLACEMENT_TRIES):
        objs = []
        for k in range(n_obj):
            motion, ev = motions[k], events.get(k)
            x, y = rng.uniform(0.2, 0.8), rng.uniform(0.25, 0.75)
            speed = 0.0
            angle = _pick(rng, (0.0, 0.0, 15.0, 30.0, 45.0)) if shapes[k] in SPIN_SHAPES else 0.0
            if motion in DIRECTIONAL_MOTIONS:
                if ev is not None and ev.kind == "enters":
                    speed = rng.uniform(0.45, 0.8) / (duration - ev.time)
                    along = 0.5
                elif ev is not None and ev.kind == "leaves":
                    speed = (1.0 - rng.uniform(0.15, 0.5)) / ev.time
                    along = 0.5
                else:
                    along = rng.uniform(0.35, 0.65)
                    travel = min(rng.uniform(0.3, 0.5), 2 * (min(along, 1 - along) - 0.1))
                    speed = travel / duration
                if DIRECTIONAL_MOTIONS[motion][0]:
                    x = along
                else:
                    y = along
            elif motion == "spin":
                speed = rng.uniform(40.0, 120.0) * _pick(rng, (1, -1))
            objs.append(SceneObject(shape=shapes[k], colour=colours[k], size=sizes[k], motion=motion,
                                    x=_r4(x), y=_r4(y), speed=_r4(speed), angle=float(angle)))
        score = _overlap_score(objs, events, duration)
        if score < best_score:
            best, best_score = objs, score
        if score <= MAX_OVERLAP_SAMPLES:
            break
    assert best is not None
    ordered = tuple(sorted(events.values(), key=lambda e: (e.time, e.obj)))
    return Scene(objects=tuple(best), background=background, events=ordered, duration=float(duration))


def make_hard_negative(base: Scene, attribute: str, rng: np.random.Generator) -> Scene:
    """A near copy of ``base`` that differs only in ``attribute``.

    colour / shape / motion: one object's colour, shape or motion direction (left<->right,
    up<->down, grow<->shrink); background: a different background kind (same texture seed);
    order: two timed events swap their times.  Raises ValueError when ``base`` has nothing to
    change for that attribute (sample the base with ``sample_scene(rng, require=attribute)``).
    """
    objects = list(base.objects)
    if attribute == "colour":
        k = int(rng.integers(len(objects)))
        taken = {o.colour for o in objects} | {e.colour for e in base.events if e.colour}
        options = [c for c in allowed_colours(base.background) if c not in taken]
        objects[k] = replace(objects[k], colour=_pick(rng, options))
        return replace(base, objects=tuple(objects))
    if attribute == "shape":
        k = int(rng.integers(len(objects)))
        taken = {o.shape for o in objects}
        spinning = objects[k].motion == "spin"
        options = [s for s in SHAPES if s not in taken and (not spinning or s in SPIN_SHAPES)]
        objects[k] = replace(objects[k], shape=_pick(rng, options))
        return replace(base, objects=tuple(objects))
    if attribute == "motion":
        ks = [k for k, o in enumerate(objects) if o.motion in MOTION_FLIPS]
        if not ks:
            raise ValueError("scene has no object whose motion has an opposite")
        k = _pick(rng, ks)
        objects[k] = replace(objects[k], motion=MOTION_FLIPS[objects[k].motion])
        return replace(base, objects=tuple(objects))
    if attribute == "background":
        colours = {o.colour for o in objects} | {e.colour for e in base.events if e.colour}
        for _ in range(200):
            bg = _sample_background(rng, seed=base.background.seed)
            if bg.kind != base.background.kind and all(_contrast_ok(c, bg) for c in colours):
                return replace(base, background=bg)
        raise ValueError("no other background keeps every object visible")
    if attribute == "order":
        timed = [e for e in base.events if e.kind in TIMED_EVENTS]
        if len(timed) < 2:
            raise ValueError("scene needs two timed events to swap their order")
        a, b = timed[0], timed[-1]
        swapped = {a.obj: replace(a, time=b.time), b.obj: replace(b, time=a.time)}
        events = tuple(sorted((swapped.get(e.obj, e) for e in base.events),
                              key=lambda e: (e.time, e.obj)))
        return replace(base, events=events)
    raise ValueError(f"unknown hard-negative attribute {attribute!r}")


def scene_differences(a: Scene, b: Scene) -> list[str]:
    """Dotted paths of the scene-spec fields that differ between ``a`` and ``b``."""

    def flat(prefix: str, v: Any, out: dict[str, Any]) -> dict[str, Any]:
        if isinstance(v, dict):
            for key, item in v.items():
                flat(f"{prefix}.{key}" if prefix else key, item, out)
        elif isinstance(v, list):
            out[f"{prefix}.len"] = len(v)
            for i, item in enumerate(v):
                flat(f"{prefix}.{i}", item, out)
        else:
            out[prefix] = v
        return out

    fa, fb = flat("", a.to_dict(), {}), flat("", b.to_dict(), {})
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
