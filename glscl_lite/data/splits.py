"""The three splits a run uses, built from a :class:`~glscl_lite.config.Config`.

* train: every caption of every training video (``train_csv``), minus the validation videos;
* val: ``val_csv`` if given, else ``val_videos`` videos carved from the training list (one caption
  each, split seed fixed so every run and seed sees the same validation set) -- never the test set;
* test: ``test_csv`` (MSR-VTT 1k-A: one caption per video).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from glscl_lite.config import Config
from glscl_lite.data.msrvtt import (Caption, MSRVTTAnnotations, carve_validation, load_annotations,
                                    read_caption_csv, read_video_list, training_pairs,
                                    validation_captions)
from glscl_lite.errors import DataError

SPLIT_SEED = 0  # validation carve-out does not depend on the training seed


@dataclass
class EvalSet:
    """Captions and the videos they are ranked against; ``text_video[i]`` = index of text i's video."""

    name: str
    captions: list[Caption]
    video_ids: list[str]

    @property
    def text_video(self) -> list[int]:
        pos = {v: i for i, v in enumerate(self.video_ids)}
        return [pos[c.video_id] for c in self.captions]

    @classmethod
    def from_captions(cls, name: str, captions: list[Caption]) -> "EvalSet":
        return cls(name, list(captions), list(dict.fromkeys(c.video_id for c in captions)))


@dataclass
class Splits:
    train: list[Caption]
    val: EvalSet
    test: Optional[EvalSet]

    @property
    def train_videos(self) -> list[str]:
        return list(dict.fromkeys(c.video_id for c in self.train))


def all_test_captions(test: EvalSet, annotations: MSRVTTAnnotations) -> EvalSet:
    """Every caption of the test videos (in the test list's video order), e.g. 20 per video: MSR-VTT's
    "full" protocol on the 1k-A videos, 20x the queries of the one-caption test list."""
    missing = [v for v in test.video_ids if v not in annotations.captions_by_video]
    if missing:
        raise DataError(f"{annotations.path}: test video {missing[0]} has no captions ({len(missing)} such videos)")
    return EvalSet.from_captions("test_all", [c for v in test.video_ids for c in annotations.captions(v)])


def build_splits(cfg: Config, annotations: Optional[MSRVTTAnnotations] = None) -> Splits:
    anno = annotations or load_annotations(cfg.anno_path)
    train_ids = read_video_list(cfg.resolve(cfg.train_csv))
    test_path = cfg.resolve(cfg.test_csv)
    test = EvalSet.from_captions("test", read_caption_csv(test_path)) if test_path.exists() else None
    if cfg.val_csv:
        val = EvalSet.from_captions("val", read_caption_csv(cfg.resolve(cfg.val_csv)))
        val_ids = set(val.video_ids)
        train_ids = [v for v in train_ids if v not in val_ids]
    else:
        if cfg.val_videos >= len(train_ids):
            raise DataError(f"{cfg.resolve(cfg.train_csv)}: cannot carve val_videos={cfg.val_videos} "
                            f"validation videos out of {len(train_ids)} training videos")
        train_ids, val_ids_list = carve_validation(train_ids, cfg.val_videos, seed=SPLIT_SEED)
        val = EvalSet.from_captions("val", validation_captions(anno, val_ids_list, 1, seed=SPLIT_SEED))
    if test is not None:
        leak = set(test.video_ids) & (set(train_ids) | set(val.video_ids))
        if leak:
            raise DataError(f"{test_path}: {len(leak)} test video(s) also in train/val, e.g. {sorted(leak)[0]}")
    return Splits(training_pairs(anno, train_ids, csv_name=str(cfg.resolve(cfg.train_csv))), val, test)


def video_source(cfg: Config, image_size: int):
    """Frame cache when ``cfg.frame_cache`` is set (checked against the model's resolution and,
    by provenance, against the videos in ``cfg.video_path``), else decoding on the fly."""
    from glscl_lite.data.cache import DecodedVideos, FrameCache

    if cfg.frame_cache:
        cache = FrameCache(cfg.frame_cache)
        if cache.image_size != image_size or cache.max_frames != cfg.max_frames:
            raise DataError(f"{cfg.frame_cache}: frame cache holds {cache.max_frames} frames at "
                            f"{cache.image_size} px but the run needs {cfg.max_frames} at {image_size} px; "
                            f"rebuild it with: glscl-lite cache frames --size {image_size} "
                            f"--max-frames {cfg.max_frames} ...")
        cache.check_source(cfg.video_path, cfg.anno_path)  # decoded from these very videos?
        return cache
    return DecodedVideos(cfg.video_path, cfg.max_frames, image_size, cfg.video_framerate)


def ensure_frame_cache(cfg: Config, image_size: int, progress: bool = True) -> None:
    """Build ``cfg.frame_cache`` (every video of the annotation folder decoded once) if it is set
    and does not exist yet; the ``smoke`` preset relies on this on its first run."""
    from pathlib import Path

    if not cfg.frame_cache or (Path(cfg.frame_cache) / "index.json").exists():
        return
    from glscl_lite.data.cache import build_frame_cache
    from glscl_lite.data.msrvtt import all_video_ids

    if progress:
        print(f"building frame cache {cfg.frame_cache} (decoding every video once)")
    build_frame_cache(all_video_ids(cfg.anno_path), cfg.video_path, cfg.frame_cache, max_frames=cfg.max_frames,
                      image_size=image_size, framerate=cfg.video_framerate, progress=progress)
