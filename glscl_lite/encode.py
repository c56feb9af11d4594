"""Per-item sides: encode each text and each video once (from raw inputs, the frame cache or a
feature cache), the work evaluation, probes and the search index share.  Pairs are scored from
these sides by the model's head (:meth:`glscl_lite.model.glscl.RetrievalModel.similarity`)."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from glscl_lite.config import Config
from glscl_lite.model.glscl import RetrievalModel, Side, cat_sides
from glscl_lite.utils import autocast, use_bf16

__all__ = ["encode_texts", "encode_videos"]


@torch.no_grad()
def encode_texts(model: RetrievalModel, captions, cfg: Config, device: torch.device, features=None) -> Side:
    """Text side for a list of :class:`Caption` (from raw ids, or from a feature cache)."""
    from glscl_lite.data.text import tokenize

    bf16 = autocast(cfg, device)
    sides = []
    if features is not None:
        rows = features.caption_rows(captions)
    else:
        ids, mask = tokenize([c.caption for c in captions], cfg.max_words)
    for s in range(0, len(captions), cfg.batch_size_val):
        with bf16:
            if features is not None:
                t = features.texts(rows[s:s + cfg.batch_size_val])
                side = model.encode_text_features(t["sentence"].to(device), t["words"].to(device),
                                                  t["text_mask"].to(device))
            else:
                side = model.encode_text(ids[s:s + cfg.batch_size_val].to(device),
                                         mask[s:s + cfg.batch_size_val].to(device))
        sides.append({k: v.float() if v.is_floating_point() else v for k, v in side.items()})
    return cat_sides(sides)


@torch.no_grad()
def encode_videos(model: RetrievalModel, video_ids: list[str], cfg: Config, device: torch.device,
                  source=None, features=None) -> Side:
    """Video side for ``video_ids`` (decoded / frame cache via ``source``, or a feature cache)."""
    from glscl_lite.data.dataset import VideoDataset

    bf16 = autocast(cfg, device)
    sides = []
    if features is not None:
        rows = features.video_rows(video_ids)
        for s in range(0, len(video_ids), cfg.batch_size_val):
            v = features.videos(rows[s:s + cfg.batch_size_val])
            with bf16:
                patches = v["patch_feats"].to(device) if model.head.uses_patches \
                    and "patch_feats" in v else None  # EERCF scores patch tokens
                side = model.encode_video_features(v["frame_feats"].to(device), v["video_mask"].to(device),
                                                   patches=patches)
            sides.append({k: x.float() if x.is_floating_point() else x for k, x in side.items()})
        return cat_sides(sides)
    if hasattr(source, "get_batch"):  # frame cache: one memmap read per batch
        data, batch_size = _CachedVideoBatches(source, video_ids, cfg.batch_size_val), None
    else:
        data, batch_size = VideoDataset(video_ids, source), cfg.batch_size_val
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=cfg.workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
    for b in loader:
        with bf16:
            side = model.encode_video(b["video"].to(device, non_blocking=True),
                                      b["video_mask"].to(device, non_blocking=True))
        sides.append({k: x.float() if x.is_floating_point() else x for k, x in side.items()})
    return cat_sides(sides)


class _CachedVideoBatches(torch.utils.data.Dataset):
    """Item k = the k-th chunk of videos, read from a frame cache in one go."""

    def __init__(self, cache, video_ids: list[str], size: int):
        self.cache, self.video_ids, self.size = cache, video_ids, size

    def __len__(self) -> int:
        return -(-len(self.video_ids) // self.size)

    def __getitem__(self, k: int) -> dict:
        frames, masks = self.cache.get_batch(self.video_ids[k * self.size:(k + 1) * self.size])
        return {"video": torch.from_numpy(frames), "video_mask": torch.from_numpy(masks)}


_bf16 = use_bf16  # the one bf16 decision is glscl_lite.utils.use_bf16
