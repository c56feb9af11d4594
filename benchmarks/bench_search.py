"""Search at scale: per-query latency and stage-1 recall for galleries of 1k ... 1M videos.

Dense GLSCL scoring (GIM + 0.5 LIM on every video) against the two-stage path of
``glscl_lite.search`` (faiss coarse recall of ``--candidates`` videos, GLSCL rerank of those from a
float16 rerank store), on synthetic features of ViT-B/32 size (D=512, T=12 frames, K=8 concepts).

Synthetic gallery (so that recall means something): 1,024 "topics"; video v has a unit base vector
``b_v = normalize(topic + gamma * unique)``, frames ``h_vi = 10 (b_v + sigma (e_vi - mean_i e_vi))``
(raw CLIP-like norms ~10; the frame mean is exactly ``10 b_v``, so the coarse vector is ``b_v``)
and concepts ``normalize(b_v + sigma_c n_vk)``.  A query describes one moment of a target video:
``s = 10 normalize(h_vj / 10 + nu xi)`` for a random frame j, text concepts ``normalize(c_vk + nu xi_k)``.
Frames and concepts of video v come from a generator seeded with (seed, v), so any video's rerank
features can be produced on demand.

Memory choice: the coarse vectors are float32 in RAM (1M x 512 x 4 B = 2 GB; the IVF index holds
a second copy).  The rerank features are T*D + K*D + T*T = 10,384 numbers per video: float16 memmaps on
disk for galleries up to ``--full-store-max`` (100k: 2.1 GB), as ``glscl-lite index build`` writes
them.  At 1M they would be 21 GB, so the 1M run stores (in RAM, float16) only the union of the
benchmark queries' candidate sets, generated after a first stage-1 pass; the timed path (faiss
search, gather of the candidates' features, GLSCL rerank, sort) is the same code.  Dense scoring at
1M is extrapolated linearly from the largest measured size (it is linear in N; flagged).

Recall reported per size: ``ann_recall``: overlap of the index's top-C with the exact coarse top-C
(index approximation); ``exact_recall_target``: the target video is in the exact coarse top-C (what
the coarse score alone loses); ``stage1_recall_target``: the target is among the index's C candidates; ``stage1_recall_dense_top1``: the dense GLSCL top-1 is among them (so two-stage and dense
agree on top-1) -- measured where dense scoring ran; ``r1_*``: R@1 against the target.

    python benchmarks/bench_search.py                          # 1k, 10k, 100k, 1M
    python benchmarks/bench_search.py --sizes 1000 10000 --queries 50
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glscl_lite.config import Config  # noqa: E402
from glscl_lite.model.glscl import GLSCLHead  # noqa: E402
from glscl_lite.search import CoarseIndex, IndexParams, RerankStore, choose_index_kind, two_stage  # noqa: E402
from glscl_lite.utils import machine_name, machine_slug, write_json_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
D, T, K = 512, 12, 8
SQRT_D = float(D) ** 0.5
TOPICS = 1024
SYNTH = {"gamma": 0.5, "sigma": 1.5, "sigma_c": 1.5, "nu": 2.5, "frame_norm": 10.0, "topics": TOPICS}
"""Chosen so that the coarse score alone is right ~90% of the time at 20k videos and the fine score ~always."""


# ---------------------------------------------------------------------------------- synthetic data
class SyntheticGallery:
    """Deterministic synthetic video features (module docstring)."""

    def __init__(self, n: int, seed: int = 0, chunk: int = 100_000):
        self.n, self.seed = n, seed
        rng = np.random.default_rng([seed, 0])
        topics = rng.standard_normal((TOPICS, D)).astype(np.float32)
        topics /= np.linalg.norm(topics, axis=1, keepdims=True)
        self.base = np.empty((n, D), dtype=np.float32)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            r = np.random.default_rng([seed, 1, start])
            z = r.integers(0, TOPICS, stop - start)
            u = r.standard_normal((stop - start, D), dtype=np.float32) / SQRT_D
            b = topics[z] + SYNTH["gamma"] * u
            self.base[start:stop] = b / np.linalg.norm(b, axis=1, keepdims=True)

    def video(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames [T,D] raw, concepts [K,D] normalised) of video ``v``."""
        r = np.random.default_rng([self.seed, 2, v])
        e = r.standard_normal((T, D), dtype=np.float32) / SQRT_D
        frames = SYNTH["frame_norm"] * (self.base[v] + SYNTH["sigma"] * (e - e.mean(0)))
        c = self.base[v] + SYNTH["sigma_c"] * r.standard_normal((K, D), dtype=np.float32) / SQRT_D
        return frames, c / np.linalg.norm(c, axis=1, keepdims=True)

    def videos(self, rows) -> dict[str, np.ndarray]:
        """GLSCL video sides of ``rows``: frames, mask, frame Gram matrices, concepts (as ``index build`` stores)."""
        out = [self.video(int(v)) for v in rows]
        frames = np.stack([f for f, _ in out])
        return {"frames": frames, "concepts": np.stack([c for _, c in out]),
                "mask": np.ones((len(out), T), dtype=np.int8), "gram": frames @ frames.transpose(0, 2, 1)}

    def query(self, v: int, q: int) -> dict[str, torch.Tensor]:
        """Text side of query ``q`` about video ``v`` (sentence [1,D] raw, concepts [1,K,D])."""
        frames, concepts = self.video(v)
        r = np.random.default_rng([self.seed, 3, q])
        j = r.integers(0, T)
        s = frames[j] / SYNTH["frame_norm"] + SYNTH["nu"] * r.standard_normal(D, dtype=np.float32) / SQRT_D
        s = SYNTH["frame_norm"] * s / np.linalg.norm(s)
        tc = concepts + SYNTH["nu"] * r.standard_normal((K, D), dtype=np.float32) / SQRT_D
        tc /= np.linalg.norm(tc, axis=1, keepdims=True)
        return {"sentence": torch.from_numpy(s[None]), "concepts": torch.from_numpy(tc[None])}


