"""Retrieval metrics on hand-made matrices (spec/glscl.md section 8)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from glscl_lite.metrics import (dual_softmax, evaluate_retrieval, ranks_from_scores,
                                retrieval_metrics)


def official_style(x: np.ndarray) -> dict:
    """The released compute_metrics logic (sort row, find the GT value by equality), in numpy."""
    x = x.astype(np.float32)
    sx = -np.sort(-x, axis=1)
    ind = np.where(sx - np.diag(x)[:, None] == 0)[1]
    return {"R1": np.sum(ind == 0) * 100 / len(ind), "R5": np.sum(ind < 5) * 100 / len(ind),
            "R10": np.sum(ind < 10) * 100 / len(ind), "MdR": np.median(ind) + 1, "MnR": np.mean(ind) + 1}


def test_hand_made_matrix_without_ties():
    sim = np.array([[0.9, 0.1, 0.2],   # GT first  -> rank 0
                    [0.5, 0.4, 0.3],   # GT second -> rank 1
                    [0.8, 0.7, 0.1]])  # GT third  -> rank 2
    m = retrieval_metrics(sim)
    assert m["R1"] == pytest.approx(100 / 3)
    assert m["R5"] == 100.0 and m["R10"] == 100.0
    assert m["MdR"] == 2.0 and m["MnR"] == 2.0
    for ties in ("optimistic", "pessimistic"):
        assert retrieval_metrics(sim, ties=ties) == m


def test_ties_official_optimistic_pessimistic():
    sim = np.array([[0.5, 0.5, 0.1],   # GT ties with one other at the top
                    [0.2, 0.9, 0.3],   # rank 0
                    [0.1, 0.2, 0.3]])  # rank 0
    assert ranks_from_scores(sim, [0, 1, 2], "official").tolist() == [0, 1, 0, 0]
    assert ranks_from_scores(sim, [0, 1, 2], "optimistic").tolist() == [0, 0, 0]
    assert ranks_from_scores(sim, [0, 1, 2], "pessimistic").tolist() == [1, 0, 0]
    assert retrieval_metrics(sim)["R1"] == pytest.approx(75.0)  # 3 of 4 entries, as released
    assert retrieval_metrics(sim, ties="optimistic")["R1"] == 100.0
    assert retrieval_metrics(sim, ties="pessimistic")["R1"] == pytest.approx(200 / 3)


@pytest.mark.parametrize("seed,shape", [(0, (40, 40)), (1, (40, 40)), (2, (40, 40)), (3, (30, 40))])
def test_official_semantics_on_random_matrices_with_many_ties(seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=shape).astype(np.float32)  # lots of ties; (30, 40): more items than queries
    got, ref = retrieval_metrics(x), official_style(x)
    for k in ref:
        assert got[k] == pytest.approx(ref[k]), k


def test_more_queries_than_items_and_bad_input_errors():
    with pytest.raises(ValueError, match="Nt <= Nv"):
        retrieval_metrics(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="video index"):
        evaluate_retrieval(np.zeros((2, 3)), [0, 3])


def test_multi_caption_v2t_uses_best_caption():
    # 4 texts, 2 videos: texts 0,1 -> video 0; texts 2,3 -> video 1
    sim = np.array([[0.9, 0.1],
                    [0.2, 0.3],
                    [0.4, 0.8],
                    [0.7, 0.6]], dtype=np.float32)
    res = evaluate_retrieval(sim, [0, 0, 1, 1])
    # t2v ranks: text0 0, text1 1, text2 0, text3 1
    assert res["t2v"]["R1"] == 50.0 and res["t2v"]["MnR"] == 1.5
    # v2t video0 column [0.9,0.2,0.4,0.7]: best GT caption 0.9 -> rank 0
    # video1 column [0.1,0.3,0.8,0.6]: best GT caption 0.8 -> rank 0
    assert res["v2t"]["R1"] == 100.0


def test_shuffled_non_square_set_does_not_assume_positional_pairing():
    """Leakage check: permuting texts (with their labels) and videos must not change metrics."""
    rng = np.random.default_rng(3)
    nv, per = 30, 3
    labels = np.repeat(np.arange(nv), per)[: nv * per - 7]        # 83 texts, unequal counts
    vid = rng.normal(size=(nv, 16))
    txt = vid[labels] + rng.normal(scale=1.2, size=(len(labels), 16))
    sim = txt @ vid.T
    base = evaluate_retrieval(sim, labels)
    pt, pv = rng.permutation(len(labels)), rng.permutation(nv)
    inv = np.argsort(pv)
    shuffled = evaluate_retrieval(sim[pt][:, pv], inv[labels[pt]])
    for d in ("t2v", "v2t"):
        for k, v in base[d].items():
            assert shuffled[d][k] == pytest.approx(v), (d, k)
    assert 0 < base["t2v"]["R1"] < 100  # a non-trivial problem


def test_square_evaluate_equals_retrieval_metrics_both_ways():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(25, 25)).astype(np.float32)
    res = evaluate_retrieval(x, np.arange(25))
    assert res["t2v"] == retrieval_metrics(x)
    assert res["v2t"] == retrieval_metrics(x.T)


def test_dsl_reported_beside_raw_and_rescales_columns():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(10, 10)).astype(np.float32)
    res = evaluate_retrieval(x, np.arange(10), dsl=True)
    assert set(res) == {"t2v", "v2t", "t2v_dsl", "v2t_dsl"}
    d = dual_softmax(torch.tensor(x), temperature=1.0)
    ref = x * np.exp(x) / np.exp(x).sum(0, keepdims=True)
    np.testing.assert_allclose(d.numpy(), ref, rtol=1e-5)
