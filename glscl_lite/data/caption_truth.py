"""What a synthetic caption says, and which scenes it is true of.

The generator writes captions from templates, so the meaning of every caption is known at the moment
it is written.  :func:`traced_captions` re-runs the caption writer of
:mod:`glscl_lite.data.synthetic` with the same random stream and records, for every caption, the
*claims* its words make: which object has which shape, colour, size, motion, event, event time,
the background, the number of objects, and the order of two happenings.  It reproduces
:func:`~glscl_lite.data.synthetic.make_captions` exactly (same texts; a test checks this).

:func:`caption_true_of` decides whether a caption's claims hold in another scene: there must be a
one-to-one assignment of the objects the caption mentions to objects of that scene under which every
claim holds.  This gives the retrieval oracle: for a query caption, the number of gallery videos it
is true of, ``n_true``; a perfect model that ranks those first in random order reaches an expected
R@1 of ``1 / n_true`` on that query (:func:`oracle_recall`).

Semantics (documented choices):

* a word that is absent makes no claim ("a circle" is true of a circle of any colour and size);
* an object phrase claims the mentioned object exists; other objects may be present;
* group phrases claim a count: "two shapes" exactly two, plural "shapes" at least two, "a shape"
  (only written for one-object scenes) exactly one;
* time phrases claim the event's time class (early < 40 % of the clip, middle 40-60 %, late
  > 60 %; the vague "after a while" phrases need the event 2 s or more into the clip);
* order words claim the order of two events (or that an object is on screen before an event).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from glscl_lite.data import synthetic as syn
from glscl_lite.data.synthetic import Caption, Event, Scene

__all__ = ["Claim", "CaptionMeaning", "traced_captions", "caption_true_of", "claim_check", "failed_claims", "scene_facts",
           "ObjectFacts", "SceneFacts", "count_true", "oracle_recall", "claim_errors", "chance_claim_errors"]

Claim = tuple
"""``(name, slot_or_value, ...)``; slot claims are ``(name, k, value)`` where ``k`` is the index of
the mentioned object in the caption's source scene (only used to tie claims to one object)."""

SLOT_CLAIMS = frozenset({"shape", "colour", "final_colour", "size", "motion_in", "speed", "spin", "event",
                         "event_colour", "time"})
PAIR_CLAIMS = frozenset({"event_before", "present_before"})


@dataclass(frozen=True)
class CaptionMeaning:
    """A caption and the claims its words make (see the module docstring)."""

    text: str
    kind: str
    claims: tuple[Claim, ...]

    @property
    def slots(self) -> tuple[int, ...]:
        """Source-scene indices of the objects the claims are about, sorted."""
        ks = {c[1] for c in self.claims if c[0] in SLOT_CLAIMS}
        ks |= {k for c in self.claims if c[0] in PAIR_CLAIMS for k in c[1:3]}
        return tuple(sorted(ks))


# ================================================================================== tracing writer
def _has(phrase: str, text: str) -> bool:
    """``phrase`` occurs in ``text`` as whole words."""
    return f" {phrase} " in f" {text} "


def _any_word(words: Sequence[str], text: str) -> bool:
    return any(_has(w, text) for w in words)


