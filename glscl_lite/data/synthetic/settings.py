"""Settings of the synthetic corpus: generator name and version, sizes, durations, split shares, x264.

Part of :mod:`glscl_lite.data.synthetic` (the package re-exports every name).
"""
from __future__ import annotations

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
