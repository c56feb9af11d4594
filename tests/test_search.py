"""Large-gallery search: index kinds, rerank store, two stages vs dense scoring, CLI round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glscl_lite.cli import main as cli_main
from glscl_lite.config import load_preset
from glscl_lite.model.glscl import GLSCLHead
from glscl_lite.search import (CoarseIndex, IndexParams, RerankStore, SearchIndex, choose_index_kind,
                               coarse_query_vectors, coarse_video_vectors, two_stage)


def _clustered(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d))
    x = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ------------------------------------------------------------------------------------ index kinds
def test_choose_index_kind_by_gallery_size():
    assert choose_index_kind(1_000) == "flat"
    assert choose_index_kind(50_000) == "flat"
    assert choose_index_kind(50_001) == "hnsw"
    assert choose_index_kind(500_000) == "hnsw"
    assert choose_index_kind(1_000_000) == "ivf"
    assert choose_index_kind(200, flat_max=100, hnsw_max=150) == "ivf"


@pytest.mark.parametrize("n,expected", [(80, "flat"), (400, "hnsw"), (2_000, "ivf")])
def test_auto_kind_and_recall_against_exact_search(n, expected):
    import faiss

    x = _clustered(n)
    params = IndexParams(flat_max=100, hnsw_max=1_000, nprobe=8)
    index = CoarseIndex.build(x, params)
    assert index.kind == expected and len(index) == n
    assert isinstance(index.index, {"flat": faiss.IndexFlatIP, "hnsw": faiss.IndexHNSWFlat,
                                    "ivf": faiss.IndexIVFFlat}[expected])
    q = _clustered(30, seed=1)
    _, rows = index.search(q, 10)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact)])
    assert recall == 1.0 if expected == "flat" else recall >= 0.9
    if expected == "ivf":
        assert index.params.nlist == round(np.sqrt(n))


def test_index_save_load_roundtrip(tmp_path):
    x = _clustered(300)
    index = CoarseIndex.build(x, IndexParams(kind="hnsw", ef_search=64))
    index.save(tmp_path / "c.faiss")
    again = CoarseIndex.load(tmp_path / "c.faiss", "hnsw", index.params)
    assert again.index.hnsw.efSearch == 64
    np.testing.assert_array_equal(again.search(x[:5], 3)[1], index.search(x[:5], 3)[1])


def test_rerank_store_gathers_rows_in_request_order(tmp_path):
    side = {"frames": torch.randn(6, 3, 4), "mask": torch.tensor([[1, 1, 0]] * 6)}
    store = RerankStore.create(tmp_path / "r", 6, side)
    store.write(0, {k: v[:4] for k, v in side.items()})
    store.write(4, {k: v[4:] for k, v in side.items()})
    store.flush()
    back = RerankStore.open(tmp_path / "r").gather([5, 0, 3])
    assert back["mask"].dtype == torch.long and back["frames"].dtype == torch.float32
    torch.testing.assert_close(back["frames"], side["frames"][[5, 0, 3]].half().float())
    assert torch.equal(back["mask"], side["mask"][[5, 0, 3]])


# ------------------------------------------------------------------------------- two stages
def _glscl_sides(n_videos=40, n_texts=6, d=16, seed=0):
    cfg = load_preset("smoke").replace(lim_heads=2, lim_ffn_dim=32, query_number=4)
    torch.manual_seed(seed)
    head = GLSCLHead(cfg, d).eval()
    frames, mask = 5 * torch.randn(n_videos, 12, d), torch.ones(n_videos, 12, dtype=torch.long)
    mask[::3, 9:] = 0
    with torch.no_grad():
        video = head.encode_video(frames, mask)
        words = torch.randn(n_texts, 8, d)
        text = head.encode_text(5 * torch.randn(n_texts, d), words, torch.ones(n_texts, 8, dtype=torch.long))
    return head, text, video


def test_two_stage_matches_dense_when_candidates_cover_the_gallery():
    head, text, video = _glscl_sides()
    dense = head.score(text, video)
    store = RerankStore({k: v.numpy() for k, v in video.items()})       # float32: exact
    index = CoarseIndex.build(coarse_video_vectors("glscl", video).numpy())
    qv = coarse_query_vectors("glscl", text).numpy()
    for a in range(len(qv)):
        t = {k: v[a:a + 1] for k, v in text.items()}
        rows, fine, pos, coarse = two_stage(head, t, qv[a], index, store, k=5, candidates=40)
        assert rows[0] == int(dense[a].argmax())
        np.testing.assert_array_equal(rows, dense[a].argsort(descending=True)[:5].numpy())
        np.testing.assert_allclose(fine, dense[a][rows].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(coarse, qv[a] @ coarse_video_vectors("glscl", video).numpy()[rows].T, rtol=1e-5)
        # a smaller candidate set reranks a subset of the coarse top list only
        rows_small, _, pos_small, _ = two_stage(head, t, qv[a], index, store, k=3, candidates=5)
        assert set(rows_small) <= set(index.search(qv[a], 5)[1][0]) and pos_small.max() < 5


def test_glscl_coarse_vector_is_uniform_gim_pooling():
    """cos(s, mean h) is GIM's score in the tau -> infinity limit."""
    from glscl_lite.model.global_interaction import GlobalInteraction

    head, text, video = _glscl_sides(n_videos=5, n_texts=3)
    coarse = coarse_query_vectors("glscl", text) @ coarse_video_vectors("glscl", video).T
    torch.testing.assert_close(coarse, GlobalInteraction(1e9)(text["sentence"], video["frames"], video["mask"]),
                               atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------ CLI round trip
@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory, corpus, frame_cache):
    """A GLSCL and an EERCF run, a few steps each, on one feature cache (with patches)."""
    from glscl_lite.features import build_feature_cache
    from glscl_lite.nb import smoke_config
    from glscl_lite.train import train

    root = tmp_path_factory.mktemp("search")
    cfg = smoke_config(corpus, frame_cache=str(frame_cache))
    build_feature_cache(cfg.replace(head="eercf"), root / "features", progress=False)
    runs = {}
    for head in ("glscl", "eercf"):
        c = cfg.replace(head=head, feature_cache=str(root / "features"), freeze_backbone=True,
                        max_steps=3, epochs=1)
        train(c, (), root / head, progress=False)
        runs[head] = root / head
    return root, runs


