"""Frame sampling, decoding errors, CLIP preprocessing and video-consistent RandAugment."""
from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
from PIL import Image

from glscl_lite.data.video import (CLIP_MEAN, CLIP_STD, VideoRandAugment, load_clip,
                                   normalize_frames, preprocess_frames, probe_video, read_frames,
                                   resize_center_crop, sample_frame_indices)
from glscl_lite.errors import DataError

try:
    from data_fixtures import corrupt_file, frame_value, truncate_file, write_video
except ImportError:  # tests/ imported as a package
    from tests.data_fixtures import corrupt_file, frame_value, truncate_file, write_video


# ------------------------------------------------------------------------------------- sampling
def test_sampling_one_per_second_then_linspace():
    # 15 s at 10 fps -> 15 candidates 0, 10, ..., 140; 12 picked by linspace(0, 14, 12).astype(int)
    idx = sample_frame_indices(150, 10.0, max_frames=12)
    assert idx.tolist() == [0, 10, 20, 30, 50, 60, 70, 80, 100, 110, 120, 140]
    assert idx.dtype == np.int64


def test_sampling_short_video_takes_all_candidates():
    assert sample_frame_indices(25, 10.0).tolist() == [0, 10, 20]
    assert sample_frame_indices(1, 30.0).tolist() == [0]
    assert sample_frame_indices(0, 30.0).tolist() == []


def test_sampling_stride_rounding_and_framerate():
    # stride = round(fps / framerate): 29.97 -> 30; Python rounds 2.5 to 2; fps < 0.5 -> stride 1
    assert sample_frame_indices(61, 29.97).tolist() == [0, 30, 60]
    assert sample_frame_indices(7, 2.5).tolist() == [0, 2, 4, 6]
    assert sample_frame_indices(3, 0.3).tolist() == [0, 1, 2]
    assert sample_frame_indices(60, 30.0, framerate=2).tolist() == [0, 15, 30, 45]
    # exactly max_frames candidates: all kept
    assert sample_frame_indices(120, 10.0, max_frames=12).tolist() == list(range(0, 120, 10))


@pytest.mark.parametrize("fps", [0.0, -1.0, float("nan"), float("inf")])
def test_sampling_rejects_bad_fps(fps):
    with pytest.raises(ValueError, match="fps"):
        sample_frame_indices(100, fps)


# ------------------------------------------------------------------------------------- decoding
def test_read_frames_returns_the_sampled_frames(tmp_path):
    path = write_video(tmp_path / "v.mp4", n_frames=150, fps=10)
    frames, n = read_frames(path, max_frames=12)
    assert n == 12 and frames.shape == (12, 48, 64, 3) and frames.dtype == np.uint8
    want = [frame_value(i) for i in sample_frame_indices(150, 10.0)]
    got = frames.reshape(12, -1).mean(axis=1)
    assert np.abs(got - want).max() < 3, (got, want)


def test_short_video_is_padded_and_masked_not_an_error(tmp_path):
    path = write_video(tmp_path / "short.mp4", n_frames=25, fps=10)  # 2.5 s -> 3 frames
    frames, mask = load_clip(path, max_frames=12, image_size=32)
    assert frames.shape == (12, 32, 32, 3) and frames.dtype == np.uint8
    assert mask.dtype == np.int64 and mask.tolist() == [1, 1, 1] + [0] * 9
    assert (frames[3:] == 0).all()
    assert np.abs(frames[:3].reshape(3, -1).mean(1) - [frame_value(0), frame_value(10), frame_value(20)]).max() < 3
    assert probe_video(path) == {"frames": 25, "fps": 10.0, "sampled": 3}


def test_missing_video(tmp_path):
    with pytest.raises(DataError, match=r"nope\.mp4: video file not found"):
        read_frames(tmp_path / "nope.mp4")


def test_corrupt_video(tmp_path, capfd):
    path = corrupt_file(tmp_path / "bad.mp4")
    with pytest.raises(DataError, match=r"bad\.mp4: corrupt or truncated video"):
        read_frames(path)
    # decord's own "[hh:mm:ss] .../video_reader.cc:NN: ERROR opening: ..." line is not printed (issue 13)
    assert "ERROR opening" not in capfd.readouterr().err


