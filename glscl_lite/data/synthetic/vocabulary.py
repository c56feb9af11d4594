"""Vocabulary of the synthetic world: scene vocabulary (colours, shapes, motions, backgrounds) and
caption vocabulary (synonyms, templates).

Part of :mod:`glscl_lite.data.synthetic` (the package re-exports every name).
"""
from __future__ import annotations

from glscl_lite.errors import UserError

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
