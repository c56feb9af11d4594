"""Scene specification: :class:`Scene`, :class:`SceneObject`, :class:`Background`, :class:`Event`, :class:`Caption`.

Part of :mod:`glscl_lite.data.synthetic` (the package re-exports every name).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional


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
