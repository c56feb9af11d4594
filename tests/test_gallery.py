"""The gallery's statistics (paired bootstrap against the default) and one small end-to-end run."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glscl_lite.errors import UserError
from glscl_lite.gallery import summarize_gallery


def _cells(ranks_by_seed):
    return {seed: {"t2v_rank": r, "v2t_rank": r} for seed, r in enumerate(ranks_by_seed)}


def test_identical_settings_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    ranks = [rng.integers(0, 20, 200).tolist() for _ in range(3)]
    s = summarize_gallery({"default": _cells(ranks), "copy": _cells(ranks)}, n_boot=200)
    row = s[(s.setting == "copy") & (s.metric == "t2v_R1")].iloc[0]
    assert row["diff"] == 0 and row.ci_low == 0 and row.ci_high == 0 and not row.separable


def test_a_clearly_better_setting_is_separable_and_a_tiny_one_is_not():
    rng = np.random.default_rng(1)
    base = [rng.integers(0, 10, 500) for _ in range(3)]            # R@1 about 10 %
    better = [np.where(rng.random(500) < 0.3, 0, r) for r in base]  # about 37 %
    tiny = [r.copy() for r in base]
    tiny[0][np.flatnonzero(base[0] > 0)[:2]] = 0                    # two more hits in one seed
    s = summarize_gallery({"default": _cells([r.tolist() for r in base]),
                           "better": _cells([r.tolist() for r in better]),
                           "tiny": _cells([r.tolist() for r in tiny])}, n_boot=500)
    r1 = s[s.metric == "t2v_R1"].set_index("setting")
    assert r1.loc["better", "separable"] and r1.loc["better", "ci_low"] > 15
    assert not r1.loc["tiny", "separable"] and r1.loc["tiny", "ci_low"] >= 0
    assert r1.loc["default", "own_ci_low"] < r1.loc["default", "mean"] < r1.loc["default", "own_ci_high"]
    expected = np.mean([np.mean(np.asarray(r) < 1) * 100 for r in base])
    assert r1.loc["default", "mean"] == pytest.approx(expected, abs=1e-3)
    # pair metrics: outcomes 1 / 0.5 / 0 per pair and direction
    pairs = {"default": {0: {"t2v_rank": [0], "v2t_rank": [0], "order_t2v": [1, 0, 0.5, 1],
                             "order_v2t": [1, 1, 0.5, 0]}}}
    order = summarize_gallery(pairs, n_boot=50).set_index("metric").loc["order_acc"]
    assert order["mean"] == pytest.approx(100 * (1 + 0.5 + 0.5 + 0.5) / 4)


def test_every_caption_metrics_resample_videos_not_captions():
    """20 captions per video that share their video's fate: resampling captions as if independent would
    give an interval ~sqrt(20) too narrow; the cluster bootstrap resamples videos."""
    rng = np.random.default_rng(2)
    hit = rng.random(100) < 0.3                                   # a video is found by all its captions or none
    video = np.repeat(np.arange(100), 20)
    cells = {seed: {"t2v_rank": [0] * 100, "v2t_rank": [0] * 100, "t2v_all_rank": np.where(hit[video], 0, 5).tolist(),
                    "t2v_all_video": video.tolist()} for seed in range(2)}
    s = summarize_gallery({"default": cells}, n_boot=2000).set_index("metric")
    row = s.loc["t2v_all_R1"]
    assert row["mean"] == pytest.approx(100 * hit.mean()) and row.n_items == 2000
    half = (row.own_ci_high - row.own_ci_low) / 2
    binomial_videos = 196 * np.sqrt(hit.mean() * (1 - hit.mean()) / 100)  # the interval of 100 independent items
    assert 0.8 * binomial_videos < half < 1.2 * binomial_videos, (half, binomial_videos)
    assert s.loc["t2v_R1", "n_items"] == 100 and "t2v_all_R5" in s.index


def test_the_default_must_be_there():
    with pytest.raises(ValueError, match="default"):
        summarize_gallery({"K1": _cells([[0, 1]])})


@pytest.mark.slow
def test_a_small_gallery_end_to_end(tmp_path, smoke_overrides):
    """Two settings x two seeds on the session corpus (the smoke preset's stand-in CLIP, one feature cache): the
    summary has every metric, the probes included, and the exported report its files."""
    from glscl_lite.gallery import run_gallery

    out, export = tmp_path / "gallery", tmp_path / "export"
    cfg = [*smoke_overrides, "max_steps=4", "eval_every=2", f"feature_cache={tmp_path / 'features'}"]
    with pytest.raises(UserError, match="train-only"):
        run_gallery("smoke", cfg, out, seeds=[0, 1], settings=["K1"], export=export, train_only=True, progress=False)
    assert not out.exists()
    # a second worker trains exactly its cells (not the default), scores nothing; the full run then reuses them
    assert run_gallery("smoke", cfg, out, seeds=[0, 1], settings=["K1"], train_only=True, progress=False) is None
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["K1__seed0", "K1__seed1"]
    assert not (out / "summary.csv").exists() or "default" not in (out / "summary.csv").read_text()
    k1_results = (out / "runs" / "K1__seed0" / "results.json").read_text()
    summary = run_gallery("smoke", cfg, out, seeds=[0, 1], settings=["default", "K1"], export=export, n_boot=100,
                          progress=False)
    assert (out / "runs" / "K1__seed0" / "results.json").read_text() == k1_results  # not retrained
    assert set(summary.setting) == {"default", "K1"}
    assert {"t2v_R1", "v2t_R1", "moment_R1", "order_acc", "binding_acc", "t2v_all_R1"} <= set(summary.metric)
    n_one, n_all = (summary.set_index(["setting", "metric"]).loc[("default", m), "n_items"] for m in ("t2v_R1", "t2v_all_R1"))
    assert n_all == 20 * n_one  # every caption of the same test videos
    assert (summary[summary.setting == "default"]["diff"] == 0).all()
    assert (export / "summary.csv").is_file() and (export / "gallery_diffs.png").is_file()
    assert {"setting", "metric", "mean", "std", "diff", "ci_low", "ci_high"} <= set(pd.read_csv(export / "summary.csv"))
    record = json.loads((export / "gallery_config.json").read_text())
    assert record["seeds"] == [0, 1] and record["command"].startswith("glscl-lite gallery --config smoke")
    assert 0 < record["oracle"]["test"]["R1"] <= 100 and record["oracle"]["test"]["n_captions"] > 0
    every = record["oracle"]["test_all"]  # every caption of the same test videos
    assert every["n_captions"] == 20 * record["oracle"]["test"]["n_captions"] and 0 < every["R1"] <= every["R5"] <= 100
    readme = (export / "README.md").read_text()
    assert record["command"] in readme and "| default |" in readme and "| K1 |" in readme
    assert "--settings default K1 " in record["command"]  # a subset: the command re-runs that subset only
    assert "gallery_cpu.sh" not in readme                  # ... and the full-gallery script is not offered for it
    assert "## Text-to-video R@1" in readme and "paired bootstrap" in readme
    assert "## Every caption of every test video" in readme and "videos resampled" in readme
    assert f"Oracle ceiling on every caption: R@1 {every['R1']:.1f} %" in readme
    train = pd.read_csv(export / "train_metrics.csv")
    assert {"setting", "seed", "step", "icl", "idl", "sim2_pos"} <= set(train.columns)
    assert sorted(train.groupby(["setting", "seed"]).size().index) == [("K1", 0), ("K1", 1), ("default", 0), ("default", 1)]
    again = run_gallery("smoke", [*smoke_overrides, "max_steps=4", "eval_every=2",
                                  f"feature_cache={tmp_path / 'features'}"],
                        out, seeds=[0, 1], settings=["default", "K1"], n_boot=100, progress=False)
    pd.testing.assert_frame_equal(summary, again)  # cached outcomes, same resamples


def test_backbone_fingerprint_ignores_the_trained_logit_scale_only():
    """Cells of a frozen-backbone grid train CLIP's logit scale (it scales scores, not features):
    their probe features and feature caches must still match; any other weight must not."""
    import torch

    from glscl_lite.features import backbone_checksum
    from glscl_lite.model.backbone import CLIPBackbone

    torch.manual_seed(0)
    bb = CLIPBackbone("glscl-tiny", pretrained=None)
    before = backbone_checksum(bb)
    with torch.no_grad():
        bb.clip.logit_scale.add_(0.5)
    assert backbone_checksum(bb) == before
    with torch.no_grad():
        bb.clip.ln_final.bias.add_(0.01)
    assert backbone_checksum(bb) != before
