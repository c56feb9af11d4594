"""Feature cache: frozen-CLIP outputs stored once, so training runs the temporal transformer and the
head only (``glscl-lite cache features``).

Layout of the cache folder (numpy files, memory-mapped when read)::

    meta.json            encoder, pretrained, text_mask, max_words, max_frames, image_size, shapes
    video_ids.json       video order
    captions.json        [[video_id, caption], ...] caption order
    frame_feats.npy      [Nv, T, D] float16   per-frame CLS after ln_post + proj (spec 1.3)
    video_mask.npy       [Nv, T]    int8
    sentence.npy         [Nc, D]    float16   EOT feature (spec 1.2)
    words.npy            [Nc, L, D] float16   every token after ln_final + text_projection
    text_mask.npy        [Nc, L]    int8
    patch_feats.npy      [Nv, T, P, D] float16  patch tokens after ln_post + proj; only when the config
                         scores patches (head=eercf, eercf_patches) -- served whenever present

``meta.json`` also records the provenance (annotation files, the frame cache's digest or the
videos' size and mtime, the settings); :meth:`FeatureCache.check_matches` refuses a cache whose
inputs changed.  One builder at a time; the arrays' bytes are allocated up front.

This is the uvadlc "cache frozen-backbone features" trick; it differs from the paper, which
fine-tunes CLIP at lr 1e-7 (in effect nearly frozen, spec S1).  Augmentation cannot be applied
(features are computed once from un-augmented frames).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from glscl_lite.config import FEATURE_CACHE_KEYS, Config
from glscl_lite.data.msrvtt import Caption, load_annotations
from glscl_lite.errors import DataError, UserError
from glscl_lite.utils import PathLike, resolve_device, seed_everything, use_bf16

MATCH_KEYS = FEATURE_CACHE_KEYS  # defined in glscl_lite.config


def backbone_checksum(backbone: torch.nn.Module) -> str:
    """Short fingerprint of the CLIP weights that make features (sum and abs-sum of every tensor).

    The logit scale is left out: it scales scores, not features, and GLSCL trains it even with a
    frozen backbone, so every cell of a frozen-backbone grid shares one fingerprint."""
    import hashlib

    h = hashlib.sha1()
    for name, p in sorted(backbone.state_dict().items()):
        if name.endswith("logit_scale"):
            continue
        t = p.detach().double()
        h.update(f"{name}:{t.sum().item():.6e}:{t.abs().sum().item():.6e}".encode())
    return h.hexdigest()[:16]


class FeatureCache:
    """Read-only access to a feature cache folder."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        meta = self.path / "meta.json"
        if not meta.is_file():
            raise DataError(f"{self.path}: not a feature cache (meta.json not found); "
                            "build one with `glscl-lite cache features`")
        self.meta = json.loads(meta.read_text())
        self.video_ids: list[str] = json.loads((self.path / "video_ids.json").read_text())
        self.captions = [Caption(v, c) for v, c in json.loads((self.path / "captions.json").read_text())]
        self._vpos = {v: i for i, v in enumerate(self.video_ids)}
        self._cpos = {(c.video_id, c.caption): i for i, c in enumerate(self.captions)}
        load = lambda name: np.load(self.path / name, mmap_mode="r")  # noqa: E731
        self.frame_feats, self.video_mask = load("frame_feats.npy"), load("video_mask.npy")
        self.sentence, self.words, self.text_mask = load("sentence.npy"), load("words.npy"), load("text_mask.npy")
        self.patch_feats = load("patch_feats.npy") if (self.path / "patch_feats.npy").is_file() else None
        if len(self.frame_feats) != len(self.video_ids) or len(self.sentence) != len(self.captions):
            raise DataError(f"{self.path}: arrays and index files disagree; rebuild the cache")

    def check_matches(self, cfg: Config, backbone=None) -> None:
        """The cache must come from the same settings and the same (frozen) CLIP weights."""
        bad = [f"{k}: cache {self.meta.get(k)!r} vs config {getattr(cfg, k)!r}"
               for k in MATCH_KEYS if self.meta.get(k) != getattr(cfg, k)]
        if backbone is not None and self.meta.get("backbone_checksum") != backbone_checksum(backbone):
            bad.append("CLIP weights differ (random init with another seed, or other weights)")
        from glscl_lite.model.registry import needs_patches

        if needs_patches(cfg) and self.patch_feats is None:
            bad.append("no patch_feats (EERCF scores patches: build the cache with --set head=eercf)")
        if bad:
            raise UserError(f"{self.path}: feature cache was built with other settings ({'; '.join(bad)})")
        self.check_provenance(cfg)

    def check_provenance(self, cfg: Config) -> None:
        """Refuse the cache when the annotation files, the videos (or frame cache) or the corpus
        folder differ from the ones it was computed from."""
        from glscl_lite import provenance

        provenance.check(self.meta.get("provenance"), feature_fingerprint(cfg, self.video_ids),
                         f"{self.path} (feature cache)",
                         f"glscl-lite cache features --config CONFIG --set anno_path={cfg.anno_path} "
                         f"--out {self.path} (a new folder, or delete this one)")


    def video_rows(self, video_ids: list[str]) -> np.ndarray:
        try:
            return np.asarray([self._vpos[v] for v in video_ids])
        except KeyError as exc:
            raise DataError(f"{self.path}: video {exc.args[0]} is not in the feature cache") from None

    def caption_rows(self, captions: list[Caption]) -> np.ndarray:
        try:
            return np.asarray([self._cpos[(c.video_id, c.caption)] for c in captions])
        except KeyError as exc:
            raise DataError(f"{self.path}: caption {exc.args[0]!r} is not in the feature cache") from None

    def videos(self, rows) -> dict[str, torch.Tensor]:
        rows = np.asarray(rows)
        out = {"frame_feats": torch.from_numpy(np.ascontiguousarray(self.frame_feats[rows])),  # fp16
               "video_mask": torch.from_numpy(np.ascontiguousarray(self.video_mask[rows])).long()}
        if self.patch_feats is not None:  # [n, T, P, D] fp16, for EERCF
            out["patch_feats"] = torch.from_numpy(np.ascontiguousarray(self.patch_feats[rows]))
        return out

    def texts(self, rows) -> dict[str, torch.Tensor]:
        rows = np.asarray(rows)
        return {"sentence": torch.from_numpy(np.ascontiguousarray(self.sentence[rows])),  # fp16: the model
                "words": torch.from_numpy(np.ascontiguousarray(self.words[rows])),        # casts on device
                "text_mask": torch.from_numpy(np.ascontiguousarray(self.text_mask[rows])).long()}


