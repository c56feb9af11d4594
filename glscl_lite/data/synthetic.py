"""Synthetic text-video corpus in the exact MSR-VTT annotation layout.

The project runs offline, so tests, notebooks and CI use a corpus generated here instead of
MSR-VTT.  It is laid out like the real annotation archive (``MSRVTT_data.json``,
``MSRVTT_train.9k.csv``, ``MSRVTT_train.7k.csv``, ``MSRVTT_JSFUSION_test.csv``, ``videos/``)
and is built to be *hard* in the ways text-video retrieval is hard:

* every video is a :class:`Scene`: one to three coloured shapes, each with a motion (left,
  right, up, down, grow, shrink, spin, still), on a background (plain colours, gradients,
  stripes, noise, or a named scene such as grass, sky or a wooden floor), with events in time
  (an object enters, leaves, changes colour, appears or disappears part-way through);
* each video has 20 captions, written from its scene by templates with synonyms: some describe
  the whole clip, many only one object or one moment (partial relevance), some state temporal
  order ("first ... then ...", "after the ... the ..."); caption lengths follow the real
  MSR-VTT test captions (mean about 9.4 words, 3 to 30);
* some videos are *hard negatives*: near copies of another video of the same split that differ
  in a single attribute (an object's colour, shape or motion direction, the background, or the
  order of two events), recorded in ``info["hard_negative_pairs"]``;
* videos last 6 to 16 seconds (about a third under 12 s), so 1-fps sampling yields fewer than
  12 frames for some videos (they are padded downstream) and more for most.

Everything is deterministic for a seed: scenes are sampled in the parent process from per-video
seeds derived from ``(seed, index)``, and the workers only render, encode (single-threaded
libx264) and write captions from those seeds, so the result does not depend on the number of
workers.  Same (seed, n_videos, size, fps) on the same machine: byte-identical JSON/CSV files
and identical decoded frames.

Each video entry of ``MSRVTT_data.json`` keeps the exact MSR-VTT keys and adds one key,
``"synthetic"``, with the scene spec, the frame count, the kind of each caption and, for hard
negatives, the video it copies and the attribute that differs.
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import errno
import io
import json
import math
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from glscl_lite import storage
from glscl_lite.errors import UserError
from glscl_lite.utils import OutputError, PathLike, ensure_writable_dir

__all__ = [
    "Background",
    "Caption",
    "Event",
    "Scene",
    "SceneObject",
    "SynthesisError",
    "allowed_colours",
    "encode_video",
    "generate_corpus",
    "make_captions",
    "make_hard_negative",
    "object_track",
    "render_background",
    "render_frames",
    "render_video",
    "sample_scene",
    "scene_differences",
    "scene_rng",
    "shape_alpha",
]

# ============================================================================ corpus settings
GENERATOR_NAME = "glscl_lite.data.synthetic"
GENERATOR_VERSION = 2
"""Bumped whenever the output for a given seed changes; part of the reuse check.
2: probe sets and the oracle in ``probes/`` (:mod:`glscl_lite.data.probes`)."""
DEFAULT_SIZE: tuple[int, int] = (160, 120)
"""(width, height): 4:3 like MSR-VTT's 320x240, small for speed."""
DEFAULT_FPS = 4
CAPTIONS_PER_VIDEO = 20
MIN_VIDEOS = 16
MIN_DURATION_S = 6.0
MAX_DURATION_S = 16.0
DURATION_STEP_S = 0.25
"""Durations are triangular on [6, 16] s with the mode at 16 s (about 36 % under 12 s, so
1-fps sampling of 12 frames pads some videos and subsamples most), in 0.25 s steps."""
TEST_FRACTION = 0.1
"""Share of videos in the JSFUSION test list (1,000 of 10,000 in MSR-VTT)."""
MIN_TEST_VIDEOS = 8
SEVEN_K_FRACTION = 7010 / 9000
"""Share of the 9k training list that is also in the 7k list."""
VALIDATE_FRACTION = 497 / 7010
"""Share of the 7k list whose ``split`` is "validate" in MSRVTT_data.json."""
HARD_NEGATIVE_PAIR_PROB = 0.3
"""Probability that two consecutive videos of a split form a hard-negative pair."""
HARD_NEGATIVE_ATTRIBUTES = ("colour", "shape", "motion", "background", "order")
HARD_NEGATIVE_WEIGHTS = (0.25, 0.2, 0.2, 0.15, 0.2)

# x264 settings: constant frame rate, a keyframe every second so seeks stay cheap, no B-frames.
X264_PRESET = "veryfast"
X264_CRF = 20

# ============================================================================ scene vocabulary
RGB = tuple[int, int, int]

COLOURS: dict[str, RGB] = {
    "red": (220, 30, 30),
    "green": (30, 175, 50),
    "blue": (30, 70, 230),
    "yellow": (245, 220, 30),
    "orange": (250, 140, 20),
    "purple": (140, 50, 190),
    "pink": (250, 120, 190),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
    "brown": (125, 70, 25),
}
"""Object colours (name used in scene specs -> RGB)."""

BACKGROUND_COLOURS: dict[str, RGB] = {
    "gray": (128, 128, 128),
    "dark blue": (25, 35, 95),
    "beige": (220, 205, 165),
    "dark green": (25, 75, 40),
    "light gray": (200, 200, 200),
    "maroon": (95, 25, 35),
    "teal": (20, 110, 115),
    "light blue": (150, 195, 235),
}
"""Colours of plain, gradient, striped and noisy backgrounds."""

SHAPES = ("circle", "square", "triangle", "star", "ring", "diamond", "cross", "hexagon")
SPIN_SHAPES = frozenset({"square", "triangle", "star", "diamond", "cross", "hexagon"})
"""Shapes whose rotation is visible (a spinning circle or ring looks still)."""

SIZES: dict[str, float] = {"small": 0.09, "medium": 0.135, "large": 0.19}
"""Object radius as a fraction of the frame height."""

MOTIONS = ("left", "right", "up", "down", "grow", "shrink", "spin", "still")
DIRECTIONAL_MOTIONS: dict[str, tuple[int, int]] = {
    "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
}
"""Unit step of each translating motion in image coordinates (y grows downwards)."""
MOTION_FLIPS: dict[str, str] = {
    "left": "right", "right": "left", "up": "down", "down": "up", "grow": "shrink", "shrink": "grow",
}
"""Motion-direction hard negatives: each motion and its opposite."""
GROW_RANGE = (0.55, 1.45)
"""Scale of a growing object at the start and at the end (reversed for shrinking)."""

EVENT_KINDS = ("enters", "leaves", "changes_colour", "appears", "disappears")
TIMED_EVENTS = ("changes_colour", "appears", "disappears")
"""Events that happen at a time without moving the object (their times can be swapped)."""
EVENT_WINDOWS: dict[str, tuple[float, float]] = {
    "enters": (0.15, 0.45),
    "leaves": (0.55, 0.85),
    "changes_colour": (0.25, 0.75),
    "appears": (0.3, 0.7),
    "disappears": (0.4, 0.8),
}
"""When each event may happen, as a fraction of the duration."""
EVENT_PROB = 0.55
"""Probability that an object has an event (at most one per object)."""
OBJECT_COUNT_PROBS = (0.3, 0.4, 0.3)
"""Probability of 1, 2 or 3 objects."""
PLACEMENT_TRIES = 20
MAX_OVERLAP_SAMPLES = 1
"""Object placement is resampled (up to PLACEMENT_TRIES times) until at most this many of the
9 sampled instants show two objects overlapping."""