def _dense_ranking(run, query, video_ids):
    from glscl_lite.data.text import tokenize
    from glscl_lite.evaluate import encode_videos, load_run_model
    from glscl_lite.features import FeatureCache

    model, cfg, dev = load_run_model(run, device="cpu")
    video = encode_videos(model, video_ids, cfg, dev, features=FeatureCache(cfg.feature_cache))
    with torch.no_grad():
        text = model.encode_text(*tokenize([query], cfg.max_words))
        return model.head.score(text, video)[0]


def test_index_build_and_search_via_cli(trained_runs, tmp_path, capsys):
    root, runs = trained_runs
    out = tmp_path / "index"
    assert cli_main(["index", "build", "--run", str(runs["glscl"]), "--run", str(runs["eercf"]),
                     "--out", str(out), "--quiet"]) == 0
    assert not list(tmp_path.glob(".index.tmp-*"))                              # atomic: no leftovers
    meta = json.loads((out / "index.json").read_text())
    assert [r["head"] for r in meta["runs"]] == ["glscl", "eercf"]
    assert all(r["kind"] == "flat" for r in meta["runs"])                       # 48 videos: exact
    n = meta["n_videos"]
    assert {p.name for p in (out / "glscl" / "rerank").glob("*.npy")} == {"frames.npy", "mask.npy", "gram.npy", "concepts.npy"}
    assert {p.name for p in (out / "eercf" / "rerank").glob("*.npy")} >= {"video.npy", "frames.npy", "patches.npy"}
    video_ids = json.loads((out / "video_ids.json").read_text())
    assert len(video_ids) == n == 48

    query = "a red ball rolls left"
    for head in ("glscl", "eercf"):
        js = tmp_path / f"{head}.json"
        assert cli_main(["search", "--index", str(out), query, "--k", "5", "--rerank", head,
                         "--json", str(js)]) == 0
        res = json.loads(js.read_text())
        hits = res["results"]
        assert res["rerank"] == head and len(hits) == 5
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True)
        # 50 candidates cover the 48-video gallery: the two stages give the dense ranking
        dense = _dense_ranking(runs[head], query, video_ids)
        top = dense.argsort(descending=True)[:5]
        assert hits[0]["video_id"] == video_ids[int(top[0])]
        np.testing.assert_allclose(scores, dense[top].numpy(), atol=5e-3)        # fp16 rerank store
    printed = capsys.readouterr().out
    assert "stage-1 rank" in printed

    # a smaller stage 1 reranks only the coarse top list
    idx = SearchIndex(out)
    hits = idx.search(query, k=3, rerank="eercf", candidates=4)
    assert len(hits) == 3 and all(h.coarse_rank < 4 for h in hits)