class CachedPairs(torch.utils.data.Dataset):
    """Training pairs served from a feature cache: item -> cached text and video features."""

    def __init__(self, cache: FeatureCache, pairs: list[Caption]):
        self.cache = cache
        self.text_rows = cache.caption_rows(pairs)
        self.video_rows = cache.video_rows([p.video_id for p in pairs])

    def __len__(self) -> int:
        return len(self.text_rows)

    def batch(self, indices) -> dict[str, torch.Tensor]:
        """A whole batch at once (fancy indexing on the memmaps; no per-item Python overhead)."""
        idx = np.asarray(indices)
        return {**self.cache.texts(self.text_rows[idx]), **self.cache.videos(self.video_rows[idx])}


def feature_fingerprint(cfg: Config, video_ids: list[str]) -> dict:
    """What a feature cache of ``cfg`` is computed from: the annotation files, the frame cache
    (its digest) or the videos (size, mtime), the corpus folder and the settings that matter."""
    from glscl_lite import provenance

    if cfg.frame_cache and (Path(cfg.frame_cache) / "index.json").is_file():
        index = json.loads((Path(cfg.frame_cache) / "index.json").read_text())
        frames = {"frame_cache": (index.get("provenance") or {}).get("digest")}
    else:
        frames = {"videos": provenance.fingerprint_videos(cfg.video_path, video_ids)}
    return provenance.fingerprint(annotations=provenance.fingerprint_annotations(cfg.anno_path), **frames,
                                  settings={"anno_path": str(Path(cfg.anno_path).resolve()),
                                            **{k: getattr(cfg, k) for k in MATCH_KEYS}})


def video_inputs(cfg: Config, image_size: int):
    """Where a run's videos come from, decided once: ``(None, FeatureCache)`` with ``cfg.feature_cache``
    (cached CLIP outputs), else ``(source, None)`` with the frame cache or on-the-fly decoding
    (:func:`glscl_lite.data.splits.video_source`).  Training and ``glscl-lite eval`` read videos
    through this; the search index (galleries outside a run's caches) and the feature-cache builder
    fall back per video."""
    from glscl_lite.data.splits import video_source

    if cfg.feature_cache:
        return None, FeatureCache(cfg.feature_cache)
    return video_source(cfg, image_size), None