PATTERN_BACKGROUNDS = ("solid", "gradient", "stripes", "noise")
SCENE_BACKGROUNDS = ("grass", "sky", "floor", "sand", "water", "snow", "night", "brick")
BACKGROUND_KINDS = PATTERN_BACKGROUNDS + SCENE_BACKGROUNDS
BACKGROUND_WEIGHTS = (0.12, 0.1, 0.1, 0.08) + (0.075,) * 8
ORIENTATIONS = ("horizontal", "vertical", "diagonal")
SCENE_PALETTES: dict[str, tuple[RGB, ...]] = {
    "grass": ((70, 140, 45), (45, 105, 30)),
    "sky": ((110, 165, 235), (190, 220, 250)),
    "floor": ((150, 100, 55), (110, 70, 35)),
    "sand": ((220, 195, 140), (200, 170, 115)),
    "water": ((35, 95, 165), (70, 140, 200)),
    "snow": ((236, 238, 245), (200, 210, 230)),
    "night": ((12, 16, 45), (30, 35, 80)),
    "brick": ((150, 60, 45), (190, 185, 175)),
}
"""Representative colours of the named scene backgrounds (used for contrast checks)."""
MIN_CONTRAST = 95.0
"""Minimum RGB distance between an object colour and every background colour."""

# ============================================================================ caption vocabulary
CAPTION_KINDS = ("global", "object", "moment", "temporal", "scene")
"""global: the whole clip; object: one object; moment: one event or moment; temporal: the
order of two happenings; scene: short, unspecific description of the clip."""
CAPTION_KIND_WEIGHTS = (0.17, 0.33, 0.19, 0.16, 0.15)
CAPTION_WORD_RANGE = (3, 30)
"""Shortest and longest caption in words (the real MSR-VTT 1k-A test captions span 3 to 30)."""
GLOBAL_FORM_WEIGHTS: dict[int, tuple[float, ...]] = {
    2: (0.25, 0.2, 0.25, 0.2, 0.1),
    3: (0.15, 0.1, 0.45, 0.22, 0.08),
}
"""Weights of the five whole-clip caption forms (clause list, "while", group, noun list, long)
by object count: three-object clause lists get long, so they are rarer."""

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "circle", "ball", "disc"),
    "square": ("square", "square", "box", "block"),
    "triangle": ("triangle",),
    "star": ("star",),
    "ring": ("ring", "ring", "donut", "hoop"),
    "diamond": ("diamond", "diamond", "rhombus"),
    "cross": ("cross", "cross", "plus sign"),
    "hexagon": ("hexagon",),
}
GENERIC_NOUNS = ("shape", "object", "figure", "thing")
GROUP_NOUNS = ("shapes", "objects", "geometric shapes", "colorful shapes", "simple shapes", "figures")
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red",), "green": ("green",), "blue": ("blue",), "yellow": ("yellow",),
    "orange": ("orange",), "purple": ("purple", "violet"), "pink": ("pink",),
    "white": ("white",), "black": ("black",), "brown": ("brown",),
    "gray": ("gray", "grey"), "dark blue": ("dark blue", "navy"), "beige": ("beige", "cream"),
    "dark green": ("dark green",), "light gray": ("light gray", "pale gray"),
    "maroon": ("maroon", "dark red"), "teal": ("teal",), "light blue": ("light blue", "pale blue"),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "medium": ("medium sized", "medium", "mid sized"),
    "large": ("large", "big", "huge"),
}
MOTION_VERBS: dict[str, tuple[str, ...]] = {
    "left": ("moves to the left", "is moving to the left", "slides to the left", "moves left",
             "goes from right to left", "travels left across the screen", "drifts to the left"),
    "right": ("moves to the right", "is moving to the right", "slides to the right", "moves right",
              "goes from left to right", "travels right across the screen", "drifts to the right"),
    "up": ("moves up", "is moving upward", "rises", "floats upward", "goes up",
           "slides up the screen"),
    "down": ("moves down", "is moving downward", "falls", "drops down", "goes down",
             "slides down the screen", "sinks"),
    "grow": ("grows", "gets bigger", "is growing", "expands", "becomes larger", "grows in size"),
    "shrink": ("shrinks", "gets smaller", "is shrinking", "becomes smaller", "shrinks in size"),
    "spin": ("spins", "is spinning", "rotates", "is rotating", "turns around", "spins around"),
    "still": ("stays still", "does not move", "is not moving", "sits still", "stays in place",
              "remains in one place", "stands still"),
}
MOTION_GERUNDS: dict[str, tuple[str, ...]] = {
    "left": ("moving to the left", "moving left", "sliding to the left", "going from right to left",
             "traveling left"),
    "right": ("moving to the right", "moving right", "sliding to the right",
              "going from left to right", "traveling right"),
    "up": ("moving up", "moving upward", "rising", "floating upward", "going up"),
    "down": ("moving down", "moving downward", "falling", "dropping down", "going down"),
    "grow": ("growing", "getting bigger", "growing larger", "expanding"),
    "shrink": ("shrinking", "getting smaller", "shrinking in size"),
    "spin": ("spinning", "rotating", "spinning around", "turning around"),
    "still": ("standing still", "sitting still", "not moving", "staying in place"),
}
MOTION_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "left": ("moving",), "right": ("moving",), "up": ("moving", "rising"),
    "down": ("moving", "falling"), "grow": ("growing", "expanding"), "shrink": ("shrinking",),
    "spin": ("spinning", "rotating"), "still": ("still", "motionless"),
}
SPIN_DIRECTIONS = {1: ("clockwise",), -1: ("counterclockwise", "anticlockwise")}
SPEED_ADVERBS = {"slow": ("slowly", "very slowly"), "fast": ("quickly", "fast")}
EDGE_NAMES: dict[str, tuple[str, str]] = {
    "right": ("left", "right"), "left": ("right", "left"),
    "up": ("bottom", "top"), "down": ("top", "bottom"),
}
"""For each translating motion: the edge an object enters from and the edge it leaves by."""
EVENT_VERBS: dict[str, tuple[str, ...]] = {
    "enters": ("enters from the {edge}", "comes in from the {edge}",
               "enters the screen from the {edge}", "slides in from the {edge}",
               "moves into the frame from the {edge}", "enters the frame"),
    "leaves": ("leaves the screen", "moves off the screen", "exits the frame",
               "goes off the {edge} side", "leaves the screen on the {edge}",
               "disappears off the {edge} edge"),
    "changes_colour": ("turns {colour}", "changes color to {colour}", "becomes {colour}",
                       "changes from {old} to {colour}", "switches to {colour}",
                       "changes its color to {colour}"),
    "appears": ("appears", "suddenly appears", "pops up", "shows up", "appears out of nowhere",
                "comes into view"),
    "disappears": ("disappears", "vanishes", "suddenly disappears", "goes away",
                   "vanishes from the screen"),
}
TIME_PHRASES: dict[str, tuple[str, ...]] = {
    "early": ("early in the video", "after a moment", "near the beginning", "shortly after the start"),
    "middle": ("halfway through", "in the middle of the video", "midway through the clip",
               "halfway through the video"),
    "late": ("later", "near the end", "toward the end of the video", "late in the clip"),
    "any": ("after a few seconds", "after a while", "at some point", "later on"),
}
OPENERS_NP = ("a video of", "a cartoon of", "an animation of", "a clip of", "a video showing",
              "an animation showing", "a cartoon showing", "a short clip of",
              "a computer animation of", "footage of")
OPENERS_WITH = ("a cartoon with", "an animation with", "a video with", "a clip with")
OPENERS_CLAUSE = ("in this video", "in the video", "in this clip", "in this animation",
                  "in the cartoon", "in this cartoon")