class _TracingWriter(syn._CaptionWriter):
    """The generator's caption writer, recording what each building block put into the caption.

    Only calls made directly by a caption method (depth 0) are recorded; calls nested inside a
    recorded block are part of that block's output.  The random stream is untouched: every block
    delegates to the parent implementation.
    """

    def __init__(self, scene: Scene, rng: np.random.Generator):
        super().__init__(scene, rng)
        self.records: list[tuple[str, tuple, str]] = []
        self._depth = 0

    def _traced(self, name: str, method, *args: Any, **kwargs: Any) -> Any:
        self._depth += 1
        try:
            out = method(*args, **kwargs)
        finally:
            self._depth -= 1
        if self._depth == 0 and out:
            self.records.append((name, args, out))
        return out

    def np(self, k, *args, **kwargs):
        adjective = kwargs.get("adjective", args[3] if len(args) > 3 else "")
        depth = self._depth
        out = self._traced("np", super().np, k, *args, **kwargs)
        if depth == 0 and out:  # keep only what the claims need: the object and its adjective
            self.records[-1] = ("np", (k, adjective), out)
        return out

    def generic_np(self, k):
        return self._traced("generic_np", super().generic_np, k)

    def noun(self, k):
        return self._traced("noun", super().noun, k)

    def vp(self, k):
        return self._traced("vp", super().vp, k)

    def gerund(self, k):
        return self._traced("vp", super().gerund, k)

    def event_vp(self, ev):
        return self._traced("event_vp", super().event_vp, ev)

    def time_phrase(self, ev):
        return self._traced("time_phrase", super().time_phrase, ev)

    def bg(self):
        return self._traced("bg", super().bg)

    def group(self):
        return self._traced("group", super().group)

    def group_gerund(self):
        return self._traced("group_gerund", super().group_gerund)

    def end_state(self, k):
        return self._traced("end_state", super().end_state, k)

    # ------------------------------------------------------------------ records -> claims
    def meaning(self, cap: Caption) -> CaptionMeaning:
        text, scene = cap.text, self.scene
        kept = [(name, args, out) for name, args, out in self.records if _has(out, text)]
        claims: list[Claim] = []
        for name, args, out in kept:
            claims += _record_claims(scene, name, args, out, text)
        if cap.kind == "scene" and not any(n == "group" for n, _, _ in kept):
            claims.append(("count", ">=", 2) if self.n > 1 else ("count", "==", 1))
        if cap.kind == "temporal":
            claims += _order_claims(scene, cap, kept)
        return CaptionMeaning(text, cap.kind, tuple(dict.fromkeys(claims)))


def _record_claims(scene: Scene, name: str, args: tuple, out: str, text: str) -> list[Claim]:
    """Claims made by one recorded building block of a caption."""
    if name in ("np", "generic_np", "noun"):
        k = args[0]
        obj = scene.objects[k]
        claims: list[Claim] = []
        if name != "generic_np":
            claims.append(("shape", k, obj.shape))
        if name != "noun" and _any_word(syn.COLOUR_WORDS[obj.colour], out):
            claims.append(("colour", k, obj.colour))
        if name == "np" and _any_word(syn.SIZE_WORDS[obj.size], out):
            claims.append(("size", k, obj.size))
        if name == "np" and args[1]:
            claims.append(("motion_in", k, frozenset(m for m, adj in syn.MOTION_ADJECTIVES.items()
                                                     if args[1] in adj)))
        return claims
    if name == "vp":
        k = args[0]
        obj = scene.objects[k]
        claims = [("motion_in", k, frozenset({obj.motion}))]
        for cls, words in syn.SPEED_ADVERBS.items():
            if _any_word(words, out):
                claims.append(("speed", k, cls))
        for sign, words in syn.SPIN_DIRECTIONS.items():
            if _any_word(words, out):
                claims.append(("spin", k, sign))
        return claims
    if name == "event_vp":
        ev: Event = args[0]
        k, obj = ev.obj, scene.objects[ev.obj]
        claims = [("event", k, frozenset({ev.kind}))]
        if ev.colour and _any_word(syn.COLOUR_WORDS[ev.colour], out):
            claims.append(("event_colour", k, ev.colour))
        if ev.kind == "changes_colour" and _any_word(syn.COLOUR_WORDS[obj.colour], out):
            claims.append(("colour", k, obj.colour))
        if ev.kind in ("enters", "leaves") and _any_word(("left", "right", "top", "bottom"), out):
            claims.append(("motion_in", k, frozenset({obj.motion})))  # the edge names the direction
        return claims
    if name == "time_phrase":
        ev = args[0]
        classes = frozenset(c for c, phrases in syn.TIME_PHRASES.items() if out in phrases)
        return [("time", ev.obj, classes)]
    if name == "bg":
        bg = scene.background
        claims = [("bg_kind", bg.kind)]
        claims += [("bg_colour", c) for c in bg.colours if _any_word(syn.COLOUR_WORDS[c], out)]
        if bg.orientation and _has(bg.orientation, out):
            claims.append(("bg_orientation", bg.orientation))
        return claims
    if name == "group":
        n = len(scene.objects)
        if n == 1:
            return [("count", "==", 1)]
        if out.split()[0] == syn.COUNT_WORDS[n]:
            return [("count", "==", n)]
        return [("count", ">=", 2)]
    if name == "group_gerund":
        return [("moving", any(o.motion != "still" for o in scene.objects))]
    if name == "end_state":
        if out != text:  # end states are whole captions; other calls only tested candidates
            return []
        k = args[0]
        obj, ev = scene.objects[k], scene.event_of(k)
        claims = [("shape", k, obj.shape)]
        at_end = out.split()[0] in ("at", "by", "in") and out.split()[1] == "the" and out.split()[2] == "end"
        if ev is not None and ev.kind == "changes_colour":
            claims.append(("final_colour", k, ev.colour) if at_end else ("colour", k, obj.colour))
        elif ev is not None and ev.kind in ("leaves", "disappears"):
            claims.append(("event", k, frozenset({"leaves", "disappears"})))
        elif ev is not None and ev.kind in ("appears", "enters"):
            claims.append(("event", k, frozenset({"appears", "enters"})))
        else:  # grow / shrink / a translating motion: the end state names the motion
            claims.append(("motion_in", k, frozenset({obj.motion})))
        return claims
    return []