def frozen_backbone(cfg: Config) -> torch.nn.Module:
    """The CLIP that makes ``cfg``'s features, in eval mode on the CPU: the stand-in's or OpenAI's
    weights, or a random init seeded with ``cfg.seed`` (the same weights the trainer builds)."""
    from glscl_lite.model.backbone import CLIPBackbone

    seed_everything(cfg.seed)
    return CLIPBackbone(cfg.base_encoder, cfg.pretrained, cfg.text_mask).eval()


def reuse_feature_cache(cfg: Config, out: PathLike) -> Optional[dict]:
    """The ``meta.json`` of the complete feature cache at ``out`` when it was built from exactly
    ``cfg``'s settings, inputs (annotations, frames) and CLIP weights; ``None`` when there is none.

    A cache of anything else is an error naming what differs: ``glscl-lite cache features`` replaces
    a cache only when asked (``--force``), since a build costs minutes to hours."""
    out = Path(out)
    if not (out / "meta.json").is_file():
        return None
    cache = FeatureCache(out)
    try:
        cache.check_matches(cfg, frozen_backbone(cfg))
    except UserError as exc:
        raise UserError(f"{exc}; pass --force to replace it, or choose another --out") from None
    return cache.meta


@torch.no_grad()
def build_feature_cache(cfg: Config, out: PathLike, progress: bool = True,
                        device: Optional[str] = None, patches: Optional[bool] = None) -> dict:
    """Encode every caption and video of the annotation folder once with the (frozen) CLIP.

    ``patches``: also store the patch tokens (``patch_feats.npy``); default: when ``cfg`` needs
    them (EERCF with patch scores).  Other heads ignore the patches, so one cache with patches can
    serve several heads."""
    from tqdm.auto import tqdm

    from glscl_lite.data.dataset import TextDataset, VideoDataset
    from glscl_lite.data.msrvtt import all_video_ids, read_caption_csv
    from glscl_lite.data.splits import video_source
    from glscl_lite.data.video import normalize_frames
    from glscl_lite.model.registry import needs_patches

    t0 = time.time()
    dev = resolve_device(device or cfg.device)
    anno = load_annotations(cfg.anno_path)
    video_ids = all_video_ids(cfg.anno_path)
    captions: list[Caption] = []
    seen = set()
    for vid in video_ids:
        caps = anno.captions(vid) if vid in anno else []
        for c in caps:
            if (c.video_id, c.caption) not in seen:
                seen.add((c.video_id, c.caption))
                captions.append(Caption(c.video_id, c.caption))
    for p in sorted(Path(cfg.anno_path).glob("MSRVTT_*.csv")):  # test / val captions not in the json
        if p.name.startswith(("MSRVTT_JSFUSION", "MSRVTT_val")):
            for c in read_caption_csv(p):
                if (c.video_id, c.caption) not in seen:
                    seen.add((c.video_id, c.caption))
                    captions.append(Caption(c.video_id, c.caption))
    backbone = frozen_backbone(cfg).to(dev)
    D, T, L = backbone.embed_dim, cfg.max_frames, cfg.max_words
    bf16 = use_bf16(cfg, dev)  # cfg.precision decides, as in training and evaluation
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)
    out = Path(out)
    from glscl_lite import storage

    with storage.building(out, "feature cache") as tmp:
        tmp.mkdir(parents=True)

        def mm(name: str, shape: tuple, dtype) -> np.memmap:
            """A .npy memmap whose bytes are allocated now (a full disk fails here, not with SIGBUS)."""
            arr = np.lib.format.open_memmap(tmp / name, "w+", dtype, shape)
            storage.reserve(tmp / name, (tmp / name).stat().st_size)
            return arr

        ff, vm = mm("frame_feats.npy", (len(video_ids), T, D), np.float16), mm("video_mask.npy", (len(video_ids), T), np.int8)
        with_patches = needs_patches(cfg) if patches is None else patches
        if with_patches:
            grid = backbone.clip.visual.grid_size
            pf = mm("patch_feats.npy", (len(video_ids), T, int(grid[0]) * int(grid[1]), D), np.float16)
        source = video_source(cfg, backbone.image_size)
        # the frame cache (if any) now exists: record what the features are computed from
        fingerprint = feature_fingerprint(cfg, video_ids)
        loader = DataLoader(VideoDataset(video_ids, source), batch_size=cfg.batch_size_val,
                            num_workers=cfg.workers, shuffle=False,
                            pin_memory=dev.type == "cuda")  # so that non_blocking below is asynchronous
        for b in tqdm(loader, desc="videos", disable=not progress):
            i = b["index"].numpy()
            video = normalize_frames(b["video"].to(dev, non_blocking=True), b["video_mask"].to(dev))
            with autocast:
                feats = backbone.encode_video(video, return_patches=with_patches)
            if with_patches:
                feats, patches = feats
                pf[i] = patches.float().cpu().numpy().astype(np.float16)
            ff[i] = feats.float().cpu().numpy().astype(np.float16)
            vm[i] = b["video_mask"].numpy().astype(np.int8)
        se, wo, tm = (mm("sentence.npy", (len(captions), D), np.float16),
                      mm("words.npy", (len(captions), L, D), np.float16),
                      mm("text_mask.npy", (len(captions), L), np.int8))
        tds = TextDataset(captions, max_words=L)
        for start in tqdm(range(0, len(captions), cfg.batch_size_val), desc="captions", disable=not progress):
            sl = slice(start, start + cfg.batch_size_val)
            ids, mask = tds.text_ids[sl].to(dev), tds.text_mask[sl].to(dev)
            with autocast:
                s, w = backbone.encode_text(ids, mask)
            se[sl] = s.float().cpu().numpy().astype(np.float16)
            wo[sl] = w.float().cpu().numpy().astype(np.float16)
            tm[sl] = mask.cpu().numpy().astype(np.int8)
        for arr in (ff, vm, se, wo, tm):
            arr.flush()
        if with_patches:
            pf.flush()
            del pf
        del ff, vm, se, wo, tm
        (tmp / "video_ids.json").write_text(json.dumps(video_ids))
        (tmp / "captions.json").write_text(json.dumps([[c.video_id, c.caption] for c in captions]))
        meta = {k: getattr(cfg, k) for k in MATCH_KEYS}
        meta.update(backbone_checksum=backbone_checksum(backbone), image_size=backbone.image_size, dim=D, n_videos=len(video_ids), n_captions=len(captions),
                    bf16=bf16, anno_path=str(cfg.anno_path), seconds=round(time.time() - t0, 2), device=str(dev),
                    provenance=fingerprint)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