def test_stderr_during_decord_open_is_kept_except_decords_open_error(capfd):
    import os

    from glscl_lite.data.video import _decord_open_errors_dropped

    with _decord_open_errors_dropped():
        with _decord_open_errors_dropped():  # nested (thread pool of data check): restored once, at the end
            os.write(2, b"before\n[09:00:01] /src/video/video_reader.cc:83: ERROR opening: x.mp4, Invalid data\n")
        os.write(2, b"after\n")
    os.write(2, b"outside\n")
    assert capfd.readouterr().err == "before\nafter\noutside\n"


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_video(tmp_path, faststart):
    # without faststart the index (moov) is at the end and is lost; with it, the data is short
    path = write_video(tmp_path / "trunc.mp4", n_frames=60, fps=10, pattern="noise", faststart=faststart)
    truncate_file(path, 0.5)
    with pytest.raises(DataError, match=r"trunc\.mp4: corrupt or truncated video"):
        read_frames(path)
    with pytest.raises(DataError, match=r"trunc\.mp4: corrupt or truncated video"):
        probe_video(path)


def test_zero_length_video(tmp_path):
    path = write_video(tmp_path / "zero.mp4", n_frames=0)
    assert path.stat().st_size > 0
    with pytest.raises(DataError, match=r"zero\.mp4: zero-length video \(0 frames"):
        read_frames(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.mp4: empty file \(0 bytes\)"):
        load_clip(path, 12, 32)


# -------------------------------------------------------------------------------- preprocessing
@pytest.fixture(scope="module")
def open_clip_val_transform():
    import open_clip

    return open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)[2]


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (100, 50), (224, 224), (300, 224)])
def test_resize_crop_normalize_matches_open_clip_val_transform(size, open_clip_val_transform):
    val_tf = open_clip_val_transform
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    ref = val_tf(Image.fromarray(arr))  # [3, 224, 224]
    ours = normalize_frames(resize_center_crop(arr, 224)[None])[0]
    assert ours.shape == ref.shape == (3, 224, 224)
    assert (ours - ref).abs().max().item() < 1e-5


def test_preprocess_frames_shapes():
    frames = np.random.default_rng(1).integers(0, 256, (4, 30, 50, 3), dtype=np.uint8)
    out = preprocess_frames(frames, 16)
    assert out.shape == (4, 16, 16, 3) and out.dtype == np.uint8
    assert np.array_equal(out[2], resize_center_crop(frames[2], 16))


def test_normalize_values_layouts_and_padding_mask():
    frames = np.zeros((2, 3, 4, 5, 3), dtype=np.uint8)  # [B, T, H, W, 3]
    frames[..., 0] = 255
    frames[..., 1] = 128
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    out = normalize_frames(frames, mask)
    assert out.shape == (2, 3, 3, 4, 5) and out.dtype == torch.float32
    want = torch.tensor([(1 - CLIP_MEAN[0]) / CLIP_STD[0], (128 / 255 - CLIP_MEAN[1]) / CLIP_STD[1],
                         (0 - CLIP_MEAN[2]) / CLIP_STD[2]])
    assert torch.allclose(out[0, 0, :, 0, 0], want, atol=1e-6)
    # padded frames are exact (positive) zeros, real ones are not touched
    assert (out[0, 2] == 0).all() and (out[1, 1:] == 0).all()
    assert not torch.signbit(out[1, 2]).any()
    assert torch.equal(out[0, 1], out[0, 0])
    # channels-first input gives the same result
    chw = torch.from_numpy(frames).permute(0, 1, 4, 2, 3)
    assert torch.equal(normalize_frames(chw, torch.from_numpy(mask)), out)
    # without a mask padding is the constant "black" image, as CLIP would see raw zeros
    assert not (normalize_frames(frames)[0, 2] == 0).all()


