"""Frame cache: build (in-process and with a process pool), read, identical to on-the-fly decoding."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from glscl_lite.cli import main as cli_main
from glscl_lite.data.cache import DecodedVideos, FrameCache, VideoSource, build_frame_cache
from glscl_lite.data.video import VideoRandAugment
from glscl_lite.errors import DataError
from glscl_lite.utils import OutputError

try:
    from data_fixtures import corrupt_file, make_corpus
except ImportError:  # tests/ imported as a package
    from tests.data_fixtures import corrupt_file, make_corpus

S, T = 32, 6


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    # video0: 0.3 s (1 frame), video1: 20 s (capped at T), others 2.5 s (3 frames)
    return make_corpus(tmp_path_factory.mktemp("cache_corpus"), n_train=4, n_test=2,
                       frames={"video0": 3, "video1": 200}, pattern="noise", size=(80, 48))


@pytest.fixture(scope="module")
def cache(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("caches") / "frames"
    info = build_frame_cache(corpus.all_ids, corpus.video_dir, out, max_frames=T, image_size=S,
                             workers=1, progress=False)
    return out, info


def test_build_summary_and_index(corpus, cache):
    out, info = cache
    assert info["path"] == str(out) and info["videos"] == 6
    assert info["shape"] == [6, T, S, S, 3] and info["bytes"] == 6 * T * S * S * 3
    assert info["missing"] == []
    index = json.loads((out / "index.json").read_text())
    assert index["video_ids"] == corpus.all_ids
    assert index["n_frames"] == [1, T, 3, 3, 3, 3]
    assert (index["image_size"], index["max_frames"], index["framerate"]) == (S, T, 1)
    assert index["format"] == "glscl-lite-frame-cache" and index["version"] == 1
    assert index["source_dir"] == str(corpus.video_dir.resolve())
    assert (out / "frames.u8").stat().st_size == info["bytes"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["frames"]  # no temp dirs left


def test_cache_matches_on_the_fly_decoding(corpus, cache):
    fc = FrameCache(cache[0])
    dv = DecodedVideos(corpus.video_dir, max_frames=T, image_size=S)
    assert isinstance(fc, VideoSource) and isinstance(dv, VideoSource)
    assert len(fc) == 6 and fc.video_ids == corpus.all_ids
    for vid in corpus.all_ids:
        a, ma = fc.get(vid)
        b, mb = dv.get(vid)
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape == (T, S, S, 3)
        assert ma.dtype == mb.dtype == np.int64
        assert np.array_equal(a, b) and np.array_equal(ma, mb)
    frames, mask = fc.get("video0")  # short video: one real frame, padded and masked
    assert mask.tolist() == [1, 0, 0, 0, 0, 0] and (frames[1:] == 0).all() and frames[0].any()
    assert not frames.flags.writeable  # a view into the read-only memmap
    assert "video0" in fc and "video99" not in fc and "video0" in dv and "video99" not in dv
    with pytest.raises(DataError, match=r"video99 is not in the frame cache"):
        fc.get("video99")


@pytest.mark.parametrize("mp_context", [None, "spawn"])
def test_pool_build_is_identical(corpus, cache, tmp_path, mp_context):
    info = build_frame_cache(corpus.all_ids, corpus.video_dir, tmp_path / "pooled", max_frames=T,
                             image_size=S, workers=2, progress=False, mp_context=mp_context)
    assert info["shape"] == cache[1]["shape"]
    assert (tmp_path / "pooled/frames.u8").read_bytes() == (cache[0] / "frames.u8").read_bytes()
    a = json.loads((tmp_path / "pooled/index.json").read_text())
    b = json.loads((cache[0] / "index.json").read_text())
    assert a == b


def test_cached_frames_can_be_augmented(cache):
    fc = FrameCache(cache[0])
    aug = VideoRandAugment()
    frames, mask = fc.get("video2", augment=aug)
    assert frames.shape == (T, S, S, 3) and mask.tolist() == [1, 1, 1, 0, 0, 0]
    assert (frames[3:] == 0).all()  # padding stays zero (not augmented)
    raw, _ = fc.get("video2")
    assert frames.flags.writeable and not np.shares_memory(frames, raw)


def test_pickle_does_not_copy_the_memmap(cache):
    fc = FrameCache(cache[0])
    fc.get("video1")  # opens the memmap
    blob = pickle.dumps(fc)
    assert len(blob) < 5000
    fc2 = pickle.loads(blob)
    assert np.array_equal(fc2.get("video1")[0], fc.get("video1")[0])


def test_bad_video_fails_and_leaves_nothing(corpus, tmp_path):
    import shutil

    vdir = tmp_path / "videos"
    shutil.copytree(corpus.video_dir, vdir)
    corrupt_file(vdir / "video3.mp4")
    out = tmp_path / "out" / "frames"
    with pytest.raises(DataError) as e:
        build_frame_cache(corpus.all_ids, vdir, out, max_frames=T, image_size=S, workers=1, progress=False)
    assert str(e.value).startswith(f"video3: {vdir / 'video3.mp4'}: corrupt or truncated video")
    assert not out.exists() and list(out.parent.iterdir()) == []
    with pytest.raises(DataError, match=r"^video3: .*corrupt"):
        build_frame_cache(corpus.all_ids, vdir, out, max_frames=T, image_size=S, workers=2, progress=False)
    assert list(out.parent.iterdir()) == []
    (vdir / "video4.mp4").unlink()
    info = build_frame_cache(corpus.all_ids, vdir, out, max_frames=T, image_size=S, workers=1,
                             progress=False, skip_bad=True)
    assert info["missing"] == ["video3", "video4"]
    fc = FrameCache(out)
    assert "video3" not in fc and "video2" in fc and fc.missing["video4"].endswith("video file not found")
    with pytest.raises(DataError, match=r"video3 is recorded as missing in the cache \(.*corrupt"):
        fc.get("video3")


def test_rebuild_replaces_existing_cache(corpus, tmp_path):
    out = tmp_path / "c"
    build_frame_cache(corpus.all_ids[:2], corpus.video_dir, out, max_frames=T, image_size=S,
                      workers=1, progress=False)
    build_frame_cache(corpus.all_ids[2:], corpus.video_dir, out, max_frames=T, image_size=16,
                      workers=1, progress=False)
    fc = FrameCache(out)
    assert fc.video_ids == corpus.all_ids[2:] and fc.image_size == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_truncated_or_mismatched_cache(cache, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(cache[0], bad)
    with open(bad / "frames.u8", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DataError) as e:
        FrameCache(bad)
    assert str(e.value).startswith(f"{bad / 'frames.u8'}: truncated or wrong size (1000 bytes, expected")
    shutil.copyfile(cache[0] / "frames.u8", bad / "frames.u8")
    index = json.loads((bad / "index.json").read_text())
    index["video_ids"] = index["video_ids"][:-1]
    (bad / "index.json").write_text(json.dumps(index))
    with pytest.raises(DataError, match=r"index\.json: index/shape mismatch"):
        FrameCache(bad)
    (bad / "index.json").write_text("{not json")
    with pytest.raises(DataError, match=r"index\.json: not valid JSON"):
        FrameCache(bad)
    (bad / "index.json").unlink()
    with pytest.raises(DataError, match=r"bad: not a frame cache \(index\.json not found\)"):
        FrameCache(bad)


def test_build_errors(corpus, tmp_path):
    with pytest.raises(DataError, match="no videos to cache"):
        build_frame_cache([], corpus.video_dir, tmp_path / "x", progress=False)
    with pytest.raises(DataError, match="1 duplicate id"):
        build_frame_cache(["video0", "video0"], corpus.video_dir, tmp_path / "x", progress=False)
    with pytest.raises(DataError, match="nowhere: video folder not found"):
        build_frame_cache(["video0"], tmp_path / "nowhere", tmp_path / "x", progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="not writable"):
        build_frame_cache(["video0"], corpus.video_dir, blocker / "cache", progress=False)


def test_cli_cache_frames(corpus, tmp_path, capsys):
    rc = cli_main(["cache", "frames", "--anno", str(corpus.anno_dir), "--videos", str(corpus.video_dir),
                   "--out", str(tmp_path / "fc"), "--max-frames", "4", "--size", "16", "--workers", "1",
                   "--quiet"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [6, 4, 16, 16, 3]
    assert FrameCache(tmp_path / "fc").video_ids == corpus.all_ids


def test_get_batch_equals_per_video_get(cache):
    fc = FrameCache(cache[0])
    ids = fc.video_ids[::-1][:5] + fc.video_ids[:1]  # unsorted, with a repeat
    frames, masks = fc.get_batch(ids)
    assert frames.shape == (6,) + fc.shape[1:] and masks.shape == (6, fc.max_frames)
    for i, vid in enumerate(ids):
        f, m = fc.get(vid)
        assert np.array_equal(frames[i], f) and np.array_equal(masks[i], m)
    with pytest.raises(DataError, match="not in the frame cache"):
        fc.get_batch(["no_such_video"])
