"""glscl_lite.data.probe_frames: the flash frames of a moment probe, checked against the pixels."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from glscl_lite.data import synthetic as syn
from glscl_lite.data.probe_frames import flash_frames, probe_video_file
from glscl_lite.data.probes import read_probe_csv, scene_of
from glscl_lite.data.video import probe_video, sample_frame_indices
from glscl_lite.errors import DataError


def test_flash_frames_are_the_frames_where_the_flash_changes_the_picture(corpus):
    ids = list(dict.fromkeys(r["video_id"] for r in read_probe_csv(corpus, "moment")))
    assert ids
    for vid in ids:
        flash = flash_frames(corpus, vid, max_frames=12)
        info = probe_video(probe_video_file(corpus, vid), 12)
        n = info["sampled"]
        assert flash.shape == (12,) and flash.dtype == bool and not flash[n:].any()
        assert 1 <= flash.sum() <= n // 2, (vid, flash)
        # render the sampled frames with and without the flash object: they differ exactly on the flash frames
        scene = scene_of(corpus, vid)
        t = sample_frame_indices(info["frames"], info["fps"], 12) / info["fps"]
        k = len(scene.objects) - 1
        without = replace(scene, objects=scene.objects[:k], events=tuple(e for e in scene.events if e.obj != k))
        differs = np.abs(syn.render_frames(scene, t).astype(int) - syn.render_frames(without, t).astype(int)).sum(
            axis=(1, 2, 3)) > 0
        assert (differs == flash[:n]).all(), (vid, differs, flash[:n])
        # "appears" flashes end the clip, "disappears" flashes start it
        kind = scene.event_of(k).kind
        assert flash[n - 1] == (kind == "appears") and flash[0] == (kind == "disappears")


def test_flash_frames_refuses_other_videos(corpus):
    with pytest.raises(DataError):
        flash_frames(corpus, "probe_order_0000_a")