BACKGROUND_PHRASES: dict[str, tuple[str, ...]] = {
    "solid": ("on a {c0} background", "against a plain {c0} background", "on a plain {c0} screen",
              "in front of a {c0} background"),
    "gradient": ("on a {c0} and {c1} gradient", "over a background that fades from {c0} to {c1}",
                 "on a {c0} to {c1} gradient background", "on a gradient background"),
    "stripes": ("on a striped background", "on {c0} and {c1} stripes",
                "in front of {orientation} stripes", "on a background of {c0} and {c1} stripes"),
    "noise": ("on a noisy {c0} background", "on a grainy {c0} background",
              "on a speckled {c0} background", "on a textured {c0} background"),
    "grass": ("on the grass", "on a green lawn", "in a grassy field", "on grass"),
    "sky": ("in the sky", "in a blue sky", "against the sky", "up in the sky"),
    "floor": ("on a wooden floor", "on the floor", "on wooden boards", "on a wood floor"),
    "sand": ("on the sand", "on a sandy beach", "on sand", "in the desert sand"),
    "water": ("on the water", "over water", "on the sea", "above the water"),
    "snow": ("in the snow", "on snow", "on a snowy ground", "on white snow"),
    "night": ("at night", "in a night sky", "against a starry night sky", "in the dark night sky"),
    "brick": ("in front of a brick wall", "against a brick wall", "on a brick wall",
              "in front of red bricks"),
}
SCENE_COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "grass": ("green",), "sky": ("blue",), "snow": ("white",), "brick": ("red",),
}
"""Colour words that a named scene's phrases may contain (for caption consistency checks)."""


class SynthesisError(UserError, ValueError):
    """Parameters that cannot produce a corpus (too few videos, odd frame size, ...)."""


# ============================================================================ scene specification
@dataclass(frozen=True)
class SceneObject:
    """One shape in a scene.

    ``x``/``y`` are normalised to [0, 1] (fractions of width and height).  For a translating
    object they are the centre of its path (for an object that enters or leaves, the coordinate
    along the motion is set by the event instead); otherwise its position.  ``speed`` is in
    frame-fractions per second for translating motions, degrees per second for ``spin``
    (positive: clockwise on screen) and 0 otherwise.  ``angle`` is the initial rotation in
    degrees.
    """

    shape: str
    colour: str
    size: str
    motion: str
    x: float
    y: float
    speed: float
    angle: float


@dataclass(frozen=True)
class Event:
    """Something that happens to object ``obj`` at ``time`` seconds.

    ``colour`` is the new colour for ``changes_colour`` and None otherwise.
    """

    kind: str
    obj: int
    time: float
    colour: Optional[str] = None


@dataclass(frozen=True)
class Background:
    """A static background.

    ``kind`` is one of :data:`BACKGROUND_KINDS`; ``colours`` names one (solid, noise) or two
    (gradient, stripes) of :data:`BACKGROUND_COLOURS` and is empty for named scenes;
    ``orientation`` applies to gradients and stripes; ``seed`` drives the texture.
    """

    kind: str
    colours: tuple[str, ...] = ()
    orientation: str = ""
    seed: int = 0


