"""The held-out gallery's helpers: hubness statistics, free-text query claims, caption truth, and the
shipped model exported as a run folder."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glscl_lite import heldout
from glscl_lite.data.caption_truth import chance_claim_errors, claim_errors, scene_facts


def test_k_occurrence_counts_top_k_per_gallery_item():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.7, 0.1], [0.2, 0.1, 0.3], [0.5, 0.6, 0.4]])
    assert heldout.k_occurrence(sim, 1).tolist() == [2, 1, 1]
    assert heldout.k_occurrence(sim, 2).tolist() == [4, 3, 1]
    assert heldout.k_occurrence(sim, 5).sum() == 4 * 3          # k capped at the gallery size


def test_skewness_sign_and_degenerate_case():
    assert heldout.skewness([1, 1, 1, 1, 10]) > 1               # one hub: right skew
    assert heldout.skewness([0, 9, 9, 9, 9]) < -1
    assert heldout.skewness([3, 3, 3]) == 0.0
    x = np.random.default_rng(0).normal(size=20000)
    assert abs(heldout.skewness(x)) < 0.05


def test_query_meaning_reads_colour_shape_synonym_and_motion():
    meaning, unread = heldout.query_meaning("a red ball rolls left")
    assert set(meaning.claims) == {("colour", 0, "red"), ("shape", 0, "circle"),   # "ball" = circle
                                   ("motion_in", 0, frozenset({"left"}))}
    assert unread == ["rolls"]                                   # the verb alone makes no claim
    meaning, unread = heldout.query_meaning("a big green star spinning on a grass background")
    assert set(meaning.claims) == {("size", 0, "large"), ("colour", 0, "green"), ("shape", 0, "star"),
                                   ("motion_in", 0, frozenset({"spin"})), ("bg_kind", "grass")}
    assert unread == []


def test_captions_are_true_of_their_own_video_and_the_shipped_run_exports(tmp_path):
    corpus = heldout.heldout_corpus(tmp_path, 16)
    assert json.loads((corpus / "MSRVTT_data.json").read_text())["info"]["generator"]["seed"] == heldout.HELDOUT_SEED
    scenes = heldout.corpus_scenes(corpus)
    ids = sorted(scenes)[:6]
    meanings = heldout.caption_meanings(corpus, ids)
    facts = [scene_facts(scenes[v]) for v in ids]
    for j, v in enumerate(ids):      # every annotated caption is true of its own video
        truth = heldout.truth_matrix(meanings[v], facts)
        assert truth.shape == (len(meanings[v]), len(ids)) and truth[:, j].all(), v
        assert all(heldout.failed_claims(m, facts[j]) == [] for m in meanings[v])
    false_pairs = [(m, facts[j]) for i, v in enumerate(ids) for m in meanings[v] for j in range(len(ids))
                   if j != i and not heldout.truth_matrix([m], [facts[j]])[0, 0]]
    assert false_pairs
    for m, f in false_pairs:        # a false caption always gets a reason, and each named claim really fails
        why = heldout.failed_claims(m, f)
        checks = heldout.claim_check(m, f)
        assert why and all(w in ("binding/order", "number of objects") or checks[w] is False for w in why)
    # the every-caption oracle: one query per annotated caption, ceiling min(1, k / n_true) from the truth matrix
    every = heldout.every_caption_oracle(corpus, ids)
    truth = heldout.truth_matrix([m for v in ids for m in meanings[v]], facts)
    n_true = truth.sum(1)
    assert every["n_captions"] == sum(len(meanings[v]) for v in ids) == len(n_true)
    assert every["R1"] == pytest.approx(100 * np.mean(1 / n_true), abs=1e-3)
    assert every["R5"] == pytest.approx(100 * np.mean(np.minimum(1, 5 / n_true)), abs=1e-3)
    with pytest.raises(ValueError, match="video_nope is not in the corpus"):
        heldout.every_caption_oracle(corpus, ["video_nope"])
    # claim errors: a first video the caption is true of breaks nothing; chance is the mean over the gallery
    queries = [m for v in ids for m in meanings[v]]
    own = [facts[j] for j, v in enumerate(ids) for _ in meanings[v]]
    assert all(e["broken"] == 0 and e["captions"] > 0 for e in claim_errors(queries, own).values())
    wrong = [facts[(j + 1) % len(ids)] for j, v in enumerate(ids) for _ in meanings[v]]
    errors, chance = claim_errors(queries, wrong), chance_claim_errors(queries, facts)
    assert set(errors) == set(chance) and any(e["broken"] > 0 for e in errors.values())
    colour = [m for m in queries if "colour" in heldout.claim_check(m, facts[0])]
    by_hand = np.mean([np.mean([not heldout.claim_check(m, f)["colour"] for f in facts]) for m in colour])
    assert chance["colour"] == pytest.approx(100 * by_hand, abs=0.05)
    with pytest.raises(ValueError, match="one first video per caption"):
        claim_errors(queries, own[:-1])
    run = heldout.export_shipped_run(tmp_path / "shipped_run", corpus)
    from glscl_lite import runs

    assert runs.is_finished(run) and runs.run_config(run).anno_path == str(corpus)
    with pytest.raises(ValueError, match="not a synthetic corpus"):
        (tmp_path / "real").mkdir()
        (tmp_path / "real" / "MSRVTT_data.json").write_text(json.dumps({"info": {}, "videos": []}))
        heldout.corpus_scenes(tmp_path / "real")


def test_training_overlap_flags_a_corpus_of_the_heads_seed_only(corpus, tmp_path):
    from glscl_lite.data import synthetic as syn
    from glscl_lite.model.shipped import head_record, training_overlap

    record = head_record()
    generator = record["corpus_generator"]
    trained = set(syn._split_plan(generator["n_videos"], generator["seed"])["9k"])
    assert json.loads((corpus / "MSRVTT_data.json").read_text())["info"]["generator"]["seed"] == generator["seed"]
    seen = training_overlap(record, corpus)                  # the test fixture: seed 0, like the head's corpus
    assert seen and all(int(v[len("video"):]) in trained for v in seen)
    with pytest.warns(UserWarning, match="share their scenes"):
        heldout.export_shipped_run(tmp_path / "leaky_run", corpus)
    other = heldout.heldout_corpus(tmp_path / "held", 16)     # seed 1: nothing shared
    assert training_overlap(record, other) == []
    assert training_overlap({**record, "corpus_generator": None}, corpus) == []
