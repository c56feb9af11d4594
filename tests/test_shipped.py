"""The trained GLSCL shipped with the package (stand-in CLIP + head): loads offline, checks itself,
and retrieves far better than the same trunk with an untrained head on a fresh corpus."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from glscl_lite.errors import UserError
from glscl_lite.model.shipped import SHIPPED_HEAD, export_head, head_record, load_shipped_glscl, shipped_label


def _copy(tmp_path):
    dest = tmp_path / SHIPPED_HEAD.name
    shutil.copy(SHIPPED_HEAD, dest)
    shutil.copy(SHIPPED_HEAD.with_suffix("").with_suffix(".json"), dest.with_suffix("").with_suffix(".json"))
    return dest


def test_shipped_head_loads_offline_with_its_record():
    model, cfg, record = load_shipped_glscl()
    assert cfg.base_encoder == "glscl-synthetic-hybrid" and cfg.pretrained == "synthetic" and cfg.head == "glscl"
    assert not model.training
    assert record["test"]["n_videos"] == 1000 and record["test"]["t2v"]["R1"] > 10 * 100 / 1000
    assert SHIPPED_HEAD.stat().st_size < 2_000_000
    assert "test t2v R@1" in shipped_label(record) and "chance 0.1 %" in shipped_label(record)


def test_damaged_file_or_other_standin_is_refused(tmp_path):
    dest = _copy(tmp_path)
    data = bytearray(dest.read_bytes())
    data[-100] ^= 0xFF
    dest.write_bytes(bytes(data))
    with pytest.raises(UserError, match="differs from its record"):
        load_shipped_glscl(dest)
    dest = _copy(tmp_path)
    rec_path = dest.with_suffix("").with_suffix(".json")
    rec = json.loads(rec_path.read_text())
    rec["standin_sha256"] = "0" * 64
    rec_path.write_text(json.dumps(rec))
    with pytest.raises(UserError, match="trained on the stand-in CLIP with sha256 000000000000"):
        load_shipped_glscl(dest)
    with pytest.raises(UserError, match="fixed network settings"):
        load_shipped_glscl(query_number=4)
    with pytest.raises(UserError, match="trained GLSCL head is missing"):
        head_record(tmp_path / "nope.fp16.pt")


def test_export_refuses_a_run_not_on_the_frozen_standin(tmp_path, smoke_overrides):
    from glscl_lite.train import train

    run = tmp_path / "run"
    train("smoke", [*smoke_overrides, "base_encoder=glscl-tiny", "pretrained=none", "max_steps=1", "epochs=1",
                    "batch_size=8"], run, progress=False)
    with pytest.raises(UserError, match="only a run on the frozen stand-in"):
        export_head(run, tmp_path / "head.fp16.pt")


def test_shipped_model_retrieves_on_a_held_out_corpus_better_than_an_untrained_head(tmp_path):
    """A corpus of another seed (the head trained on seed 0, whose corpora share scenes by video id):
    the trained head must beat the same frozen stand-in with a freshly initialised head."""
    from glscl_lite.data import msrvtt
    from glscl_lite.data.splits import EvalSet
    from glscl_lite.evaluate import evaluate_model
    from glscl_lite.features import video_inputs
    from glscl_lite.heldout import HELDOUT_SEED, heldout_corpus
    from glscl_lite.model.glscl import RetrievalModel

    assert HELDOUT_SEED != head_record()["corpus_generator"]["seed"]
    corpus = heldout_corpus(tmp_path, 48)
    model, cfg, _ = load_shipped_glscl(anno_path=str(corpus), video_path=str(corpus / "videos"),
                                       frame_cache=str(corpus / "frames-64"), val_videos=8)
    anno = msrvtt.load_annotations(corpus)
    # every video of the corpus with its first caption: 48 candidates, chance R@1 2 %
    gallery = EvalSet.from_captions("all", [anno.captions(v)[0] for v in sorted(anno.videos)])
    source, features = video_inputs(cfg, model.backbone.image_size)
    trained = evaluate_model(model, gallery, cfg, torch.device("cpu"), source=source, features=features)
    torch.manual_seed(0)
    fresh = evaluate_model(RetrievalModel(cfg).eval(), gallery, cfg, torch.device("cpu"), source=source,
                           features=features)
    n = trained["n_videos"]
    assert n == 48
    assert trained["t2v"]["R1"] >= 4 * 100 / n            # 4x chance or better
    assert trained["t2v"]["MnR"] < fresh["t2v"]["MnR"]     # and better ranked than an untrained head