# ------------------------------------------------------------------------------------------ setup
def feature_cache_path(root: PathLike, cfg: Config, seed: int) -> Path:
    """The cache a cell with ``seed`` uses: ``root/seed<s>`` for a random-init CLIP (its weights
    depend on the seed), else ``root``."""
    return Path(root) / f"seed{seed}" if cfg.pretrained is None else Path(root)


def ensure_feature_cache(cfg: Config, path: PathLike, progress: bool = True,
                         patches: bool = False) -> Path:
    """Build the feature cache of ``cfg`` (its seed, encoder, frames, words) at ``path`` unless one
    is there; builds ``cfg.frame_cache`` first when it is set but missing.  ``patches``: store patch
    tokens too (a grid with an EERCF cell).  An existing cache of another corpus, or one without the
    patch tokens asked for, is an error."""
    path = Path(path)
    if (path / "meta.json").is_file():
        FeatureCache(path).check_provenance(cfg)  # another corpus, edited annotations, other videos
        if patches and not (path / "patch_feats.npy").is_file():
            raise UserError(f"{path}: this feature cache has no patch tokens, which a cell of the grid "
                            "needs (head=eercf); pass a new --feature-cache folder")
        return path
    cfg = cfg.replace(feature_cache=None)
    if cfg.frame_cache and not (Path(cfg.frame_cache) / "index.json").exists():
        from glscl_lite.data.cache import build_frame_cache
        from glscl_lite.data.msrvtt import all_video_ids
        from glscl_lite.model.backbone import CLIPBackbone

        size = CLIPBackbone(cfg.base_encoder, cfg.pretrained, cfg.text_mask).image_size
        build_frame_cache(all_video_ids(cfg.anno_path), cfg.video_path, cfg.frame_cache,
                          max_frames=cfg.max_frames, image_size=size, framerate=cfg.video_framerate,
                          progress=progress)
    build_feature_cache(cfg, path, progress=progress, patches=patches)
    return path