def _order_claims(scene: Scene, cap: Caption, kept: list) -> list[Claim]:
    """The order a temporal caption states, from the blocks that made it into the caption."""
    events = {args[0].obj for name, args, _ in kept if name == "event_vp"}
    moved = {args[0] for name, args, _ in kept if name == "vp"}
    if len(cap.objects) == 2:
        ka, kb = cap.objects
        if ka in events and kb in events:
            return [("event_before", ka, kb)]
        return [("present_before", ka, kb)]
    (kb,) = cap.objects
    if kb in moved:  # "the star moves up and then disappears": the event claim says it all
        return []
    if kb in events:  # "at first the screen is empty, then ..."
        return [("empty_start",)]
    ev = scene.event_of(kb)  # "the circle is red at first and then turns blue"
    assert ev is not None and ev.kind == "changes_colour"
    return [("shape", kb, scene.objects[kb].shape), ("colour", kb, scene.objects[kb].colour),
            ("event", kb, frozenset({"changes_colour"})), ("event_colour", kb, ev.colour)]


def traced_captions(scene: Scene, rng: np.random.Generator,
                    n: int = syn.CAPTIONS_PER_VIDEO) -> list[CaptionMeaning]:
    """Exactly :func:`~glscl_lite.data.synthetic.make_captions` ``(scene, rng, n)``, each caption with
    its claims.  Mirrors its loop (kinds, retries for duplicates and length)."""
    writer = _TracingWriter(scene, rng)
    kinds = [syn._pick_weighted(rng, syn.CAPTION_KINDS, syn.CAPTION_KIND_WEIGHTS) for _ in range(n)]
    kinds[0] = "global"
    if n > 1 and "temporal" not in kinds and scene.events:
        kinds[1] = "temporal"
    out: list[CaptionMeaning] = []
    seen: set[str] = set()
    lo, hi = syn.CAPTION_WORD_RANGE

    def attempt(kind: str) -> Caption:
        writer.records = []
        return writer.caption(kind)

    for kind in kinds:
        cap = attempt(kind)
        for _ in range(30):
            if cap.text not in seen and lo <= len(cap.text.split()) <= hi:
                break
            cap = attempt(kind)
        seen.add(cap.text)
        out.append(writer.meaning(cap))
    return out


# ================================================================================== truth
@dataclass(frozen=True)
class ObjectFacts:
    """What a scene shows about one object (the terms claims are checked against)."""

    shape: str
    colour: str
    final_colour: str
    size: str
    motion: str
    speed: Optional[str]
    spin: Optional[int]
    event: Optional[str]
    event_colour: Optional[str]
    event_time: Optional[float]
    time_classes: frozenset
    present_at_start: bool


@dataclass(frozen=True)
class SceneFacts:
    objects: tuple[ObjectFacts, ...]
    bg_kind: str
    bg_colours: frozenset
    bg_orientation: str
    moving: bool
    duration: float


def _time_classes(t: float, duration: float) -> frozenset:
    r = t / duration
    cls = "middle" if 0.4 <= r <= 0.6 else "early" if r < 0.4 else "late"
    return frozenset({cls, "any"} if t >= 2.0 else {cls})