@dataclass(frozen=True)
class Scene:
    """Everything a video shows: objects, background, events (sorted by time) and duration."""

    objects: tuple[SceneObject, ...]
    background: Background
    events: tuple[Event, ...]
    duration: float

    def event_of(self, obj: int) -> Optional[Event]:
        """The event of object ``obj``, if it has one."""
        for ev in self.events:
            if ev.obj == obj:
                return ev
        return None

    def n_frames(self, fps: int) -> int:
        return max(1, int(round(self.duration * fps)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists); inverse of :meth:`from_dict`."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Scene":
        bg = d["background"]
        return cls(
            objects=tuple(SceneObject(**o) for o in d["objects"]),
            background=Background(kind=bg["kind"], colours=tuple(bg["colours"]),
                                  orientation=bg["orientation"], seed=int(bg["seed"])),
            events=tuple(Event(**e) for e in d["events"]),
            duration=float(d["duration"]),
        )


@dataclass(frozen=True)
class Caption:
    """A caption, its kind (one of :data:`CAPTION_KINDS`) and the objects it mentions."""

    text: str
    kind: str
    objects: tuple[int, ...] = field(default=())


# ============================================================================ sampling
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


# ============================================================================ captions
def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _join(*parts: str) -> str:
    return " ".join(" ".join(p for p in parts if p).split())


class _CaptionWriter:
    """Writes captions for one scene from the vocabulary above (one instance per video)."""

    def __init__(self, scene: Scene, rng: np.random.Generator):
        self.scene = scene
        self.rng = rng
        self.n = len(scene.objects)

    # ------------------------------------------------------------------ building blocks
    def pick(self, seq: Sequence[Any]) -> Any:
        return _pick(self.rng, seq)

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def colour_word(self, colour: str) -> str:
        return self.pick(COLOUR_WORDS[colour])

    def noun(self, k: int) -> str:
        return self.pick(SHAPE_WORDS[self.scene.objects[k].shape])

    def np(self, k: int, definite: bool = False, p_colour: float = 0.85, p_size: float = 0.25,
           adjective: str = "") -> str:
        """Noun phrase for object k: "a big red circle", "the star", "a spinning blue cross"."""
        obj = self.scene.objects[k]
        words = [adjective] if adjective else []
        if self.chance(p_size):
            words.append(self.pick(SIZE_WORDS[obj.size]))
        if self.chance(p_colour):
            words.append(self.colour_word(obj.colour))
        words.append(self.noun(k))
        head = _join(*words)
        return f"the {head}" if definite else f"{_article(head)} {head}"

    def generic_np(self, k: int) -> str:
        head = _join(self.colour_word(self.scene.objects[k].colour) if self.chance(0.6) else "",
                     self.pick(GENERIC_NOUNS))
        return f"{_article(head)} {head}"

    def speed_class(self, obj: SceneObject) -> Optional[str]:
        if obj.motion in DIRECTIONAL_MOTIONS:
            return "slow" if obj.speed < 0.03 else "fast" if obj.speed > 0.07 else None
        if obj.motion == "spin":
            return "slow" if abs(obj.speed) < 60 else "fast" if abs(obj.speed) > 100 else None
        return None

    def motion_extra(self, obj: SceneObject) -> str:
        """Optional adverb: speed, or direction of a spin."""
        cls = self.speed_class(obj)
        if obj.motion == "spin" and self.chance(0.3):
            return self.pick(SPIN_DIRECTIONS[1 if obj.speed > 0 else -1])
        if cls is not None and self.chance(0.35):
            return self.pick(SPEED_ADVERBS[cls])
        return ""

    def vp(self, k: int) -> str:
        """Present-tense motion phrase: "moves to the left slowly"."""
        obj = self.scene.objects[k]
        return _join(self.pick(MOTION_VERBS[obj.motion]), self.motion_extra(obj))

    def gerund(self, k: int) -> str:
        obj = self.scene.objects[k]
        return _join(self.pick(MOTION_GERUNDS[obj.motion]), self.motion_extra(obj))

    def event_vp(self, ev: Event) -> str:
        obj = self.scene.objects[ev.obj]
        template = self.pick(EVENT_VERBS[ev.kind])
        edge_in, edge_out = EDGE_NAMES.get(obj.motion, ("", ""))
        edge = edge_in if ev.kind == "enters" else edge_out
        return template.format(edge=edge, colour=self.colour_word(ev.colour) if ev.colour else "",
                               old=self.colour_word(obj.colour))

    def time_phrase(self, ev: Event) -> str:
        r = ev.time / self.scene.duration
        options = list(TIME_PHRASES["middle" if 0.4 <= r <= 0.6 else "early" if r < 0.4 else "late"])
        if ev.time >= 2.0:
            options += TIME_PHRASES["any"]
        return self.pick(options)

    def bg(self) -> str:
        bg = self.scene.background
        names = [self.colour_word(c) for c in bg.colours] + ["", ""]
        return self.pick(BACKGROUND_PHRASES[bg.kind]).format(c0=names[0], c1=names[1],
                                                               orientation=bg.orientation)

    def moving_any(self) -> bool:
        return any(o.motion != "still" for o in self.scene.objects)

    def group(self) -> str:
        """A noun phrase for all objects together: "two colorful shapes", "a shape"."""
        if self.n == 1:
            head = self.pick(("shape", "object", "single shape", "colorful shape"))
            return f"{_article(head)} {head}"
        return _join(COUNT_WORDS[self.n] if self.chance(0.7) else self.pick(("some", "a few", "")),
                     self.pick(GROUP_NOUNS))

    def group_gerund(self) -> str:
        if not self.moving_any():
            return self.pick(("", "sitting still", "standing still"))
        return self.pick(("moving", "moving around", "moving on the screen", "", "in motion"))

    # ------------------------------------------------------------------ caption kinds
    def object_caption(self) -> Caption:
        k = int(self.rng.integers(self.n))
        obj = self.scene.objects[k]
        form = int(self.rng.integers(9))
        if form == 0:
            text = _join(self.np(k), self.vp(k))
        elif form == 1:
            text = _join(self.np(k), self.vp(k), self.bg())
        elif form == 2:
            text = _join(self.pick(OPENERS_NP), self.np(k), self.gerund(k),
                         self.bg() if self.chance(0.4) else "")
        elif form == 3:
            text = _join("there is", self.np(k), self.gerund(k), self.bg() if self.chance(0.5) else "")
        elif form == 4:
            adj = self.pick(MOTION_ADJECTIVES[obj.motion])
            text = _join(self.np(k, adjective=adj), self.pick(("is shown", "is on the screen", "")))
        elif form == 5:
            text = _join(self.pick(OPENERS_CLAUSE), self.np(k), self.vp(k))
        elif form == 6:
            text = _join(self.generic_np(k), self.vp(k))
        elif form == 7:
            text = _join(self.pick(("there is", "we see", "someone shows")), self.np(k, p_size=0.6),
                         self.bg())
        else:
            adj = self.pick(MOTION_ADJECTIVES[obj.motion])
            text = _join(self.pick(OPENERS_NP), self.np(k, adjective=adj, p_size=0.5))
        return Caption(text, "object", (k,))

    def end_state(self, k: int) -> Optional[str]:
        """A statement about object k at the start or end of the clip, if it has one."""
        obj, ev = self.scene.objects[k], self.scene.event_of(k)
        noun = self.noun(k)
        if ev is not None and ev.kind == "changes_colour":
            if self.chance(0.5):
                return _join(self.pick(("at the end", "by the end", "in the end")), f"the {noun} is",
                             self.colour_word(ev.colour))
            return _join(self.pick(("at the start", "at first", "in the beginning")), f"the {noun} is",
                         self.colour_word(obj.colour))
        if ev is not None and ev.kind in ("leaves", "disappears"):
            return _join(self.pick(("at the end", "by the end")), f"the {noun} is",
                         self.pick(("gone", "no longer visible", "not on the screen anymore")))
        if ev is not None and ev.kind in ("appears", "enters"):
            return _join(self.pick(("at first", "at the start", "in the beginning")), f"the {noun} is",
                         self.pick(("not there", "not visible", "missing")))
        if obj.motion in ("grow", "shrink"):
            big = obj.motion == "grow"
            return _join(self.pick(("at the end", "by the end")), f"the {noun} is",
                         self.pick(("big", "large") if big else ("small", "tiny")))
        if obj.motion in DIRECTIONAL_MOTIONS:
            side = {"left": "on the left", "right": "on the right", "up": "near the top",
                    "down": "near the bottom"}[obj.motion]
            return _join(self.pick(("at the end", "by the end")), f"the {noun} is", side)
        return None

    def moment_caption(self) -> Optional[Caption]:
        if self.scene.events and self.chance(0.8):
            ev = self.pick(self.scene.events)
            k = ev.obj
            form = int(self.rng.integers(4))
            if form == 0:
                text = _join(self.np(k), self.event_vp(ev))
            elif form == 1:
                text = _join(self.np(k), self.event_vp(ev), self.time_phrase(ev))
            elif form == 2:
                text = _join(self.time_phrase(ev), self.np(k), self.event_vp(ev))
            else:
                text = _join(self.pick(OPENERS_CLAUSE), self.np(k), self.event_vp(ev))
            return Caption(text, "moment", (k,))
        ks = [k for k in range(self.n) if self.end_state(k) is not None]
        if not ks:
            return None
        k = self.pick(ks)
        text = self.end_state(k)
        assert text is not None
        return Caption(text, "moment", (k,))

    def life(self, k: int, with_bg: bool = False) -> str:
        """Object k's motion and event in their order: "a star enters from the left and moves
        right", "a circle grows and then disappears"."""
        ev = self.scene.event_of(k)
        bg = self.bg() if with_bg else ""
        if ev is None:
            return _join(self.np(k), self.vp(k), bg)
        if ev.kind in ("appears", "enters"):
            return _join(self.np(k), self.event_vp(ev), "and", self.vp(k), bg)
        return _join(self.np(k), self.vp(k), bg, self.pick(("and then", "and later", "and")),
                     self.event_vp(ev))

    def clauses(self, ks: Iterable[int]) -> list[str]:
        return [_join(self.np(k, p_size=0.1), self.vp(k)) for k in ks]

    def global_caption(self) -> Caption:
        every = tuple(range(self.n))
        if self.n == 1:
            text = self.life(0, with_bg=self.chance(0.7))
            if self.chance(0.3):
                text = _join(self.pick(OPENERS_CLAUSE), text)
            return Caption(text, "global", every)
        form = int(self.rng.choice(5, p=GLOBAL_FORM_WEIGHTS[self.n]))
        if form == 0:
            parts = self.clauses(every)
            text = _join(" ".join(parts[:-1]), "and", parts[-1], self.bg() if self.chance(0.6) else "")
            if self.chance(0.3):
                text = _join(self.pick(OPENERS_CLAUSE), text)
        elif form == 1:
            parts = self.clauses(every)
            text = _join(parts[0], "while", " and ".join(parts[1:]),
                         self.bg() if self.chance(0.5) else "")
        elif form == 2:
            text = _join(self.group(), self.group_gerund(), self.bg())
            if self.chance(0.4):
                text = _join(self.pick(OPENERS_NP), text)
        elif form == 3:
            nps = [self.np(k, p_size=0.15) for k in every]
            text = _join(self.pick(OPENERS_NP + ("there is",)), " ".join(nps[:-1]), "and", nps[-1],
                         self.bg() if self.chance(0.7) else "")
        else:
            first = _join(self.np(0, p_size=0.6), self.gerund(0), self.bg())
            rest = [self.life(k) for k in every[1:]]
            text = _join(self.pick(OPENERS_NP), first, "while", " and ".join(rest))
        return Caption(text, "global", every)

    def short_np(self, k: int, definite: bool = False) -> str:
        """A noun phrase that rarely carries a size (temporal captions are long already)."""
        return self.np(k, definite=definite, p_size=0.1, p_colour=0.75)

    def temporal_caption(self) -> Optional[Caption]:
        """Two happenings in their order: two events, or an object's motion and a later event."""
        evs = list(self.scene.events)
        if not evs:
            return None
        sep = 0.1 * self.scene.duration
        pairs: list[tuple[Optional[Event], Event]] = []
        for b in evs:
            pairs += [(a, b) for a in evs if a.obj != b.obj and a.time + sep < b.time]
            pairs.append((None, b))
        a, b = self.pick(pairs)
        kb = b.obj
        if a is not None:
            ka = a.obj
            first = _join(self.short_np(ka), self.event_vp(a))
            first_def = _join(self.short_np(ka, definite=True), self.event_vp(a))
            second = _join(self.short_np(kb, definite=self.chance(0.4)), self.event_vp(b))
            form = int(self.rng.integers(6))
            text = (_join("first", first, "then", second), _join(first, "and then", second),
                    _join("after", first_def, second), _join(second, "after", first_def),
                    _join(first, "before", second), _join(first, "and after that", second))[form]
            return Caption(text, "temporal", (ka, kb))

        def present(k: int) -> bool:  # visible well before b happens
            ev = self.scene.event_of(k)
            return ev is None or ev.kind not in ("appears", "enters") or ev.time + sep < b.time

        candidates = [k for k in range(self.n) if present(k)]
        if not candidates:
            start = self.pick(("at first the screen is empty", "at first there is nothing",
                               "the screen is empty at the start"))
            text = _join(start, self.pick(("then", "and then", "until")), self.short_np(kb),
                         self.event_vp(b))
            return Caption(text, "temporal", (kb,))
        ka = self.pick(candidates)
        if ka == kb:
            obj = self.scene.objects[kb]
            if b.kind == "changes_colour" and self.chance(0.5):
                text = _join(f"the {self.noun(kb)} is", self.colour_word(obj.colour),
                             self.pick(("at first", "in the beginning")), "and then",
                             self.pick(("turns", "becomes", "changes to")), self.colour_word(b.colour))
            else:
                subject, motion, event = self.short_np(kb), self.vp(kb), self.event_vp(b)
                form = int(self.rng.integers(3))
                if form == 0:
                    text = _join(subject, motion, self.pick(("and then", "and later", "then")), event)
                elif form == 1:
                    text = _join("first", subject, motion, "then it", event)
                else:
                    text = _join(subject, motion, "before it", event)
            return Caption(text, "temporal", (kb,))
        first = _join(self.short_np(ka), self.vp(ka))
        second = _join(self.short_np(kb, definite=self.chance(0.3)), self.event_vp(b))
        form = int(self.rng.integers(4))
        text = (_join("first", first, "then", second), _join(first, "and then", second),
                _join("at first", first, "but later", second),
                _join(first, "and after a while", second))[form]
        return Caption(text, "temporal", (ka, kb))

    def scene_caption(self) -> Caption:
        form = int(self.rng.integers(4))
        if form == 0:
            text = _join(self.pick(GROUP_NOUNS) if self.n > 1 else self.group(), self.bg())
        elif form == 1:
            moving = self.pick(("moving", "")) if self.moving_any() else ""
            text = _join(self.pick(OPENERS_WITH), moving,
                         self.pick(GROUP_NOUNS) if self.n > 1 else "a shape")
        elif form == 2:
            text = _join(self.pick(("colorful", "simple", "geometric", "")),
                         "shapes" if self.n > 1 else "shape", self.group_gerund())
            if self.n == 1:
                text = f"a {text}"
        else:
            text = _join(self.pick(OPENERS_NP), self.pick(("something", "shapes", "objects"))
                         if self.n > 1 else "a shape", self.bg())
        return Caption(text, "scene", tuple(range(self.n)))

    def caption(self, kind: str) -> Caption:
        if kind == "temporal":
            cap = self.temporal_caption()
            if cap is not None:
                return cap
            kind = self.pick(("global", "object"))
        if kind == "moment":
            cap = self.moment_caption()
            if cap is not None:
                return cap
            kind = "object"
        return {"global": self.global_caption, "object": self.object_caption,
                "scene": self.scene_caption}[kind]()


def make_captions(scene: Scene, rng: np.random.Generator, n: int = CAPTIONS_PER_VIDEO) -> list[Caption]:
    """``n`` distinct captions for ``scene`` (lower case, no final period, like MSR-VTT).

    The kinds are drawn with :data:`CAPTION_KIND_WEIGHTS`; every video gets at least one global
    caption, and at least one temporal caption when it has an event.
    """
    writer = _CaptionWriter(scene, rng)
    kinds = [_pick_weighted(rng, CAPTION_KINDS, CAPTION_KIND_WEIGHTS) for _ in range(n)]
    kinds[0] = "global"
    if n > 1 and "temporal" not in kinds and scene.events:
        kinds[1] = "temporal"
    captions: list[Caption] = []
    seen: set[str] = set()
    lo, hi = CAPTION_WORD_RANGE
    for kind in kinds:
        cap = writer.caption(kind)
        for _ in range(30):
            if cap.text not in seen and lo <= len(cap.text.split()) <= hi:
                break
            cap = writer.caption(kind)
        seen.add(cap.text)
        captions.append(cap)
    return captions


# ============================================================================ rendering
def _polygon(vertices: Iterable[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Vertices given as (x, y) around the centre -> (angles, radii) sorted by angle."""
    pts = np.array(list(vertices), dtype=float)
    ang = np.mod(np.arctan2(pts[:, 1], pts[:, 0]), 2 * np.pi)
    order = np.argsort(ang)
    return ang[order], np.hypot(pts[:, 0], pts[:, 1])[order]


def _regular(n: int, radius: float, start_deg: float, radii: Optional[Sequence[float]] = None):
    rs = radii if radii is not None else [radius] * n
    return _polygon((r * math.cos(math.radians(start_deg + 360 * i / n)),
                     r * math.sin(math.radians(start_deg + 360 * i / n))) for i, r in enumerate(rs))


_ARM = 0.36
SHAPE_POLYGONS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "square": _regular(4, 1.15, 45),
    "triangle": _regular(3, 1.2, -90),
    "star": _regular(10, 0, -90, [1.25, 0.52] * 5),
    "diamond": _regular(4, 0, 0, [0.8, 1.2, 0.8, 1.2]),
    "cross": _polygon([(_ARM, 1.05), (-_ARM, 1.05), (-_ARM, _ARM), (-1.05, _ARM), (-1.05, -_ARM),
                       (-_ARM, -_ARM), (-_ARM, -1.05), (_ARM, -1.05), (_ARM, -_ARM), (1.05, -_ARM),
                       (1.05, _ARM), (_ARM, _ARM)]),
    "hexagon": _regular(6, 1.08, 0),
}
"""Star-shaped polygons (angle, radius) in units of the object radius."""
RING_INNER = 0.58
ANGLE_STEP_DEG = 2


def _polar_radius(theta: np.ndarray, angles: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Distance from the centre to the polygon boundary along direction ``theta``."""
    a = np.concatenate([angles[-1:] - 2 * np.pi, angles, angles[:1] + 2 * np.pi])
    r = np.concatenate([radii[-1:], radii, radii[:1]])
    theta = np.mod(theta, 2 * np.pi)
    i = np.clip(np.searchsorted(a, theta, side="right") - 1, 0, len(a) - 2)
    a1, a2, r1, r2 = a[i], a[i + 1], r[i], r[i + 1]
    return r1 * r2 * np.sin(a2 - a1) / (r1 * np.sin(theta - a1) + r2 * np.sin(a2 - theta))


@lru_cache(maxsize=8192)
def shape_alpha(shape: str, radius: int, angle_bin: int) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased coverage of a shape, as (alpha, 255 - alpha) uint16 arrays of shape
    (2h+1, 2h+1, 1), centred; ``angle_bin`` is the rotation in :data:`ANGLE_STEP_DEG` steps."""
    half = int(math.ceil(1.3 * radius)) + 1
    d = np.arange(-half, half + 1, dtype=np.float32)
    dx, dy = np.meshgrid(d, d)
    dist = np.hypot(dx, dy)
    if shape == "circle":
        edge = radius - dist
    elif shape == "ring":
        edge = np.minimum(1.05 * radius - dist, dist - RING_INNER * radius)
    else:
        theta = np.arctan2(dy, dx) - math.radians(angle_bin * ANGLE_STEP_DEG)
        angles, radii = SHAPE_POLYGONS[shape]
        edge = radius * _polar_radius(theta, angles, radii) - dist
    alpha = np.clip(np.rint((edge + 0.5) * 255), 0, 255).astype(np.uint16)[..., None]
    return alpha, 255 - alpha


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float) -> np.ndarray:
    """Value noise in [0, 1] with features about ``cell`` pixels wide (bilinear, smoothstep)."""
    gh, gw = int(h / cell_y) + 2, int(w / cell_x) + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    ys, xs = np.arange(h, dtype=np.float32) / cell_y, np.arange(w, dtype=np.float32) / cell_x
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = ys - y0, xs - x0
    fy, fx = (fy * fy * (3 - 2 * fy))[:, None], (fx * fx * (3 - 2 * fx))[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _lerp(c0: Sequence[float], c1: Sequence[float], t: np.ndarray) -> np.ndarray:
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    return c0 + (c1 - c0) * t[..., None]


def _coordinate(h: int, w: int, orientation: str) -> np.ndarray:
    """0..1 ramp across the frame: left-right, top-bottom or along the diagonal."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if orientation == "horizontal":
        return xx / max(w - 1, 1)
    if orientation == "vertical":
        return yy / max(h - 1, 1)
    return (xx / max(w - 1, 1) + yy / max(h - 1, 1)) / 2


def render_background(bg: Background, width: int, height: int) -> np.ndarray:
    """The static background as an (H, W, 3) uint8 image."""
    h, w = height, width
    rng = np.random.default_rng(bg.seed)
    s = h / 120.0  # texture scale relative to the default size
    cols = [BACKGROUND_COLOURS[c] for c in bg.colours]
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    if bg.kind == "solid":
        img = np.broadcast_to(np.asarray(cols[0], np.float32), (h, w, 3)).copy()
    elif bg.kind == "gradient":
        img = _lerp(cols[0], cols[1], _coordinate(h, w, bg.orientation))
    elif bg.kind == "stripes":
        period = rng.uniform(14, 28) * s
        # horizontal stripes run left-right (they vary down the frame), vertical ones top-bottom
        across = {"horizontal": yy + 0 * xx, "vertical": xx + 0 * yy}
        u = across.get(bg.orientation, (xx + yy) / math.sqrt(2))
        img = _lerp(cols[0], cols[1], (np.mod(u, period) < period / 2).astype(np.float32))
    elif bg.kind == "noise":
        coarse, fine = _smooth_noise(rng, h, w, 12 * s, 12 * s), _smooth_noise(rng, h, w, 4 * s, 4 * s)
        n = 0.6 * coarse + 0.4 * fine
        img = np.asarray(cols[0], np.float32) * (0.6 + 0.8 * n)[..., None]
    elif bg.kind == "grass":
        blades = _smooth_noise(rng, h, w, 10 * s, 1.5 * s)
        patches = _smooth_noise(rng, h, w, 30 * s, 30 * s)
        img = _lerp((45, 105, 30), (95, 165, 55), 0.6 * blades + 0.4 * patches)
    elif bg.kind == "sky":
        img = _lerp((95, 150, 230), (195, 222, 250), yy[:, 0].repeat(w).reshape(h, w) / max(h - 1, 1))
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = rng.uniform(0, w), rng.uniform(0.05, 0.6) * h
            rx, ry = rng.uniform(18, 40) * s, rng.uniform(6, 12) * s
            d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
            a = np.clip(1.4 - d, 0, 1)[..., None] * 0.85
            img = img * (1 - a) + 250 * a
    elif bg.kind == "floor":
        plank = max(4, int(round(rng.uniform(14, 22) * s)))
        row = (yy // plank).astype(np.int64)
        tint = rng.uniform(0.8, 1.15, size=int(h // plank) + 2).astype(np.float32)
        grain = _smooth_noise(rng, h, w, 2 * s, 25 * s)
        img = _lerp((105, 65, 30), (165, 112, 62), grain) * tint[row][..., None]
        img[(yy[:, 0] % plank) < max(1, int(s))] *= 0.55
    elif bg.kind == "sand":
        n = _smooth_noise(rng, h, w, 16 * s, 16 * s)
        ripples = 0.5 + 0.5 * np.sin(yy / (3.5 * s) + 4 * _smooth_noise(rng, h, w, 20 * s, 40 * s))
        img = _lerp((196, 166, 110), (230, 205, 150), 0.6 * n + 0.4 * ripples)
    elif bg.kind == "water":
        waves = np.sin(yy / (2.5 * s) + 6 * _smooth_noise(rng, h, w, 8 * s, 30 * s))
        img = _lerp((30, 85, 155), (80, 150, 210), 0.5 + 0.5 * waves * 0.8)
    elif bg.kind == "snow":
        n = _smooth_noise(rng, h, w, 20 * s, 20 * s)
        img = _lerp((200, 210, 232), (240, 242, 248), 0.3 + 0.7 * n)
    elif bg.kind == "night":
        img = _lerp((10, 12, 38), (32, 38, 85), yy[:, 0].repeat(w).reshape(h, w) / max(h - 1, 1))
        stars = rng.random((h, w)) < 0.004
        img[stars] = (235, 235, 210)
    elif bg.kind == "brick":
        bh = max(4, int(round(10 * s)))
        bw = max(8, int(round(24 * s)))
        row = (yy // bh).astype(np.int64)
        shift = (row % 2) * (bw // 2)
        col = ((xx + shift) // bw).astype(np.int64)
        tint = rng.uniform(0.8, 1.15, size=(int(h // bh) + 2, int(w // bw) + 3)).astype(np.float32)
        img = np.asarray((150, 60, 45), np.float32) * tint[row, col][..., None]
        mortar = ((yy % bh) < max(1, int(s))) | (((xx + shift) % bw) < max(1, int(s)))
        img[mortar] = (190, 185, 175)
    else:
        raise ValueError(f"unknown background kind {bg.kind!r}")
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_video(scene: Scene, size: tuple[int, int] = DEFAULT_SIZE,
                 fps: int = DEFAULT_FPS) -> np.ndarray:
    """All frames of ``scene`` as a (T, H, W, 3) uint8 RGB array (T = duration * fps)."""
    return render_frames(scene, np.arange(scene.n_frames(fps), dtype=float) / fps, size)


def render_frames(scene: Scene, t: np.ndarray, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
    """Frames of ``scene`` at times ``t`` (seconds, shape [T]) as a (T, H, W, 3) uint8 RGB array."""
    width, height = size
    t = np.asarray(t, dtype=float).reshape(-1)
    n = len(t)
    bg = render_background(scene.background, width, height)
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    frames[:] = bg
    for k, obj in enumerate(scene.objects):
        ev = scene.event_of(k)
        x, y, scale, angle, visible = object_track(obj, ev, t, scene.duration)
        px = np.rint(x * width).astype(np.int64)
        py = np.rint(y * height).astype(np.int64)
        radius = np.maximum(2, np.rint(SIZES[obj.size] * height * scale)).astype(np.int64)
        if obj.shape in SPIN_SHAPES:
            bins = np.rint(angle / ANGLE_STEP_DEG).astype(np.int64) % (360 // ANGLE_STEP_DEG)
        else:
            bins = np.zeros(n, dtype=np.int64)
        before = np.asarray(COLOURS[obj.colour], np.uint16)
        after = np.asarray(COLOURS[ev.colour], np.uint16) if ev is not None and ev.colour else before
        for i in range(n):
            if not visible[i]:
                continue
            changed = ev is not None and ev.kind == "changes_colour" and t[i] >= ev.time
            colour = after if changed else before
            alpha, inverse = shape_alpha(obj.shape, int(radius[i]), int(bins[i]))
            _paste(frames[i], alpha, inverse, int(px[i]), int(py[i]), colour)
    return frames


def _paste(frame: np.ndarray, alpha: np.ndarray, inverse: np.ndarray, cx: int, cy: int,
           colour: np.ndarray) -> None:
    """Alpha-blend a centred coverage mask of colour ``colour`` into ``frame`` in place."""
    half = alpha.shape[0] // 2
    height, width = frame.shape[:2]
    x0, y0 = cx - half, cy - half
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + alpha.shape[1], width), min(y0 + alpha.shape[0], height)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    a = alpha[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    inv = inverse[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1]
    region[...] = (region * inv + colour * a + 127) // 255


def encode_video(frames: np.ndarray, path: PathLike, fps: int) -> None:
    """Write RGB frames to an H.264 (libx264, yuv420p, constant frame rate) MP4 file.

    Single-threaded encoding keeps the bytes deterministic and leaves parallelism to the
    process pool; a keyframe every second keeps seeks cheap; no B-frames.
    """
    import av

    n, height, width, _ = frames.shape
    gop = max(1, int(fps))
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(int(fps), 1), options={
            "preset": X264_PRESET, "crf": str(X264_CRF), "g": str(gop), "bf": "0", "threads": "1",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        })
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


# ============================================================================ corpus
@dataclass(frozen=True)
class _VideoJob:
    index: int
    video_id: str
    scene: Scene
    caption_seed: tuple[int, int]


def _process_chunk(jobs: Sequence[_VideoJob], video_dir: str, size: tuple[int, int],
                   fps: int) -> list[tuple[int, list[Caption], int]]:
    """Worker: render, encode and caption a few videos; returns (index, captions, n_frames).
    A full disk is re-raised as a plain ``OSError(ENOSPC)`` (PyAV's errors do not cross processes)."""
    from glscl_lite.storage import is_disk_full

    out = []
    for job in jobs:
        frames = render_video(job.scene, size, fps)
        path = Path(video_dir) / f"{job.video_id}.mp4"
        try:
            encode_video(frames, path, fps)
        except OSError as exc:
            if is_disk_full(exc):
                raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
            raise
        captions = make_captions(job.scene, scene_rng(job.caption_seed[0], job.caption_seed[1], 2))
        out.append((job.index, captions, len(frames)))
    return out


def _split_plan(n_videos: int, seed: int) -> dict[str, list[int]]:
    """Indices per list, with MSR-VTT's proportions.

    Like the real archive, the 7k list is a prefix of the ids (json split train + validate),
    the other videos are json split "test", and the 1k-A (JSFUSION) test videos are a random
    subset of those; the 9k list is every video not in the JSFUSION test list.
    """
    n_test = max(MIN_TEST_VIDEOS, int(round(n_videos * TEST_FRACTION)))
    n_9k = n_videos - n_test
    n_7k = int(round(n_9k * SEVEN_K_FRACTION))
    n_val = max(1, int(round(n_7k * VALIDATE_FRACTION)))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), n_videos, 9]))
    json_test = np.arange(n_7k, n_videos)
    jsfusion = rng.permutation(json_test)[:n_test]
    in_test = set(int(i) for i in jsfusion)
    return {
        "train": list(range(0, n_7k - n_val)),
        "validate": list(range(n_7k - n_val, n_7k)),
        "json_test": [int(i) for i in json_test],
        "7k": list(range(n_7k)),
        "9k": [i for i in range(n_videos) if i not in in_test],
        "jsfusion": [int(i) for i in jsfusion],
    }


def _plan_scenes(n_videos: int, seed: int, groups: Sequence[Sequence[int]]
                 ) -> tuple[list[Scene], dict[int, tuple[int, str]]]:
    """Scenes for every video; consecutive videos of a group may form hard-negative pairs.

    Returns the scenes and ``{copy_index: (base_index, attribute)}``.  Each group with at least
    two videos gets at least one pair; pairs never cross groups (no train/test leakage).
    """
    structure = np.random.default_rng(np.random.SeedSequence([int(seed), n_videos, 7]))
    pair_of: dict[int, tuple[int, str]] = {}
    base_requirement: dict[int, str] = {}
    for group in groups:
        members = sorted(group)
        pairs = [(members[i], members[i + 1]) for i in range(0, len(members) - 1, 2)]
        chosen = [p for p in pairs if structure.random() < HARD_NEGATIVE_PAIR_PROB]
        if pairs and not chosen:
            chosen = [pairs[int(structure.integers(len(pairs)))]]
        for a, b in chosen:
            attribute = _pick_weighted(structure, HARD_NEGATIVE_ATTRIBUTES, HARD_NEGATIVE_WEIGHTS)
            pair_of[b] = (a, attribute)
            base_requirement[a] = attribute
    scenes: list[Optional[Scene]] = [None] * n_videos
    for i in range(n_videos):
        if i not in pair_of:
            scenes[i] = sample_scene(scene_rng(seed, i, 0), require=base_requirement.get(i))
    for b, (a, attribute) in pair_of.items():
        base = scenes[a]
        assert base is not None
        scenes[b] = make_hard_negative(base, attribute, scene_rng(seed, b, 1))
    return [s for s in scenes if s is not None], pair_of


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue())


def _resolve(size: Optional[tuple[int, int]], fps: Optional[int], workers: Optional[int],
             n_videos: int) -> tuple[tuple[int, int], int, int]:
    width, height = size if size is not None else DEFAULT_SIZE
    fps = DEFAULT_FPS if fps is None else int(fps)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if n_videos < MIN_VIDEOS:
        raise SynthesisError(f"--videos {n_videos}: need at least {MIN_VIDEOS} "
                             f"({MIN_TEST_VIDEOS} test videos and at least as many for training)")
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise SynthesisError(f"--size {width}x{height}: width and height must be even and at least 32 "
                             "(H.264 yuv420p needs even sizes)")
    if not 1 <= fps <= 60:
        raise SynthesisError(f"--fps {fps}: must be between 1 and 60")
    if workers < 1:
        raise SynthesisError(f"--workers {workers}: must be at least 1")
    return (int(width), int(height)), fps, workers


def _generator_params(n_videos: int, seed: int, size: tuple[int, int], fps: int) -> dict[str, Any]:
    return {"name": GENERATOR_NAME, "version": GENERATOR_VERSION, "seed": int(seed),
            "n_videos": int(n_videos), "size": [size[0], size[1]], "fps": int(fps)}


def _existing_corpus(out: Path) -> Optional[dict[str, Any]]:
    """The parsed MSRVTT_data.json of a synthetic corpus at ``out``, or None."""
    anno = out / "MSRVTT_data.json"
    if not anno.is_file():
        return None
    try:
        data = json.loads(anno.read_text())
    except (OSError, ValueError):
        return None
    generator = data.get("info", {}).get("generator") if isinstance(data, dict) else None
    return data if isinstance(generator, dict) and generator.get("name") == GENERATOR_NAME else None


def _is_complete(out: Path, data: dict[str, Any], params: dict[str, Any]) -> bool:
    if data["info"].get("generator") != params:
        return False
    names = ("MSRVTT_train.9k.csv", "MSRVTT_train.7k.csv", "MSRVTT_JSFUSION_test.csv")
    if not all((out / n).is_file() for n in names):
        return False
    videos = out / "videos"
    for v in data["videos"]:
        path = videos / f"{v['video_id']}.mp4"
        if not path.is_file() or path.stat().st_size == 0:
            return False
    from glscl_lite.data.probes import probes_complete

    return probes_complete(out)


def _summary(data: dict[str, Any], out: Path, seconds: float, workers: int,
             reused: bool) -> dict[str, Any]:
    videos = data["videos"]
    info = data["info"]
    params = info["generator"]
    frames = [v["synthetic"]["n_frames"] for v in videos]
    durations = [v["end time"] - v["start time"] for v in videos]
    return {
        "out_dir": str(out),
        "n_videos": len(videos),
        "n_train": info["n_train_9k"],
        "n_train_7k": info["n_train_7k"],
        "n_test": info["n_test"],
        "n_captions": len(data["sentences"]),
        "n_hard_negative_pairs": len(info["hard_negative_pairs"]),
        "seed": params["seed"],
        "size": f"{params['size'][0]}x{params['size'][1]}",
        "fps": params["fps"],
        "total_frames": int(sum(frames)),
        "mean_duration_s": round(float(np.mean(durations)), 3),
        "videos_under_12s": int(sum(d < 12 for d in durations)),
        "workers": workers,
        "reused": reused,
        "seconds": round(seconds, 3),
        "videos_per_minute": None if reused or seconds <= 0 else round(60.0 * len(videos) / seconds, 1),
        "probes": _probe_summary(out),
    }


def _probe_summary(out: Path) -> Optional[dict[str, Any]]:
    from glscl_lite.data.probes import probe_summary

    return probe_summary(out)


def generate_corpus(out_dir: PathLike, n_videos: int = 48, seed: int = 0,
                    size: Optional[tuple[int, int]] = None, fps: Optional[int] = None,
                    workers: Optional[int] = None, progress: bool = True) -> dict[str, Any]:
    """Write a synthetic corpus in the MSR-VTT layout to ``out_dir`` and return a summary.

    ``size`` is (width, height), default 160x120; ``fps`` defaults to 4; ``workers`` (default
    ``os.cpu_count()``) processes render and encode videos in parallel.  The corpus is built in
    a temporary sibling folder and renamed onto ``out_dir`` at the end.  If ``out_dir`` already
    holds a complete corpus with the same parameters it is reused (``summary["reused"]``);
    a synthetic corpus with other parameters is replaced.  Raises :class:`OutputError` when
    ``out_dir`` cannot be written or is a non-empty folder that is not a synthetic corpus.
    """
    start = time.perf_counter()
    size, fps, workers = _resolve(size, fps, workers, int(n_videos))
    n_videos, seed = int(n_videos), int(seed)
    out = Path(out_dir).expanduser().absolute()
    params = _generator_params(n_videos, seed, size, fps)

    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; cannot write the synthetic corpus there")
    if out.is_dir():
        existing = _existing_corpus(out)
        if existing is not None and _is_complete(out, existing, params):
            return _summary(existing, out, time.perf_counter() - start, workers, reused=True)
        if existing is None and any(out.iterdir()):
            raise OutputError(f"{out}: folder is not empty and holds no synthetic corpus; "
                              "choose a new or empty folder (it would be replaced)")
    try:
        ensure_writable_dir(out.parent)
    except OutputError as exc:
        raise OutputError(f"{out}: cannot write the synthetic corpus ({exc})") from None

    plan = _split_plan(n_videos, seed)
    scenes, pair_of = _plan_scenes(n_videos, seed, [plan["9k"], plan["jsfusion"]])
    video_ids = [f"video{i}" for i in range(n_videos)]
    jobs = [_VideoJob(i, video_ids[i], scenes[i], (seed, i)) for i in range(n_videos)]
    results: dict[int, tuple[list[Caption], int]] = {}

    try:
        with storage.building(out, "synthetic corpus") as tmp:  # one writer; stale temps removed
            video_dir = tmp / "videos"
            video_dir.mkdir(parents=True)
            try:
                _run_jobs(jobs, str(video_dir), size, fps, workers, progress, results)
            except OSError as exc:
                if not storage.is_disk_full(exc):
                    raise
                raise storage.disk_full_error(out, _estimated_bytes(video_dir, len(jobs))) from None
            data = _annotations(params, plan, scenes, pair_of, video_ids, results, fps)
            (tmp / "MSRVTT_data.json").write_text(json.dumps(data))
            _write_csv(tmp / "MSRVTT_train.9k.csv", ["video_id"], ([video_ids[i]] for i in plan["9k"]))
            seven_k = sorted(video_ids[i] for i in plan["7k"])  # the real file is sorted as strings
            _write_csv(tmp / "MSRVTT_train.7k.csv", ["video_id"], ([v] for v in seven_k))
            _write_csv(tmp / "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"],
                       _jsfusion_rows(plan["jsfusion"], video_ids, results, seed))
            from glscl_lite.data.probes import write_probes

            write_probes(tmp, seed, scenes, plan["jsfusion"], video_ids, size, fps, workers, progress)
    except PermissionError as exc:
        raise OutputError(f"{out}: cannot write the synthetic corpus ({exc.strerror or exc})") from None
    return _summary(data, out, time.perf_counter() - start, workers, reused=False)


def _estimated_bytes(video_dir: Path, n_videos: int) -> Optional[int]:
    """Bytes the whole corpus needs, extrapolated from the complete videos written so far."""
    sizes = [p.stat().st_size for p in video_dir.glob("*.mp4") if p.stat().st_size > 0]
    return int(sum(sizes) / len(sizes) * n_videos * 1.05) if sizes else None


def _start_method() -> str:
    """``fork`` on Linux: workers start instantly and it works from scripts without a
    ``__main__`` guard and from stdin; workers only use numpy and PyAV, so forking a process
    that has imported torch is harmless.  ``spawn`` elsewhere."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _run_jobs(jobs: list[_VideoJob], video_dir: str, size: tuple[int, int], fps: int, workers: int,
              progress: bool, results: dict[int, tuple[list[Caption], int]]) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="synth", unit="video", disable=not progress)
    try:
        if workers == 1:
            for job in jobs:
                for index, captions, n_frames in _process_chunk([job], video_dir, size, fps):
                    results[index] = (captions, n_frames)
                bar.update(1)
            return
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
        ctx = multiprocessing.get_context(_start_method())
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx,
                                    initializer=storage.die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(_process_chunk, c, video_dir, size, fps) for c in chunks]
            try:
                for fut in cf.as_completed(futures):
                    done = fut.result()
                    for index, captions, n_frames in done:
                        results[index] = (captions, n_frames)
                    bar.update(len(done))
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        bar.close()


def _annotations(params: dict[str, Any], plan: dict[str, list[int]], scenes: list[Scene],
                 pair_of: dict[int, tuple[int, str]], video_ids: list[str],
                 results: dict[int, tuple[list[Caption], int]], fps: int) -> dict[str, Any]:
    """The MSRVTT_data.json object."""
    split_of = {i: "train" for i in plan["train"]}
    split_of.update({i: "validate" for i in plan["validate"]})
    split_of.update({i: "test" for i in plan["json_test"]})
    videos, sentences = [], []
    for i, scene in enumerate(scenes):
        captions, n_frames = results[i]
        base = pair_of.get(i)
        videos.append({
            "category": BACKGROUND_KINDS.index(scene.background.kind),
            "url": f"synthetic://glscl-lite/{video_ids[i]}",
            "video_id": video_ids[i],
            "start time": 0.0,
            "end time": round(n_frames / fps, 4),
            "split": split_of[i],
            "id": i,
            "synthetic": {
                "scene": scene.to_dict(),
                "n_frames": n_frames,
                "caption_kinds": [c.kind for c in captions],
                "caption_objects": [list(c.objects) for c in captions],
                "hard_negative_of": video_ids[base[0]] if base else None,
                "differs_in": base[1] if base else None,
            },
        })
        for cap in captions:
            sentences.append({"caption": cap.text, "video_id": video_ids[i], "sen_id": len(sentences)})
    pairs = [[video_ids[a], video_ids[b], attribute] for b, (a, attribute) in sorted(pair_of.items())]
    info = {
        "contributor": "glscl-lite synthetic generator",
        "description": "Synthetic stand-in for MSR-VTT: coloured shapes moving on varied backgrounds, "
                       "20 template captions per video, hard-negative near copies. Same layout as "
                       "the MSR-VTT annotation archive.",
        "url": "",
        "version": str(GENERATOR_VERSION),
        "generator": params,
        "n_train_9k": len(plan["9k"]),
        "n_train_7k": len(plan["7k"]),
        "n_test": len(plan["jsfusion"]),
        "caption_kinds": list(CAPTION_KINDS),
        "hard_negative_pairs": pairs,
    }
    return {"info": info, "videos": videos, "sentences": sentences}


def _jsfusion_rows(test: list[int], video_ids: list[str], results: dict[int, tuple[list[Caption], int]],
                   seed: int) -> list[list[str]]:
    """One row per test video with one of its captions, chosen deterministically."""
    rows = []
    for key, i in enumerate(test):
        captions = results[i][0]
        choice = int(scene_rng(seed, i, 3).integers(len(captions)))
        rows.append([f"ret{key}", f"msr{i}", video_ids[i], captions[choice].text])
    return rows