class SubsetStore:
    """Rerank features of a subset of the gallery (the candidates), addressed by gallery row."""

    def __init__(self, rows: np.ndarray, arrays: dict[str, np.ndarray], n: int):
        self.pos = np.full(n, -1, dtype=np.int64)
        self.pos[rows] = np.arange(len(rows))
        self.store = RerankStore({k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in arrays.items()})

    def gather(self, rows) -> dict[str, torch.Tensor]:
        p = self.pos[np.asarray(rows)]
        if (p < 0).any():
            raise KeyError("row outside the stored candidate set")
        return self.store.gather(p)


def write_full_store(gallery: SyntheticGallery, folder: Path, keep: bool, block: int = 4096
                     ) -> tuple[RerankStore, Optional[dict[str, torch.Tensor]]]:
    """The whole gallery's rerank features as fp16 memmaps (what ``index build`` writes); with
    ``keep`` also the float32 tensors for the dense baseline."""
    example = {"frames": torch.zeros(1, T, D), "mask": torch.ones(1, T, dtype=torch.long),
               "gram": torch.zeros(1, T, T), "concepts": torch.zeros(1, K, D)}
    store = RerankStore.create(folder, gallery.n, example)
    kept = {"frames": torch.empty(gallery.n, T, D), "mask": torch.ones(gallery.n, T, dtype=torch.long),
            "concepts": torch.empty(gallery.n, K, D)} if keep else None
    for start in range(0, gallery.n, block):
        arr = gallery.videos(range(start, min(gallery.n, start + block)))
        side = {"frames": torch.from_numpy(arr["frames"]), "concepts": torch.from_numpy(arr["concepts"]),
                "mask": torch.from_numpy(arr["mask"]).long(), "gram": torch.from_numpy(arr["gram"])}
        store.write(start, side)
        if kept is not None:
            for k in kept:
                kept[k][start:start + len(side[k])] = side[k]
    store.flush()
    return RerankStore.open(folder), kept