def scene_facts(scene: Scene) -> SceneFacts:
    """Precomputed facts of ``scene`` for :func:`caption_true_of`."""
    speed_of = syn._CaptionWriter(scene, np.random.default_rng(0)).speed_class
    objs = []
    for k, o in enumerate(scene.objects):
        ev = scene.event_of(k)
        objs.append(ObjectFacts(
            shape=o.shape, colour=o.colour,
            final_colour=ev.colour if ev is not None and ev.kind == "changes_colour" else o.colour,
            size=o.size, motion=o.motion, speed=speed_of(o),
            spin=(1 if o.speed > 0 else -1) if o.motion == "spin" else None,
            event=ev.kind if ev is not None else None, event_colour=ev.colour if ev is not None else None,
            event_time=ev.time if ev is not None else None,
            time_classes=_time_classes(ev.time, scene.duration) if ev is not None else frozenset(),
            present_at_start=ev is None or ev.kind not in ("appears", "enters")))
    bg = scene.background
    return SceneFacts(tuple(objs), bg.kind, frozenset(bg.colours), bg.orientation,
                      any(o.motion != "still" for o in scene.objects), scene.duration)


def _slot_ok(name: str, value: Any, o: ObjectFacts) -> bool:
    if name == "shape":
        return o.shape == value
    if name == "colour":
        return o.colour == value
    if name == "final_colour":
        return o.final_colour == value
    if name == "size":
        return o.size == value
    if name == "motion_in":
        return o.motion in value
    if name == "speed":
        return o.speed == value
    if name == "spin":
        return o.spin == value
    if name == "event":
        return o.event in value
    if name == "event_colour":
        return o.event_colour == value
    if name == "time":
        return bool(o.time_classes & value)
    raise ValueError(f"unknown claim {name!r}")


def _global_ok(claim: Claim, f: SceneFacts) -> bool:
    name = claim[0]
    if name == "bg_kind":
        return f.bg_kind == claim[1]
    if name == "bg_colour":
        return claim[1] in f.bg_colours
    if name == "bg_orientation":
        return f.bg_orientation == claim[1]
    if name == "count":
        return len(f.objects) == claim[2] if claim[1] == "==" else len(f.objects) >= claim[2]
    if name == "moving":
        return f.moving == claim[1]
    if name == "empty_start":
        return not any(o.present_at_start for o in f.objects)
    raise ValueError(f"unknown claim {name!r}")


def _pair_ok(name: str, a: ObjectFacts, b: ObjectFacts) -> bool:
    if b.event_time is None:
        return False
    if name == "event_before":
        return a.event_time is not None and a.event_time < b.event_time
    if name == "present_before":  # a is on screen before b's event happens
        return a.present_at_start or (a.event_time is not None and a.event_time < b.event_time)
    raise ValueError(f"unknown claim {name!r}")


def caption_true_of(meaning: CaptionMeaning, facts: SceneFacts) -> bool:
    """Whether every claim of ``meaning`` holds in the scene ``facts`` describes, for some
    one-to-one assignment of the mentioned objects to the scene's objects."""
    slot_claims: dict[int, list[tuple[str, Any]]] = {}
    pairs = []
    for c in meaning.claims:
        if c[0] in SLOT_CLAIMS:
            slot_claims.setdefault(c[1], []).append((c[0], c[2]))
        elif c[0] in PAIR_CLAIMS:
            pairs.append(c)
        elif not _global_ok(c, facts):
            return False
    slots = meaning.slots
    if len(slots) > len(facts.objects):
        return False
    candidates = []
    for k in slots:
        ok = [j for j, o in enumerate(facts.objects) if all(_slot_ok(n, v, o) for n, v in slot_claims.get(k, ()))]
        if not ok:
            return False
        candidates.append(ok)
    for assignment in itertools.product(*candidates):
        if len(set(assignment)) < len(assignment):
            continue
        where = dict(zip(slots, assignment))
        if all(_pair_ok(name, facts.objects[where[a]], facts.objects[where[b]]) for name, a, b in pairs):
            return True
    return False


def count_true(meanings: Sequence[CaptionMeaning], gallery: Sequence[SceneFacts]) -> list[list[int]]:
    """For each caption, the indices of the gallery scenes it is true of."""
    return [[j for j, f in enumerate(gallery) if caption_true_of(m, f)] for m in meanings]


