"""Which sampled frames of a moment-probe video show its flash object (notebooks 03 and 04).

A moment probe (:func:`glscl_lite.data.probes.moment_probe`) is a test scene plus one *flash*
object -- the last object of the probe's scene -- that is on screen for 20-30 % of the clip (it
appears near the end or disappears early).  The probe's scene is stored in ``probes/info.json``, so
which of the model's sampled frames show the flash follows from the scene and the frame times the
loader samples (:func:`~glscl_lite.data.video.sample_frame_indices`): no detector involved.  That is
the ground truth against which the notebooks compare GIM weights and LIM attention.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from glscl_lite.data import synthetic as syn
from glscl_lite.data.probes import scene_of
from glscl_lite.data.video import probe_video, sample_frame_indices
from glscl_lite.errors import DataError
from glscl_lite.utils import PathLike

__all__ = ["probe_video_file", "flash_frames"]


def probe_video_file(corpus_dir: PathLike, video_id: str) -> Path:
    """The mp4 of a probe video: ``glscl-lite synth`` writes them beside the corpus's (``DIR/videos``)."""
    return Path(corpus_dir) / "videos" / f"{video_id}.mp4"


def flash_frames(corpus_dir: PathLike, video_id: str, max_frames: int = 12, framerate: int = 1) -> np.ndarray:
    """``bool [max_frames]``: which sampled frames of moment-probe video ``video_id`` show its flash
    object (the frames :func:`~glscl_lite.data.video.load_clip` returns, in order; padding is False)."""
    scene = scene_of(corpus_dir, video_id)
    if scene is None or not str(video_id).startswith("probe_moment_"):
        raise DataError(f"{video_id}: not a moment-probe video of {corpus_dir}")
    info = probe_video(probe_video_file(corpus_dir, video_id), max_frames, framerate)
    t = sample_frame_indices(info["frames"], info["fps"], max_frames, framerate) / float(info["fps"])
    k = len(scene.objects) - 1  # moment_probe appends the flash after the test scene's objects
    visible = syn.object_track(scene.objects[k], scene.event_of(k), t, scene.duration)[4] > 0
    return np.pad(visible, (0, int(max_frames) - len(t)))
