"""Captions written from a scene by templates with synonyms (:func:`make_captions`).

Part of :mod:`glscl_lite.data.synthetic` (the package re-exports every name).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import numpy as np

from glscl_lite.data.synthetic.sampling import _pick, _pick_weighted
from glscl_lite.data.synthetic.scenes import Caption, Event, Scene, SceneObject
from glscl_lite.data.synthetic.settings import CAPTIONS_PER_VIDEO
from glscl_lite.data.synthetic.vocabulary import (
    BACKGROUND_PHRASES,
    CAPTION_KIND_WEIGHTS,
    CAPTION_KINDS,
    CAPTION_WORD_RANGE,
    COLOUR_WORDS,
    COUNT_WORDS,
    DIRECTIONAL_MOTIONS,
    EDGE_NAMES,
    EVENT_VERBS,
    GENERIC_NOUNS,
    GLOBAL_FORM_WEIGHTS,
    GROUP_NOUNS,
    MOTION_ADJECTIVES,
    MOTION_GERUNDS,
    MOTION_VERBS,
    OPENERS_CLAUSE,
    OPENERS_NP,
    OPENERS_WITH,
    SHAPE_WORDS,
    SIZE_WORDS,
    SPEED_ADVERBS,
    SPIN_DIRECTIONS,
    TIME_PHRASES,
)


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