def oracle_recall(n_true: Sequence[int], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Best expected recall (percent) any model can reach when query ``i`` is true of ``n_true[i]``
    gallery videos and only one of them counts as its match: a perfect model ranks the ``n`` true
    videos first in some order, so the match lands in the top ``k`` with probability
    ``min(1, k / n)``."""
    n = np.maximum(np.asarray(n_true, dtype=float), 1.0)
    out = {f"R{k}": round(float(100.0 * np.mean(np.minimum(1.0, k / n))), 3) for k in ks}
    out.update(mean_n_true=round(float(n.mean()), 3), unique=round(float(100.0 * np.mean(n == 1)), 3))
    return out


# ------------------------------------------------------------------------- why a caption is false
_CLAIM_NAMES = {"bg_kind": "background", "bg_colour": "background colour", "count": "number of objects",
                "motion_in": "motion"}


def claim_check(meaning: CaptionMeaning, facts: SceneFacts) -> dict[str, bool]:
    """Each one-object or global claim of ``meaning`` (by name: colour, shape, motion, background ...):
    does some object of the scene (or the scene) meet it on its own?  Pair claims are not listed."""
    out: dict[str, bool] = {}
    for c in meaning.claims:
        if c[0] in PAIR_CLAIMS:
            continue
        ok = any(_slot_ok(c[0], c[2], o) for o in facts.objects) if c[0] in SLOT_CLAIMS else _global_ok(c, facts)
        name = _CLAIM_NAMES.get(c[0], c[0])
        out[name] = out.get(name, True) and ok
    return out


def failed_claims(meaning: CaptionMeaning, facts: SceneFacts) -> list[str]:
    """Names of the claims of ``meaning`` that no object of the scene meets on its own (a missed colour,
    shape, motion ...); ``["number of objects"]`` when each holds but the caption names more objects
    than the scene has; ``["binding/order"]`` when each holds alone but no one-to-one assignment meets
    them all; ``[]`` when the caption is true of the scene."""
    if caption_true_of(meaning, facts):
        return []
    bad = [name for name, ok in claim_check(meaning, facts).items() if not ok]
    if not bad and len({c[1] for c in meaning.claims if c[0] in SLOT_CLAIMS}) > len(facts.objects):
        bad.append("number of objects")
    return bad or ["binding/order"]


def claim_errors(meanings: Sequence[CaptionMeaning], first: Sequence[SceneFacts]) -> dict[str, dict[str, float]]:
    """Per kind of claim (colour, shape, motion ...): among the captions that make it, how many the video
    ranked first for them (``first[i]`` for ``meanings[i]``) breaks -- ``{name: {"captions", "broken", "pct"}}``,
    most frequent claim first.  Which words a model cannot read from the videos yet; compare
    :func:`chance_claim_errors`."""
    if len(meanings) != len(first):
        raise ValueError(f"one first video per caption: {len(meanings)} captions, {len(first)} videos")
    made: dict[str, int] = {}
    broken: dict[str, int] = {}
    for m, f in zip(meanings, first):
        for name, ok in claim_check(m, f).items():
            made[name] = made.get(name, 0) + 1
            broken[name] = broken.get(name, 0) + int(not ok)
    return {k: {"captions": made[k], "broken": broken[k], "pct": round(100.0 * broken[k] / made[k], 1)}
            for k in sorted(made, key=lambda k: -made[k])}


def chance_claim_errors(meanings: Sequence[CaptionMeaning], gallery: Sequence[SceneFacts]) -> dict[str, float]:
    """:func:`claim_errors` of a first video drawn uniformly from ``gallery`` (exact expectation, percent):
    the level a model that cannot read a kind of claim at all sits at."""
    made: dict[str, int] = {}
    broken: dict[str, float] = {}
    for m in meanings:
        per_video = [claim_check(m, f) for f in gallery]
        for name in per_video[0] if per_video else ():
            made[name] = made.get(name, 0) + 1
            broken[name] = broken.get(name, 0.0) + sum(not c[name] for c in per_video) / len(gallery)
    return {k: round(100.0 * broken[k] / made[k], 1) for k in sorted(made, key=lambda k: -made[k])}