def test_search_errors_are_clear(trained_runs, tmp_path, capsys):
    root, runs = trained_runs
    out = tmp_path / "index"
    assert cli_main(["index", "build", "--run", str(runs["glscl"]), "--out", str(out), "--quiet"]) == 0
    assert cli_main(["search", "--index", str(out), "a ball", "--rerank", "eercf"]) == 2
    assert "no 'eercf' run in this index" in capsys.readouterr().err
    assert cli_main(["search", "--index", str(tmp_path / "nope"), "a ball"]) == 2
    # a failed rebuild leaves the previous index in place
    before = (out / "index.json").read_text()
    assert cli_main(["index", "build", "--run", str(tmp_path / "not-a-run"), "--out", str(out), "--quiet"]) == 2
    assert (out / "index.json").read_text() == before


def test_gallery_from_a_list_of_ids(trained_runs, tmp_path):
    from glscl_lite.search import build_index

    root, runs = trained_runs
    ids = json.loads((root / "features" / "video_ids.json").read_text())[:10]
    (tmp_path / "ids.txt").write_text("video_id\n" + "\n".join(ids) + "\n")
    meta = build_index([runs["glscl"]], tmp_path / "index", videos=tmp_path / "ids.txt")
    assert meta["n_videos"] == 10
    assert json.loads((tmp_path / "index" / "video_ids.json").read_text()) == ids
    hits = SearchIndex(tmp_path / "index").search("a ball", k=20)
    assert len(hits) == 10 and {h.video_id for h in hits} == set(ids)


def test_empty_query_and_bad_k_are_errors(trained_runs, tmp_path, capsys):
    _, runs = trained_runs
    out = tmp_path / "index"
    assert cli_main(["index", "build", "--run", str(runs["glscl"]), "--out", str(out), "--quiet"]) == 0
    for query in ("", "   \t"):
        assert cli_main(["search", "--index", str(out), query]) == 2
        assert f"search: the query {query!r} is empty; give the text to search for" in capsys.readouterr().err
    for k in ("0", "-1"):
        assert cli_main(["search", "--index", str(out), "a ball", "--k", k]) == 2
        assert f"search: --k {k}: the number of results must be >= 1" in capsys.readouterr().err
    assert len(SearchIndex(out).search("a ball", k=1)) == 1


def test_index_refuses_a_run_that_trained_further(trained_runs, tmp_path):
    """Provenance: the index records the checkpoint's sha256; a newer checkpoint is refused by name."""
    import shutil

    from glscl_lite.provenance import ProvenanceError
    from glscl_lite.search import build_index

    _, runs = trained_runs
    run = tmp_path / "run"
    shutil.copytree(runs["glscl"], run)
    build_index([run], tmp_path / "index")
    assert SearchIndex(tmp_path / "index").search("a ball", k=2)
    best = run / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=False)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save(state, best)  # as if the run had trained further
    with pytest.raises(ProvenanceError, match=r"index \(search index, head glscl\): built from other inputs .*"
                                              r"checkpoint .*best.pt: recorded sha256 \w+, now sha256 \w+.*"
                                              r"rebuild it with: glscl-lite index build --run .*run --checkpoint best"):
        SearchIndex(tmp_path / "index").search("a ball", k=2)
