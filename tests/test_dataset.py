"""Tokenisation (spec §6.3) and the torch datasets (pairs, texts, videos) with DataLoader workers."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from glscl_lite.data.cache import DecodedVideos, FrameCache, build_frame_cache
from glscl_lite.data.dataset import PairDataset, TextDataset, VideoDataset, collate
from glscl_lite.data.msrvtt import Caption, load_annotations, read_caption_csv, training_pairs
from glscl_lite.data.text import EOT_ID, SOT_ID, tokenize
from glscl_lite.data.video import VideoRandAugment, normalize_frames
from glscl_lite.errors import DataError

try:
    from data_fixtures import SHARED_MSRVTT, make_corpus
except ImportError:  # tests/ imported as a package
    from tests.data_fixtures import SHARED_MSRVTT, make_corpus

S, T, L = 24, 5, 32


# ----------------------------------------------------------------------------------- tokenisation
def _check_token_rows(ids, mask, max_words):
    assert ids.dtype == mask.dtype == torch.long and ids.shape == mask.shape
    assert (ids[:, 0] == SOT_ID).all()
    eot_pos = (ids == EOT_ID).int().argmax(dim=1)
    assert ((ids == EOT_ID).sum(dim=1) == 1).all()  # exactly one EOT per row
    assert torch.equal(ids.argmax(dim=1), eot_pos)  # EOT has the largest id (CLIP pools there)
    lengths = mask.sum(dim=1)
    assert torch.equal(lengths, eot_pos + 1)
    pos = torch.arange(max_words)
    assert torch.equal(mask.bool(), pos[None] <= eot_pos[:, None])
    assert (ids[~mask.bool()] == 0).all()
    return lengths


@pytest.mark.skipif(not SHARED_MSRVTT.is_dir(), reason="real MSR-VTT split files not present")
def test_tokenize_real_test_captions():
    import open_clip

    caps = [c.caption for c in read_caption_csv(SHARED_MSRVTT / "MSRVTT_JSFUSION_test.csv")]
    ids, mask = tokenize(caps, max_words=L)
    assert ids.shape == (1000, L)
    lengths = _check_token_rows(ids, mask, L)
    assert torch.equal(ids, open_clip.tokenize(caps, context_length=L))
    # captions longer than 30 BPE tokens are truncated and still end with EOT
    full, _ = tokenize(caps, max_words=77)
    full_len = (full == EOT_ID).int().argmax(dim=1) + 1
    long_rows = (full_len > L).nonzero().flatten()
    assert len(long_rows) >= 1
    for r in long_rows.tolist():
        assert lengths[r] == L and ids[r, L - 1] == EOT_ID
        assert torch.equal(ids[r, : L - 1], full[r, : L - 1])
    short = full_len <= L
    assert torch.equal(ids[short], full[short, :L])


def test_tokenize_mask_does_not_depend_on_id_zero():
    ids, mask = tokenize(["wow !$ x", "A  Dog\tRuns"], max_words=8)
    assert ids[0, :6].tolist() == [SOT_ID, 2781, 0, 259, 343, EOT_ID]  # "!" inside "!$" is BPE id 0
    _check_token_rows(ids, mask, 8)
    assert torch.equal(ids[1], tokenize(["a dog runs"], 8)[0][0])  # lower-case, whitespace clean


def test_tokenize_errors():
    with pytest.raises(DataError, match=r"captions\[1\]: expected a string, got int"):
        tokenize(["ok", 3])
    with pytest.raises(ValueError, match="max_words"):
        tokenize(["ok"], max_words=1)
    ids, mask = tokenize([], 8)
    assert ids.shape == (0, 8)


# ---------------------------------------------------------------------------------------- datasets
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("ds_corpus"), n_train=4, n_test=2,
                       frames={"video1": 5}, pattern="noise", size=(64, 48))


@pytest.fixture(scope="module")
def sources(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds_cache") / "frames"
    build_frame_cache(corpus.all_ids, corpus.video_dir, out, max_frames=T, image_size=S, workers=1,
                      progress=False)
    return {"cache": FrameCache(out), "decoded": DecodedVideos(corpus.video_dir, T, S)}


@pytest.mark.parametrize("kind", ["cache", "decoded"])
def test_pair_dataset_items(corpus, sources, kind):
    anno = load_annotations(corpus.anno_dir)
    pairs = training_pairs(anno, corpus.train_ids)
    ds = PairDataset(pairs, sources[kind], max_words=L)
    assert len(ds) == 12 and ds.video_ids == corpus.train_ids
    item = ds[4]  # second caption of video1 (short: one real frame)
    assert set(item) == {"text_ids", "text_mask", "video", "video_mask", "video_index", "caption_index"}
    assert item["text_ids"].shape == (L,) and item["text_ids"].dtype == torch.long
    assert torch.equal(item["text_ids"], tokenize([pairs[4].caption], L)[0][0])
    assert item["video"].shape == (T, S, S, 3) and item["video"].dtype == torch.uint8
    assert item["video_mask"].tolist() == [1, 0, 0, 0, 0]
    assert item["video_index"] == 1 and item["caption_index"] == 4
    assert ds.video_ids[item["video_index"]] == pairs[4].video_id
    frames, _ = sources["cache"].get("video1")
    assert torch.equal(item["video"], torch.from_numpy(np.array(frames)))


def test_pair_dataset_dataloader_with_workers_and_augment(corpus, sources):
    anno = load_annotations(corpus.anno_dir)
    pairs = training_pairs(anno, corpus.train_ids)
    ds = PairDataset(pairs, sources["cache"], max_words=L, augment=VideoRandAugment())
    assert pickle.loads(pickle.dumps(ds)).video_ids == ds.video_ids
    # spawn: the dataset (memmap-backed cache included) really goes through pickle
    ds.augment = None
    loader = DataLoader(ds, batch_size=5, shuffle=False, num_workers=2, collate_fn=collate,
                        multiprocessing_context="spawn")
    assert [b["video"].shape[0] for b in loader] == [5, 5, 2]
    ds.augment = VideoRandAugment()
    loader = DataLoader(ds, batch_size=5, shuffle=False, num_workers=2, collate_fn=collate,
                        multiprocessing_context="fork")
    batches = list(loader)
    assert [b["video"].shape[0] for b in batches] == [5, 5, 2]
    b = batches[0]
    assert b["video"].shape == (5, T, S, S, 3) and b["video"].dtype == torch.uint8
    assert b["video_mask"].shape == (5, T) and b["text_ids"].shape == (5, L)
    assert b["video_index"].tolist() == [0, 0, 0, 1, 1] and b["caption_index"].tolist() == [0, 1, 2, 3, 4]
    x = normalize_frames(b["video"], b["video_mask"])
    assert x.shape == (5, T, 3, S, S) and (x[3, 1:] == 0).all()


def test_text_and_video_datasets(corpus, sources):
    caps = read_caption_csv(corpus.anno_dir / "MSRVTT_JSFUSION_test.csv")
    tds = TextDataset(caps, max_words=L)
    assert len(tds) == 2 and tds.video_ids == corpus.test_ids
    t = collate([tds[0], tds[1]])
    assert t["text_ids"].shape == (2, L) and t["index"].tolist() == [0, 1]
    assert TextDataset(["plain string"]).video_ids == [None]
    vds = VideoDataset(corpus.test_ids, sources["decoded"])
    batch = next(iter(DataLoader(vds, batch_size=2, collate_fn=collate)))
    assert batch["video"].shape == (2, T, S, S, 3) and batch["index"].tolist() == [0, 1]
    cached = VideoDataset(corpus.test_ids, sources["cache"])
    assert torch.equal(cached[1]["video"], vds[1]["video"])
    assert torch.equal(cached[1]["video_mask"], vds[1]["video_mask"])


def test_pair_dataset_missing_video_error(corpus, sources):
    ds = PairDataset([Caption("video404", "nothing")], sources["decoded"])
    with pytest.raises(DataError, match=r"video404\.mp4: video file not found"):
        ds[0]
