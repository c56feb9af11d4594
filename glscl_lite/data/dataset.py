"""Torch datasets over (caption, video) pairs, captions and videos.  CPU-only and picklable, so
they work in DataLoader worker processes.

Videos come out as uint8 ``[T, S, S, 3]`` plus an int64 mask ``[T]``; normalise on the model's
device with :func:`glscl_lite.data.video.normalize_frames` (``normalize_frames(video, video_mask)``).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from glscl_lite.data.cache import VideoSource
from glscl_lite.data.msrvtt import Caption
from glscl_lite.data.text import tokenize
from glscl_lite.data.video import VideoRandAugment


def _video_tensor(frames: np.ndarray) -> torch.Tensor:
    # memmap views are read-only: copy once into a tensor-owned buffer
    return torch.from_numpy(np.array(frames, dtype=np.uint8, copy=True))


class PairDataset(Dataset):
    """One item per (caption, video) pair: training iterates over captions (spec §6.1).

    Item ``i`` -> ``{"text_ids" [L] long, "text_mask" [L] long, "video" uint8 [T, S, S, 3],
    "video_mask" [T] long, "video_index" int (position in ``self.video_ids``), "caption_index" i}``.
    All captions are tokenised once here.  ``augment`` (training only) is applied per clip.
    """

    def __init__(self, pairs: Sequence[Caption], source: VideoSource, max_words: int = 32,
                 augment: Optional[VideoRandAugment] = None):
        self.pairs = list(pairs)
        self.source = source
        self.max_words = int(max_words)
        self.augment = augment
        self.video_ids: list[str] = list(dict.fromkeys(p.video_id for p in self.pairs))
        pos = {v: i for i, v in enumerate(self.video_ids)}
        self.pair_video_index = torch.tensor([pos[p.video_id] for p in self.pairs], dtype=torch.long)
        self.text_ids, self.text_mask = tokenize([p.caption for p in self.pairs], self.max_words)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        pair = self.pairs[i]
        frames, mask = self.source.get(pair.video_id, augment=self.augment)
        return {
            "text_ids": self.text_ids[i],
            "text_mask": self.text_mask[i],
            "video": _video_tensor(frames),
            "video_mask": torch.from_numpy(np.asarray(mask, dtype=np.int64).copy()),
            "video_index": int(self.pair_video_index[i]),
            "caption_index": int(i),
        }


class TextDataset(Dataset):
    """Each caption once (evaluation).  Item -> ``{"text_ids", "text_mask", "index"}``.

    ``captions`` are :class:`Caption` objects (then ``self.video_ids[i]`` is caption i's video) or
    plain strings.
    """

    def __init__(self, captions: Sequence[Union[Caption, str]], max_words: int = 32):
        self.captions = list(captions)
        texts = [c.caption if isinstance(c, Caption) else c for c in self.captions]
        self.video_ids: list[Optional[str]] = [c.video_id if isinstance(c, Caption) else None
                                               for c in self.captions]
        self.text_ids, self.text_mask = tokenize(texts, max_words)

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int) -> dict:
        return {"text_ids": self.text_ids[i], "text_mask": self.text_mask[i], "index": int(i)}


class VideoDataset(Dataset):
    """Each video once (evaluation).  Item -> ``{"video" uint8 [T, S, S, 3], "video_mask" [T], "index"}``."""

    def __init__(self, video_ids: Sequence[str], source: VideoSource):
        self.video_ids = list(video_ids)
        self.source = source

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> dict:
        frames, mask = self.source.get(self.video_ids[i])
        return {"video": _video_tensor(frames),
                "video_mask": torch.from_numpy(np.asarray(mask, dtype=np.int64).copy()),
                "index": int(i)}


def collate(batch: list[dict]) -> dict:
    """Stack a list of item dicts into a dict of batched tensors (``torch`` default collation)."""
    return default_collate(batch)