# --------------------------------------------------------------------------------------- helpers
def exact_topk(x: np.ndarray, q: np.ndarray, k: int, chunk: int = 200_000) -> np.ndarray:
    """Exact inner-product top-k rows ``[Q,k]`` (chunked over the gallery)."""
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for start in range(0, len(x), chunk):
        s = q @ x[start:start + chunk].T
        kk = min(k, s.shape[1])
        idx = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(s, idx, 1)], 1)
        best_i = np.concatenate([best_i, idx + start], 1)
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def stats_ms(seconds: list[float]) -> dict[str, float]:
    a = 1e3 * np.asarray(seconds)
    return {"median": round(float(np.median(a)), 3), "p90": round(float(np.percentile(a, 90)), 3),
            "mean": round(float(a.mean()), 3), "n": len(a)}


@torch.no_grad()
def glscl_one_query(head: GLSCLHead, text: dict, frames: torch.Tensor, mask: torch.Tensor,
                    concepts: torch.Tensor) -> torch.Tensor:
    """``head.score`` for one query against ``[N]`` videos, with the pooled feature materialised.

    Same numbers as :class:`GlobalInteraction` (which avoids ``u [Bt,Bv,D]`` with a per-video Gram
    matrix -- the right choice for many queries at once, but for one query the Gram (T^2 D per video)
    costs more than pooling (2 T D)).  Checked against ``head.score`` in :func:`main`.
    """
    s = text["sentence"][0]
    dots = frames @ s                                                            # [N,T]
    dots = dots.masked_fill(mask <= 0, torch.finfo(dots.dtype).min)
    w = torch.softmax(dots / head.gim.temperature, dim=-1)
    u = torch.einsum("nt,ntd->nd", w, frames)
    sim1 = (u @ s) / (u.norm(dim=-1) * s.norm()).clamp_min(1e-12)
    sim2 = concepts.flatten(1) @ text["concepts"][0].flatten() / concepts.shape[1]  # (einsum here: 100x slower)
    return sim1 + head.cfg.loss2_weight * sim2


@torch.no_grad()
def dense_scores(head: GLSCLHead, text: dict, video: dict[str, torch.Tensor], chunk: int = 16384) -> torch.Tensor:
    """GLSCL score of one query against every video of ``video`` (float32 tensors in RAM: the dense
    baseline's best case, no fp16 conversion), in chunks."""
    n = len(video["mask"])
    out = torch.empty(n)
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        out[rows] = glscl_one_query(head, text, video["frames"][rows], video["mask"][rows], video["concepts"][rows])
    return out


def text_tower_ms(repeats: int = 10) -> float:
    """Median ms of the ViT-B/32 CLIP text tower on one 32-token query (random weights)."""
    from glscl_lite.model.backbone import CLIPBackbone

    bb = CLIPBackbone("ViT-B-32-quickgelu", pretrained=None).eval()
    ids = torch.randint(1, 49000, (1, 32))
    ids[0, 0], ids[0, -1] = 49406, 49407
    mask = torch.ones(1, 32, dtype=torch.long)
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 2):
            t0 = time.perf_counter()
            bb.encode_text(ids, mask)
            times.append(time.perf_counter() - t0)
    return round(1e3 * float(np.median(times[2:])), 2)