def test_normalize_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        normalize_frames(np.zeros((2, 4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="mask shape"):
        normalize_frames(np.zeros((2, 4, 4, 3), dtype=np.uint8), np.ones(3))
    with pytest.raises(ValueError, match="expected"):
        normalize_frames(np.zeros((2, 4, 4, 5), dtype=np.uint8))


def test_normalize_accepts_read_only_memmap_like_arrays():
    a = np.full((2, 4, 4, 3), 7, dtype=np.uint8)
    a.flags.writeable = False
    out = normalize_frames(a, np.array([1, 0]))
    assert out.shape == (2, 3, 4, 4) and (out[1] == 0).all()


# ---------------------------------------------------------------------------------- augmentation
def _textured_clip(n=5, h=48, w=64, seed=0, moving=True):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if not moving:
        return np.stack([base] * n)
    return np.stack([np.roll(base, 3 * i, axis=1) for i in range(n)])


def test_augment_constant_clip_stays_constant():
    aug = VideoRandAugment()
    clip = _textured_clip(moving=False)
    for seed in range(8):
        out = aug(clip, seed=seed)
        assert out.shape == clip.shape and out.dtype == np.uint8
        for f in out[1:]:
            assert np.array_equal(f, out[0])


def test_augment_same_ops_for_every_frame():
    aug = VideoRandAugment()
    clip = _textured_clip()
    changed = 0
    for seed in range(6):
        out = aug(clip, seed=seed)
        for i in range(len(clip)):  # frame i alone, same seed -> same ops -> same pixels
            assert np.array_equal(out[i], aug(clip[i:i + 1], seed=seed)[0])
        changed += not np.array_equal(out, clip)
    assert changed >= 3  # the augmentation does something


def test_augment_different_clips_get_different_ops():
    aug = VideoRandAugment()
    clip = _textured_clip(moving=False)
    outs = [aug(clip, seed=s)[0] for s in range(6)]
    distinct = {o.tobytes() for o in outs}
    assert len(distinct) >= 4
    # without a seed, consecutive clips continue the global generators -> new ops each time
    random.seed(123)
    np.random.seed(123)
    a, b = aug(clip), aug(clip)
    assert not np.array_equal(a, b)
    assert np.array_equal(a[0], a[-1]) and np.array_equal(b[0], b[-1])


def test_augment_seed_does_not_touch_global_generators_and_is_reproducible():
    aug = VideoRandAugment()
    clip = _textured_clip()
    random.seed(5)
    np.random.seed(5)
    py, npst = random.getstate(), np.random.get_state()
    out1 = aug(clip, seed=42)
    assert random.getstate() == py
    assert np.array_equal(np.random.get_state()[1], npst[1])
    assert np.array_equal(out1, aug(clip, seed=42))


def test_augment_uses_timm_increasing_ops_bicubic_and_fill():
    aug = VideoRandAugment()
    names = [op.name for op in aug.transform.ops]
    assert len(names) == 15 and "TranslateXRel" in names and "SolarizeIncreasing" in names
    assert aug.transform.num_layers == 4
    op = aug.transform.ops[0]
    assert op.prob == 0.5 and op.magnitude == 7 and op.magnitude_std == 0.5
    assert op.kwargs["fillcolor"] == (128, 128, 128) and op.kwargs["resample"] == Image.BICUBIC
    assert pickle.loads(pickle.dumps(aug)).transform.num_layers == 4


def test_load_clip_augments_original_resolution_frames_before_resizing(tmp_path):
    path = write_video(tmp_path / "c.mp4", n_frames=40, fps=10, pattern="constant", size=(64, 48))
    aug = VideoRandAugment()
    np.random.seed(3)
    random.seed(3)
    frames, mask = load_clip(path, 12, 32, augment=aug)
    assert mask.tolist() == [1] * 4 + [0] * 8
    assert (frames[4:] == 0).all()
    # the same pipeline by hand: decode -> augment at 64x48 -> resize + crop
    np.random.seed(3)
    random.seed(3)
    raw, n = read_frames(path, 12)
    by_hand = preprocess_frames(aug([Image.fromarray(f) for f in raw]), 32)
    assert np.array_equal(frames[:4], by_hand)
    # identical source frames stay (nearly: H.264 noise of a few code values) identical
    real = frames[:4].astype(float)
    assert np.abs(real - real[0]).mean() < 1.5


def test_unreadable_fps(tmp_path, monkeypatch):
    """decord reports a non-finite or zero average fps (broken container timing)."""
    import types

    import glscl_lite.data.video as video_mod

    class FakeReader:
        def __init__(self, path, ctx=None, num_threads=0):
            pass

        def __len__(self):
            return 10

        def get_avg_fps(self):
            return float("nan")

    fake = types.SimpleNamespace(VideoReader=FakeReader, cpu=lambda i: None)
    monkeypatch.setattr(video_mod, "_decord", lambda: fake)
    path = write_video(tmp_path / "nofps.mp4", n_frames=5)
    with pytest.raises(DataError, match=r"nofps\.mp4: unreadable fps \(nan\)"):
        read_frames(path)
    with pytest.raises(DataError, match=r"nofps\.mp4: unreadable fps"):
        probe_video(path)
