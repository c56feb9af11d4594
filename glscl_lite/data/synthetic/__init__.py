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

The package holds one module per section: ``settings``, ``vocabulary``, ``scenes``, ``sampling``,
``captions``, ``rendering``, ``corpus``; every name (private helpers included) stays importable
from ``glscl_lite.data.synthetic``.
"""
from __future__ import annotations

from glscl_lite.data.synthetic.captions import (  # noqa: F401
    _article,
    _CaptionWriter,
    _join,
    make_captions,
)
from glscl_lite.data.synthetic.corpus import (  # noqa: F401
    _annotations,
    _estimated_bytes,
    _existing_corpus,
    _generator_params,
    _is_complete,
    _jsfusion_rows,
    _plan_scenes,
    _probe_summary,
    _process_chunk,
    _resolve,
    _run_jobs,
    _split_plan,
    _start_method,
    _summary,
    _VideoJob,
    _write_csv,
    generate_corpus,
)
from glscl_lite.data.synthetic.rendering import (  # noqa: F401
    _ARM,
    ANGLE_STEP_DEG,
    RING_INNER,
    SHAPE_POLYGONS,
    _coordinate,
    _lerp,
    _paste,
    _polar_radius,
    _polygon,
    _regular,
    _smooth_noise,
    encode_video,
    render_background,
    render_frames,
    render_video,
    shape_alpha,
)
from glscl_lite.data.synthetic.sampling import (  # noqa: F401
    _OVERLAP_TIMES,
    _allowed_colours,
    _contrast_ok,
    _overlap_score,
    _pick,
    _pick_weighted,
    _r4,
    _sample_background,
    _sample_event_times,
    allowed_colours,
    background_palette,
    make_hard_negative,
    object_track,
    sample_scene,
    scene_differences,
    scene_rng,
)
from glscl_lite.data.synthetic.scenes import (  # noqa: F401
    Background,
    Caption,
    Event,
    Scene,
    SceneObject,
)
from glscl_lite.data.synthetic.settings import (  # noqa: F401
    CAPTIONS_PER_VIDEO,
    DEFAULT_FPS,
    DEFAULT_SIZE,
    DURATION_STEP_S,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    HARD_NEGATIVE_ATTRIBUTES,
    HARD_NEGATIVE_PAIR_PROB,
    HARD_NEGATIVE_WEIGHTS,
    MAX_DURATION_S,
    MIN_DURATION_S,
    MIN_TEST_VIDEOS,
    MIN_VIDEOS,
    SEVEN_K_FRACTION,
    TEST_FRACTION,
    VALIDATE_FRACTION,
    X264_CRF,
    X264_PRESET,
)
from glscl_lite.data.synthetic.vocabulary import (  # noqa: F401
    BACKGROUND_COLOURS,
    BACKGROUND_KINDS,
    BACKGROUND_PHRASES,
    BACKGROUND_WEIGHTS,
    CAPTION_KIND_WEIGHTS,
    CAPTION_KINDS,
    CAPTION_WORD_RANGE,
    COLOUR_WORDS,
    COLOURS,
    COUNT_WORDS,
    DIRECTIONAL_MOTIONS,
    EDGE_NAMES,
    EVENT_KINDS,
    EVENT_PROB,
    EVENT_VERBS,
    EVENT_WINDOWS,
    GENERIC_NOUNS,
    GLOBAL_FORM_WEIGHTS,
    GROUP_NOUNS,
    GROW_RANGE,
    MAX_OVERLAP_SAMPLES,
    MIN_CONTRAST,
    MOTION_ADJECTIVES,
    MOTION_FLIPS,
    MOTION_GERUNDS,
    MOTION_VERBS,
    MOTIONS,
    OBJECT_COUNT_PROBS,
    OPENERS_CLAUSE,
    OPENERS_NP,
    OPENERS_WITH,
    ORIENTATIONS,
    PATTERN_BACKGROUNDS,
    PLACEMENT_TRIES,
    RGB,
    SCENE_BACKGROUNDS,
    SCENE_COLOUR_WORDS,
    SCENE_PALETTES,
    SHAPE_WORDS,
    SHAPES,
    SIZE_WORDS,
    SIZES,
    SPEED_ADVERBS,
    SPIN_DIRECTIONS,
    SPIN_SHAPES,
    TIME_PHRASES,
    TIMED_EVENTS,
    SynthesisError,
)

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