# ------------------------------------------------------------------------------------------ main
def run_size(n: int, args, head: GLSCLHead, tmp: Path) -> dict:
    t0 = time.perf_counter()
    gal = SyntheticGallery(n, seed=args.seed)
    t_gen = time.perf_counter() - t0
    rng = np.random.default_rng([args.seed, 9, n])
    targets = rng.integers(0, n, args.queries)
    texts = [gal.query(int(v), q) for q, v in enumerate(targets)]
    qv = np.concatenate([torch.nn.functional.normalize(t["sentence"], dim=-1).numpy() for t in texts])

    params = IndexParams(kind=args.kind, nprobe=args.nprobe, ef_search=args.ef_search)
    t0 = time.perf_counter()
    index = CoarseIndex.build(gal.base, params)
    t_build = time.perf_counter() - t0
    c = args.candidates
    exact = exact_topk(gal.base, qv, c)

    # rerank store: full fp16 memmap up to --full-store-max, else the candidates only
    t0 = time.perf_counter()
    full = n <= args.full_store_max
    dense_video = None
    if full:
        store, dense_video = write_full_store(gal, tmp / f"store_{n}", keep=n <= args.dense_max)
    else:
        _, cand = index.search(qv, c)
        rows = np.unique(cand[cand >= 0])
        store = SubsetStore(rows, gal.videos(rows), n)
    t_store = time.perf_counter() - t0

    faiss = __import__("faiss")
    build_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(args.threads)   # queries: one thread each (a 2-core box serves 2 at once)
    torch.set_num_threads(args.threads)
    for t, q in zip(texts[:20], qv[:20]):  # warm-up (page cache, allocator, faiss)
        two_stage(head, t, q, index, store, k=10, candidates=c)
    t1, t2, total, cand_sets, top1 = [], [], [], [], []
    for t, q in zip(texts, qv):
        a = time.perf_counter()
        _, rows = index.search(q[None], c)
        b = time.perf_counter()
        r, fine, _, _ = two_stage(head, t, q, index, store, k=10, candidates=c)
        e = time.perf_counter()
        t1.append(b - a)
        total.append(e - b)   # two_stage runs its own stage 1: the whole path
        cand_sets.append(set(rows[0].tolist()))
        top1.append(int(r[0]))
    t2 = [tt - s1 for tt, s1 in zip(total, t1)]
    ann_recall = float(np.mean([len(cs & set(ex.tolist())) / c for cs, ex in zip(cand_sets, exact)]))
    res = {
        "n": n, "index_kind": index.kind, "auto_kind": choose_index_kind(n), "index_params": vars(index.params),
        "seconds_generate": round(t_gen, 2), "seconds_index_build": round(t_build, 2),
        "seconds_rerank_store": round(t_store, 2),
        "rerank_store": "fp16 memmap, whole gallery" if full else f"fp16 in RAM, candidates only ({len(store.pos[store.pos >= 0])} videos)",
        "memory_bytes": {"coarse_vectors_fp32": int(gal.base.nbytes),
                         "rerank_per_video_fp16": (T * D + K * D + T * T) * 2 + T,
                         "rerank_whole_gallery_fp16": n * ((T * D + K * D + T * T) * 2 + T)},
        "two_stage_ms": stats_ms(total), "stage1_ms": stats_ms(t1), "stage2_ms": stats_ms(t2),
        "recall": {"candidates": c, "ann_recall": round(ann_recall, 4),
                   "stage1_recall_target": round(float(np.mean([v in cs for v, cs in zip(targets, cand_sets)])), 4),
                   "exact_recall_target": round(float(np.mean([v in set(ex.tolist()) for v, ex in zip(targets, exact)])), 4),
                   "r1_coarse": round(float(np.mean(exact[:, 0] == targets)), 4),
                   "r1_two_stage": round(float(np.mean(np.asarray(top1) == targets)), 4)},
    }
    if dense_video is not None:
        nq = min(len(texts), args.dense_queries if n > 10_000 else len(texts))
        dense_t, dense_top1 = [], []
        for t in texts[:nq]:
            a = time.perf_counter()
            s = dense_scores(head, t, dense_video)
            dense_top1.append(int(s.argmax()))
            dense_t.append(time.perf_counter() - a)
        res["dense_ms"] = {**stats_ms(dense_t), "extrapolated": False}
        res["recall"].update(
            dense_queries=nq,
            stage1_recall_dense_top1=round(float(np.mean([d in cs for d, cs in zip(dense_top1, cand_sets)])), 4),
            top1_agreement=round(float(np.mean(np.asarray(dense_top1) == np.asarray(top1[:nq]))), 4),
            r1_dense=round(float(np.mean(np.asarray(dense_top1) == targets[:nq])), 4))
    faiss.omp_set_num_threads(build_threads)
    torch.set_num_threads(build_threads)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--dense-queries", type=int, default=10, help="queries scored densely above 10k videos")
    p.add_argument("--candidates", type=int, default=50)
    p.add_argument("--kind", default="auto", choices=["auto", "flat", "hnsw", "ivf"])
    p.add_argument("--nprobe", type=int, default=32)
    p.add_argument("--ef-search", type=int, default=512)
    p.add_argument("--full-store-max", type=int, default=100_000)
    p.add_argument("--dense-max", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch and faiss threads per query (index builds use all cores)")
    p.add_argument("--tmp", type=Path, default=None, help="folder for the fp16 rerank memmaps")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--no-text-tower", action="store_true", help="skip timing the ViT-B/32 text tower")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    head = GLSCLHead(Config(), D).eval()   # paper sizes: GIM tau 3, K=8; score uses no LIM weights
    check = SyntheticGallery(64, seed=args.seed)
    arr, text = check.videos(range(64)), check.query(3, 0)
    side = {k: torch.from_numpy(v) for k, v in arr.items()}
    side["mask"] = side["mask"].long()
    torch.testing.assert_close(glscl_one_query(head, text, side["frames"], side["mask"], side["concepts"]),
                               head.score(text, side)[0], atol=1e-5, rtol=1e-5)
    machine = machine_name()
    result = {"machine": machine, "date": dt.date.today().isoformat(), "torch": torch.__version__,
              "query_threads": args.threads, "cpu_count": os.cpu_count(),
              "load_average_at_start": list(os.getloadavg()),
              "dims": {"D": D, "T": T, "K": K}, "candidates": args.candidates, "queries": args.queries,
              "synthetic": SYNTH, "head": "glscl (Sim1 + 0.5 Sim2, GIM tau 3)",
              "note": ("per-query times exclude the CLIP text tower (see text_tower_ms); two_stage_ms = faiss "
                       "search + gather of the candidates' fp16 features + GLSCL rerank + sort, one query at a "
                       "time; dense_ms = GLSCL on every video from the same fp16 store"),
              "sizes": []}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for n in args.sizes:
            t0 = time.time()
            res = run_size(n, args, head, Path(tmp))
            res["seconds_total"] = round(time.time() - t0, 1)
            result["sizes"].append(res)
            print(f"N={n:>9,}  {res['index_kind']:>4}  two-stage {res['two_stage_ms']['median']:7.2f} ms "
                  f"(stage 1 {res['stage1_ms']['median']:.2f}, stage 2 {res['stage2_ms']['median']:.2f})  "
                  f"dense {res.get('dense_ms', {}).get('median', float('nan')):8.1f} ms  "
                  f"recall target {res['recall']['stage1_recall_target']:.3f}  ann {res['recall']['ann_recall']:.3f}",
                  flush=True)
    measured = [s for s in result["sizes"] if "dense_ms" in s]
    if measured:
        ref = max(measured, key=lambda s: s["n"])
        for s in result["sizes"]:
            if "dense_ms" not in s:
                s["dense_ms"] = {"median": round(ref["dense_ms"]["median"] * s["n"] / ref["n"], 1),
                                 "extrapolated": True, "from_n": ref["n"]}
    largest = max(result["sizes"], key=lambda s: s["n"])
    result["goal"] = {"two_stage_ms_median_le": 20.0, "at_n": largest["n"],
                      "met": largest["two_stage_ms"]["median"] <= 20.0}
    if not args.no_text_tower:
        torch.set_num_threads(args.threads)
        result["text_tower_ms"] = {"ViT-B-32": text_tower_ms(), "threads": args.threads}
    result["load_average_at_end"] = list(os.getloadavg())
    slug = machine_slug(machine)
    path = write_json_atomic(args.out or RESULTS / f"search_{slug}.json", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
