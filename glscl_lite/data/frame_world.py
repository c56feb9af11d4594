"""Single frames of the synthetic world with captions of what they show: the stand-in CLIP's data.

OpenAI's CLIP learned from image-text pairs.  Its stand-in here learns from single frames rendered
by the corpus generator (:mod:`glscl_lite.data.synthetic`), each paired with a caption written from
the scene state *at that instant*: the objects then on screen with their current colour, shape and
(apparent) size, roughly where they are, and the background.  Video captions describe a whole clip
and would be the wrong signal for a frame encoder.

* Scenes come from :func:`~glscl_lite.data.synthetic.sample_scene` with seeds of their own
  (:func:`frame_rng`: a tagged seed sequence that no corpus uses), so no corpus video, test videos
  included, is ever a pretraining scene.
* Frames are rendered at the corpus resolution (160x120) and then resized and center-cropped
  exactly as video frames are (:func:`~glscl_lite.data.video.resize_center_crop`), so the stand-in
  sees what GLSCL will see.  Only objects whose centre lies inside the crop are described.
* Captions draw their words from the video captions' vocabularies (shape, colour and size synonyms,
  background phrases), so the text tower learns the words that GLSCL's captions use.

:func:`make_frame` is the one entry point; :func:`zero_shot_frames` gives the held-out frames of the
zero-shot evaluation (one object, a named scene background).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from glscl_lite.data import synthetic as syn
from glscl_lite.data.video import resize_center_crop

__all__ = [
    "FRAME_SEED_TAG",
    "FRAME_WORLD_VERSION",
    "FrameObject",
    "FrameSample",
    "POSITIONS",
    "background_key",
    "frame_caption",
    "frame_objects",
    "frame_rng",
    "make_frame",
    "make_minimal_set",
    "make_twins",
    "max_set_size",
    "size_class",
    "zero_shot_frames",
]

FRAME_WORLD_VERSION = 2
"""Bumped whenever frames or their captions change: weights pretrained on another version are refused."""
FRAME_SEED_TAG = 0x5F3A11CE
"""First word of every frame seed sequence: corpus scenes use ``[seed, index, stream]`` (three
words), frames ``[FRAME_SEED_TAG, split, seed, index]`` (four), so the two never share a stream."""
SPLITS = {"train": 0, "eval": 1}
"""Frame streams: ``train`` for pretraining, ``eval`` for the zero-shot and retrieval check."""
POSITIONS = (("at the top left", "at the top", "at the top right"),
             ("on the left", "in the middle", "on the right"),
             ("at the bottom left", "at the bottom", "at the bottom right"))
"""Where an object is, by third of the (cropped) frame: ``POSITIONS[row][column]``."""
EMPTY_PHRASES = ("an empty scene", "nothing", "an empty frame", "no objects")


@dataclass(frozen=True)
class FrameObject:
    """An object as one frame shows it (canonical names; ``position`` is a :data:`POSITIONS` phrase)."""

    shape: str
    colour: str
    size: str
    position: str


@dataclass(frozen=True)
class FrameSample:
    """One rendered frame (``image`` uint8 ``[S,S,3]``), its caption and what it shows."""

    image: np.ndarray
    caption: str
    objects: tuple[FrameObject, ...]
    background: str


def frame_rng(split: str, seed: int, index: int) -> np.random.Generator:
    """The generator of frame ``index`` of a stream (``split`` in :data:`SPLITS`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return np.random.default_rng(np.random.SeedSequence([FRAME_SEED_TAG, SPLITS[split], int(seed), int(index)]))


def size_class(size: str, scale: float) -> str:
    """The size word nearest (in log radius) to a ``size`` object drawn at ``scale``."""
    r = syn.SIZES[size] * float(scale)
    return min(syn.SIZES, key=lambda k: abs(np.log(r / syn.SIZES[k])))


def background_key(bg: syn.Background) -> str:
    """Class name of a background: a named scene (``grass``) or ``<kind>`` for patterns."""
    return bg.kind


def frame_objects(scene: syn.Scene, t: float, size: tuple[int, int] = syn.DEFAULT_SIZE) -> tuple[FrameObject, ...]:
    """The objects whose centre is inside the square center crop of the frame at time ``t``."""
    return tuple(o for _, o in _visible(scene, t, size))


def _visible(scene: syn.Scene, t: float, size: tuple[int, int] = syn.DEFAULT_SIZE) -> list[tuple[int, FrameObject]]:
    """``(index in scene.objects, FrameObject)`` of every object :func:`frame_objects` describes."""
    width, height = size
    x0 = (width - height) / 2 / width  # crop edges as fractions of the width (4:3 -> 0.125)
    span = height / width
    out = []
    for k, obj in enumerate(scene.objects):
        ev = scene.event_of(k)
        x, y, scale, _, visible = (float(a[0]) for a in syn.object_track(obj, ev, np.array([t]), scene.duration))
        u, v = (x - x0) / span, y
        if not visible or not (0.0 <= u < 1.0 and 0.0 <= v < 1.0):
            continue
        colour = ev.colour if ev is not None and ev.kind == "changes_colour" and t >= ev.time else obj.colour
        out.append((k, FrameObject(shape=obj.shape, colour=colour, size=size_class(obj.size, scale),
                                   position=POSITIONS[min(int(v * 3), 2)][min(int(u * 3), 2)])))
    return out


def _background_phrase(bg: syn.Background, rng: np.random.Generator) -> str:
    phrase = syn._pick(rng, syn.BACKGROUND_PHRASES[bg.kind])
    names = [syn._pick(rng, syn.COLOUR_WORDS[c]) for c in bg.colours] + ["", ""]
    return phrase.format(c0=names[0], c1=names[1], orientation=bg.orientation)


OBJECT_WORDS = ("size", "colour", "shape")
"""The attribute words of an object phrase, in caption order (:func:`frame_caption`)."""


def _object_phrase(o: FrameObject, rng: np.random.Generator, with_position: bool,
                   said: tuple[str, ...] = OBJECT_WORDS, noun: str = "object") -> str:
    """``"a small red ball"`` (+ position): the words of ``said``; ``noun`` stands in for an unsaid shape.
    All three words are drawn from ``rng`` whatever is said, so the stream stays the same."""
    words = {"size": syn._pick(rng, syn.SIZE_WORDS[o.size]), "colour": syn._pick(rng, syn.COLOUR_WORDS[o.colour]),
             "shape": syn._pick(rng, syn.SHAPE_WORDS[o.shape])}
    np_ = " ".join([words[a] for a in OBJECT_WORDS if a in said] + ([] if "shape" in said else [noun]))
    text = f"{syn._article(np_)} {np_}"
    return f"{text} {o.position}" if with_position else text


def _partial_plan(rng: np.random.Generator, partial: float, keep: Optional[str]
                  ) -> Optional[tuple[list[tuple[str, ...]], list[str], bool]]:
    """Which words a partial caption says: ``None`` (a full caption, probability ``1 - partial``), else
    per object slot a non-empty subset of :data:`OBJECT_WORDS` (uniform over the 7; ``keep`` always
    in it) and a generic noun, and whether the background is said (probability 1/2).  Draws one
    number from ``rng`` whatever the outcome, so that a minimal set's frames, which start from one
    state, share their plan."""
    plan = np.random.default_rng(int(rng.integers(1 << 62)))
    is_partial = plan.random() < partial
    masks = plan.integers(1, 8, size=3)
    nouns = [syn._pick(plan, syn.GENERIC_NOUNS) for _ in range(3)]
    with_background = plan.random() < 0.5
    if not is_partial:
        return None
    said = [tuple(a for b, a in enumerate(OBJECT_WORDS) if m >> b & 1 or a == keep) for m in masks]
    return said, nouns, bool(with_background)


def frame_caption(objects: tuple[FrameObject, ...], bg: syn.Background, rng: np.random.Generator,
                  force_position: bool = False, partial: float = 0.0, keep: Optional[str] = None) -> str:
    """A caption of one frame: every object (size, colour, shape, position) and the background.

    E.g. ``"a small red ball on the left and a large blue star at the top on the grass"``.  Objects
    are listed in a random order; positions are left out of a quarter of the captions, unless
    ``force_position`` (position sets: their captions differ in a position phrase only).  The same
    random numbers are drawn either way.

    ``partial`` > 0: that fraction of captions says only some words, as people describe images --
    per object a non-empty subset of size, colour and shape (``"a red thing"``, ``"a large star"``),
    the background half of the time -- so that a word has to mean the same with or without the others
    (``keep``: an attribute every object phrase says, the one a minimal set changes).  ``partial = 0``
    draws exactly the captions it always drew.
    """
    with_position = rng.random() >= 0.25 or force_position
    order = rng.permutation(len(objects))
    # one word stream per object slot and one for the background, so that changing one object's
    # words leaves every other word as it was (twins)
    streams = [np.random.default_rng(int(k)) for k in rng.integers(1 << 62, size=4)]
    plan = _partial_plan(rng, partial, keep) if partial > 0 else None
    if plan is None:
        phrases = [_object_phrase(objects[i], streams[slot], with_position) for slot, i in enumerate(order)]
    else:
        phrases = [_object_phrase(objects[i], streams[slot], with_position, plan[0][slot], plan[1][slot])
                   for slot, i in enumerate(order)]
    if not phrases:
        subject = syn._pick(streams[0], EMPTY_PHRASES)
    elif len(phrases) == 1:
        subject = phrases[0]
    else:
        subject = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    if plan is not None and phrases and not plan[2]:
        return subject
    return f"{subject} {_background_phrase(bg, streams[3])}"


def _sample_instant(rng: np.random.Generator, single_object: bool, scene_background: bool
                    ) -> tuple[syn.Scene, float, tuple[FrameObject, ...]]:
    while True:
        scene = syn.sample_scene(rng)
        if single_object:
            ev = scene.event_of(0)
            scene = replace(scene, objects=scene.objects[:1],
                            events=tuple(replace(e, obj=0) for e in (ev,) if e is not None))
        if scene_background and scene.background.kind not in syn.SCENE_BACKGROUNDS:
            continue
        t = float(rng.uniform(0.0, scene.duration))
        objects = frame_objects(scene, t)
        if single_object and len(objects) != 1:
            continue
        return scene, t, objects


def _render(scene: syn.Scene, t: float, objects: tuple[FrameObject, ...], image_size: int,
            rng: np.random.Generator, force_position: bool = False, partial: float = 0.0,
            keep: Optional[str] = None) -> FrameSample:
    image = resize_center_crop(syn.render_frames(scene, np.array([t]))[0], image_size)
    caption = frame_caption(objects, scene.background, rng, force_position, partial, keep)
    return FrameSample(image=image, caption=caption, objects=objects, background=background_key(scene.background))


def make_frame(split: str, seed: int, index: int, image_size: int, single_object: bool = False,
               scene_background: bool = False, partial: float = 0.0) -> FrameSample:
    """Frame ``index`` of stream ``(split, seed)``: a random scene at a random instant.

    ``single_object`` keeps one object (its event too); ``scene_background`` resamples until the
    background is one of the named scenes (grass, sky, ...); ``partial``: the fraction of partial
    captions (:func:`frame_caption`).  Deterministic in its arguments.
    """
    rng = frame_rng(split, seed, index)
    scene, t, objects = _sample_instant(rng, single_object, scene_background)
    return _render(scene, t, objects, image_size, rng, partial=partial)


RANDOM_TWIN_OFFSET = 1 << 40
"""Frame index of the random twin of frame ``i`` when it has no object to change: ``i + offset``."""
TWIN_ATTRIBUTES = ("shape", "size")
"""What a twin changes in one visible object by default: the attributes a caption-matching shortcut
(colour, position, background) leaves unlearned."""
SET_ATTRIBUTES = TWIN_ATTRIBUTES + ("position",)
"""Everything a twin or minimal set may change: ``position`` moves one object to another third of the
frame (:data:`POSITIONS`), which a batch of random frames never asks for (colour and background tell
them apart) -- yet motion is a change of position over time."""


def _moved(scene: syn.Scene, k: int, t: float, cell: tuple[int, int]) -> syn.Scene:
    """``scene`` with object ``k`` shifted so that at time ``t`` its centre is at the centre of
    ``cell = (row, column)`` of the square crop (its motion, size and turn unchanged; an object whose
    position is set by an entering or leaving event does not move along that axis)."""
    width, height = syn.DEFAULT_SIZE
    x0, span = (width - height) / 2 / width, height / width
    obj = scene.objects[k]
    x, y = (float(a[0]) for a in syn.object_track(obj, scene.event_of(k), np.array([t]), scene.duration)[:2])
    u_target, v_target = (cell[1] + 0.5) / 3, (cell[0] + 0.5) / 3
    moved = replace(obj, x=obj.x + (x0 + u_target * span - x), y=obj.y + (v_target - y))
    return replace(scene, objects=scene.objects[:k] + (moved,) + scene.objects[k + 1:])


def max_set_size(attributes: tuple[str, ...]) -> int:
    """The largest minimal set :func:`make_minimal_set` can build over ``attributes``: one plus the
    fewest other values an attribute offers (shape: 8 frames, size: 3, position: 9)."""
    values = {"shape": len(syn.SHAPES), "size": len(syn.SIZES), "position": 9}
    return min(values[a] for a in attributes)


def make_minimal_set(split: str, seed: int, index: int, image_size: int,
                     attributes: tuple[str, ...] = TWIN_ATTRIBUTES, size: int = 2, partial: float = 0.0
                     ) -> list[FrameSample]:
    """``size`` frames of the same scene at the same instant in which one visible object takes
    ``size`` distinct values of one attribute (shape, size or position: another third of the frame), each
    captioned with the same words but that one: a *minimal set* (``size = 2``: a frame and its twin,
    :func:`make_twins`).  Position sets always caption positions.

    In a contrastive batch every frame of a set is a hard negative of the others that only the changed
    attribute tells apart.  A set of 8 over shape shows one object as every shape at once, so each
    frame meets all seven wrong shapes (a twin meets one).  ``attributes``: what a set may change
    (drawn uniformly per set; a subset of :data:`SET_ATTRIBUTES`); ``size`` is at most
    :func:`max_set_size` of them.  A frame with no visible object to change is followed by random
    frames (indices ``index + RANDOM_TWIN_OFFSET + j``).  ``partial``: the fraction of sets captioned
    with partial captions (:func:`frame_caption`; every frame of a set says the same words, and always
    the changed attribute).
    """
    if not attributes or any(a not in SET_ATTRIBUTES for a in attributes):
        raise ValueError(f"twin attributes must be a non-empty subset of {SET_ATTRIBUTES}, got {attributes!r}")
    if not 2 <= size <= max_set_size(attributes):
        raise ValueError(f"a minimal set over {attributes!r} holds 2 to {max_set_size(attributes)} frames, got {size}")
    rng = frame_rng(split, seed, index)
    scene, t, objects = _sample_instant(rng, False, False)
    state = rng.bit_generator.state
    first = _render(scene, t, objects, image_size, rng, partial=partial)
    visible = [k for k, _ in _visible(scene, t)]
    variants: list[syn.Scene] = []
    for _ in range(8):
        if not visible:
            break
        k = visible[int(rng.integers(len(visible)))]
        obj = scene.objects[k]
        attribute = attributes[int(rng.integers(len(attributes)))]
        if attribute == "position":
            here = next(o.position for j, o in _visible(scene, t) if j == k)
            cells = [(r, c) for r in range(3) for c in range(3) if POSITIONS[r][c] != here]
            candidates = [_moved(scene, k, t, cells[i]) for i in rng.permutation(len(cells))[:size - 1]]
        else:
            pool = [s for s in syn.SHAPES if s != obj.shape] if attribute == "shape" else \
                [z for z in syn.SIZES if z != obj.size]
            # a twin draws one value as it always has (folders trained on twins keep their frames)
            values = [syn._pick(rng, pool)] if size == 2 else [pool[i] for i in rng.permutation(len(pool))[:size - 1]]
            candidates = [replace(scene, objects=scene.objects[:k] + (replace(obj, **{attribute: v}),)
                                  + scene.objects[k + 1:]) for v in values]
        seen = [objects] + [frame_objects(c, t) for c in candidates]
        if all(len(o) == len(objects) for o in seen) and len(set(seen)) == len(seen):
            variants = candidates
            break
    if not variants:
        return [first] + [make_frame(split, seed, index + RANDOM_TWIN_OFFSET + j, image_size, partial=partial)
                          for j in range(size - 1)]
    forced = attribute == "position"
    keep = None if forced else attribute
    if forced or partial > 0:  # the first frame's caption again, with positions or with the changed
        first_rng = np.random.default_rng()  # attribute said (drawn from the same state)
        first_rng.bit_generator.state = state
        first = replace(first, caption=frame_caption(objects, scene.background, first_rng, forced, partial, keep))
    out = [first]
    for candidate in variants:
        twin_rng = np.random.default_rng()
        twin_rng.bit_generator.state = state  # the same caption words, but for the changed attribute
        out.append(_render(candidate, t, frame_objects(candidate, t), image_size, twin_rng, forced, partial, keep))
    return out


def make_twins(split: str, seed: int, index: int, image_size: int,
               attributes: tuple[str, ...] = TWIN_ATTRIBUTES) -> tuple[FrameSample, FrameSample]:
    """A frame and its *twin*: the same scene at the same instant with one visible object's shape
    or size changed, captioned with the same words but that one (a minimal pair; a
    :func:`make_minimal_set` of two).

    In a contrastive batch the twin is a hard negative that only the changed attribute tells apart,
    which CLIP's objective otherwise learns slowly: a batch of random frames is already told apart
    by colour, position and background.  A frame with no visible object gets a random twin.
    ``attributes``: what a twin may change (a subset of :data:`TWIN_ATTRIBUTES`, drawn uniformly).
    """
    first, twin = make_minimal_set(split, seed, index, image_size, attributes, 2)
    return first, twin


def zero_shot_frames(n: int, image_size: int, seed: int = 0, start: int = 0) -> list[FrameSample]:
    """``n`` held-out frames (stream ``eval``) with exactly one object on a named scene background."""
    return [make_frame("eval", seed, start + i, image_size, single_object=True, scene_background=True)
            for i in range(n)]
