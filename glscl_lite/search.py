"""Large-gallery text-to-video search: a coarse faiss index plus a rerank store beside it.

``glscl-lite index build --run RUN_DIR [--run RUN_DIR2] [--videos DIR|FILE] --out INDEX`` encodes
every gallery video once with each run's model and writes, per run (one per head)::

    INDEX/index.json                 what was built: runs, heads, index kind and parameters
    INDEX/video_ids.json             row -> video id
    INDEX/<head>/coarse.faiss        faiss inner-product index of the per-video coarse vectors [N,D]
    INDEX/<head>/rerank/<key>.npy    the head's per-video features (its "video side"), float16
                                     (masks int8), memory-mapped at search time

``glscl-lite search --index INDEX "a red ball rolls left" [--k 10] [--rerank HEAD]`` then runs
two stages: (1) the query's coarse vector recalls ``candidates`` videos from the faiss index, (2) the
head scores only those candidates from their stored features, and the top ``k`` are returned.

Coarse vectors (one inner product per video, so an ANN index applies) are offered by the heads
that declare ``indexable`` (``Head.coarse_video_vectors`` / ``coarse_query_vectors``; the heads are
listed in :mod:`glscl_lite.model.registry`):

* ``eercf``: its own stage 1, ``<s^ W_g, v_bar>`` (spec 4.7);
* ``meanp``: the cosine of sentence and mean-pooled normalised frames (the head's exact score);
* ``glscl`` / ``glccl``: ``cos(s, mean_i h_i)`` over valid post-temporal frames -- the GIM / GLIM
  sentence pooling in the limit tau -> infinity (uniform weights), i.e. what the text-guided pooling
  refines.  The rerank then computes the full head score (GLSCL: ``Sim1 + 0.5 Sim2``).

Index kind (:func:`choose_index_kind`): exact ``IndexFlatIP`` up to ``flat_max`` videos (50k:
~25 M MACs per query), HNSW up to ``hnsw_max`` (500k; best recall per millisecond but graph build
time grows quickly on a small CPU), IVF-Flat beyond (k-means build is cheap, ``nprobe`` lists are
scanned per query).  Every choice can be forced with ``kind``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from glscl_lite.errors import DataError, UserError
from glscl_lite.model.head import Side
from glscl_lite.utils import PathLike, write_json_atomic

INDEX_FILE = "index.json"
INDEX_VERSION = 1


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is in environment.yml
        raise UserError("search needs faiss: pip install faiss-cpu") from None
    return faiss


# ------------------------------------------------------------------------------------ coarse index
@dataclass
class IndexParams:
    """How the coarse index is built and searched (stored in ``index.json``)."""

    kind: str = "auto"
    """auto | flat | hnsw | ivf"""
    flat_max: int = 50_000
    """auto: exact search up to this many videos."""
    hnsw_max: int = 500_000
    """auto: HNSW up to this many videos, IVF beyond."""
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 512
    """HNSW beam width at query time (clustered 512-d data, 100k items: 128 -> 89 % of the exact top-50,
    512 -> 100 %, ~2 ms per query on one core; benchmarks/bench_search.py)."""
    nlist: Optional[int] = None
    """IVF lists; None: ``round(sqrt(N))`` clamped to [1, N/39] (faiss wants >= 39 training points per list)."""
    nprobe: int = 32
    train_size: int = 50_000
    """IVF: vectors sampled for k-means."""
    seed: int = 0


def choose_index_kind(n: int, flat_max: int = 50_000, hnsw_max: int = 500_000) -> str:
    """``flat`` for ``n <= flat_max``, ``hnsw`` for ``n <= hnsw_max``, else ``ivf``."""
    if n <= flat_max:
        return "flat"
    return "hnsw" if n <= hnsw_max else "ivf"


class CoarseIndex:
    """A faiss inner-product index over ``[N,D]`` float32 vectors (row i = gallery item i)."""

    def __init__(self, index: Any, kind: str, params: IndexParams):
        self.index, self.kind, self.params = index, kind, params
        self.configure()

    @classmethod
    def build(cls, vectors: np.ndarray, params: Optional[IndexParams] = None) -> "CoarseIndex":
        faiss = _faiss()
        params = params or IndexParams()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = x.shape
        kind = choose_index_kind(n, params.flat_max, params.hnsw_max) if params.kind == "auto" else params.kind
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.ef_construction
        elif kind == "ivf":
            nlist = params.nlist or int(round(math.sqrt(n)))
            nlist = max(1, min(nlist, n // 39 or 1))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(params.seed)
            sample = x if n <= params.train_size else x[np.sort(rng.choice(n, params.train_size, replace=False))]
            index.train(sample)
            params = IndexParams(**{**asdict(params), "nlist": nlist})
        else:
            raise UserError(f"index kind must be auto, flat, hnsw or ivf, got {kind!r}")
        index.add(x)
        return cls(index, kind, params)

    def configure(self) -> None:
        """Apply the search-time parameters (``ef_search``, ``nprobe``)."""
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = self.params.ef_search
        elif self.kind == "ivf":
            self.index.nprobe = self.params.nprobe

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` by inner product: ``(scores [Q,k], rows [Q,k])`` (rows -1 when fewer exist)."""
        if self.kind == "hnsw":  # efSearch must cover k
            self.index.hnsw.efSearch = max(self.params.ef_search, k)
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        return self.index.search(q, min(k, self.index.ntotal))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def save(self, path: Path) -> None:
        _faiss().write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str, params: IndexParams) -> "CoarseIndex":
        return cls(_faiss().read_index(str(path)), kind, params)


# ------------------------------------------------------------------------------------ rerank store
class RerankStore:
    """Per-video head features (a "video side") as memory-mapped arrays, one ``<key>.npy`` each.

    Floating tensors are stored as float16 (half the bytes; scores move by ~1e-3), integer ones
    (masks) as int8.  :meth:`gather` reads only the requested rows.
    """

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.n = len(next(iter(arrays.values())))

    @classmethod
    def create(cls, folder: Path, n: int, example: Side) -> "RerankStore":
        """Empty memmaps shaped like ``example`` (one item's side, any first dim) for ``n`` videos."""
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for key, t in example.items():
            dtype = np.float16 if t.is_floating_point() else np.int8
            arrays[key] = np.lib.format.open_memmap(folder / f"{key}.npy", "w+", dtype, (n, *t.shape[1:]))
            from glscl_lite import storage

            storage.reserve(folder / f"{key}.npy", (folder / f"{key}.npy").stat().st_size)  # no SIGBUS when full
        return cls(arrays)

    def write(self, start: int, side: Side) -> None:
        for key, arr in self.arrays.items():
            arr[start:start + len(side[key])] = side[key].detach().cpu().numpy().astype(arr.dtype)

    def flush(self) -> None:
        for arr in self.arrays.values():
            if isinstance(arr, np.memmap):
                arr.flush()

    @classmethod
    def open(cls, folder: Path) -> "RerankStore":
        files = sorted(folder.glob("*.npy"))
        if not files:
            raise DataError(f"{folder}: no rerank features")
        return cls({p.stem: np.load(p, mmap_mode="r") for p in files})

    def gather(self, rows: Sequence[int]) -> Side:
        """Side of the listed videos as float32 / int64 tensors (first dim = ``len(rows)``)."""
        idx = np.asarray(rows, dtype=np.int64)
        order = np.argsort(idx)  # sorted reads are friendlier to the page cache
        out = {}
        for key, arr in self.arrays.items():
            block = np.empty((len(idx), *arr.shape[1:]), dtype=arr.dtype)
            block[order] = arr[idx[order]]
            t = torch.from_numpy(block)
            out[key] = t.float() if np.issubdtype(arr.dtype, np.floating) else t.long()
        return out


# ---------------------------------------------------------------------------------- coarse vectors
def _indexable(head: str):
    """The registered head class of ``head``, if it offers stage-1 vectors (``Head.indexable``)."""
    from glscl_lite.model.registry import HEADS, head_class, indexable_heads

    if head not in HEADS or not head_class(head).indexable:
        raise UserError(f"no coarse vector for head {head!r}; supported: {', '.join(indexable_heads())}")
    return head_class(head)


def coarse_video_vectors(head: str, video: Side) -> torch.Tensor:
    """Per-video stage-1 vector ``[N,D]`` for ``head`` (module docstring; the head class offers it)."""
    return _indexable(head).coarse_video_vectors(video)


def coarse_query_vectors(head: str, text: Side) -> torch.Tensor:
    """Per-query stage-1 vector ``[Q,D]``: inner product with :func:`coarse_video_vectors` = coarse score."""
    return _indexable(head).coarse_query_vectors(text)


# ------------------------------------------------------------------------------------ two stages
@dataclass
class Hit:
    video_id: str
    score: float
    """Stage-2 (head) score; equal to the coarse score when no rerank ran."""
    coarse_score: float
    coarse_rank: int
    """0-based rank among the stage-1 candidates."""


@torch.no_grad()
def two_stage(head: torch.nn.Module, text: Side, query_vector: np.ndarray, index: CoarseIndex,
              store: RerankStore, k: int = 10, candidates: int = 50
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One query (``text`` side with first dim 1): stage 1 recalls ``max(k, candidates)`` rows from
    ``index``; stage 2 scores them with ``head.score`` on features gathered from ``store``.

    Returns ``(rows [k], head scores [k], coarse positions [k], coarse scores [k])``, best first.
    """
    c_scores, c_rows = index.search(query_vector.reshape(1, -1), max(k, candidates))
    valid = c_rows[0] >= 0
    rows, c_scores = c_rows[0][valid], c_scores[0][valid]
    fine = head.score(text, store.gather(rows))[0].float().numpy()
    order = np.argsort(-fine, kind="stable")[:k]
    return rows[order], fine[order], order, c_scores[order]


@dataclass
class RunEntry:
    head: str
    run: str
    checkpoint: str
    kind: str
    params: dict = field(default_factory=dict)
    dim: int = 0
    video_dir: Optional[str] = None
    """Where the gallery videos were read from (their size and mtime are in ``provenance``)."""
    provenance: Optional[dict] = None
    """What this head's part of the index was built from (:func:`entry_fingerprint`)."""


def entry_fingerprint(run: PathLike, checkpoint: str, video_dir: PathLike, video_ids: Sequence[str]) -> dict:
    """The checkpoint's sha256 and the gallery videos' size and mtime."""
    from glscl_lite import provenance
    from glscl_lite.runs import checkpoint_path

    return provenance.fingerprint(checkpoint=provenance.file_sha256(checkpoint_path(run, checkpoint)),
                                  videos=provenance.fingerprint_videos(video_dir, video_ids))


def check_query(query: str, k: int, candidates: int = 50) -> None:
    """A search needs a non-empty query, ``k >= 1`` and ``candidates >= 1``."""
    if not isinstance(query, str) or not query.strip():
        raise UserError(f"search: the query {query!r} is empty; give the text to search for")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f"search: --k {k}: the number of results must be >= 1")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise UserError(f"search: --candidates {candidates}: must be >= 1")


class SearchIndex:
    """An index folder opened for queries; models are loaded lazily, one per run."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        meta_path = self.path / INDEX_FILE
        if not meta_path.is_file():
            raise UserError(f"{self.path}: not a search index ({INDEX_FILE} not found); "
                            "build one with `glscl-lite index build`")
        self.meta = json.loads(meta_path.read_text())
        self.video_ids: list[str] = json.loads((self.path / "video_ids.json").read_text())
        self.runs = {r["head"]: RunEntry(**r) for r in self.meta["runs"]}
        self._models: dict[str, Any] = {}
        self._indexes: dict[str, CoarseIndex] = {}
        self._stores: dict[str, RerankStore] = {}

    @property
    def heads(self) -> list[str]:
        return [r["head"] for r in self.meta["runs"]]

    def _entry(self, head: Optional[str]) -> RunEntry:
        head = head or self.heads[0]
        if head not in self.runs:
            raise UserError(f"{self.path}: no {head!r} run in this index; it holds {', '.join(self.heads)} "
                            "(add runs with repeated --run at build time)")
        return self.runs[head]

    def model(self, head: Optional[str] = None):
        e = self._entry(head)
        if e.head not in self._models:
            from glscl_lite.evaluate import load_run_model

            self.check_provenance(e.head)
            model, cfg, _ = load_run_model(e.run, e.checkpoint, device="cpu")
            self._models[e.head] = (model, cfg)
        return self._models[e.head]

    def check_provenance(self, head: Optional[str] = None) -> None:
        """Refuse this head's index when its run's checkpoint or the gallery videos changed since
        it was built (a query encoded with new weights against a gallery of old ones)."""
        from glscl_lite import provenance

        e = self._entry(head)
        if e.provenance is None or e.video_dir is None:
            return
        runs_args = " ".join(f"--run {r.run}" for r in self.runs.values())
        provenance.check(e.provenance, entry_fingerprint(e.run, e.checkpoint, e.video_dir, self.video_ids),
                         f"{self.path} (search index, head {e.head})",
                         f"glscl-lite index build {runs_args} --checkpoint {e.checkpoint} --out {self.path}")

    def coarse_index(self, head: Optional[str] = None) -> CoarseIndex:
        e = self._entry(head)
        if e.head not in self._indexes:
            self._indexes[e.head] = CoarseIndex.load(self.path / e.head / "coarse.faiss", e.kind,
                                                     IndexParams(**e.params))
        return self._indexes[e.head]

    def store(self, head: Optional[str] = None) -> RerankStore:
        e = self._entry(head)
        if e.head not in self._stores:
            self._stores[e.head] = RerankStore.open(self.path / e.head / "rerank")
        return self._stores[e.head]

    @torch.no_grad()
    def encode_queries(self, queries: Sequence[str], head: Optional[str] = None) -> Side:
        from glscl_lite.data.text import tokenize

        model, cfg = self.model(head)
        ids, mask = tokenize(list(queries), cfg.max_words)
        return model.encode_text(ids, mask)

    @torch.no_grad()
    def search(self, query: str, k: int = 10, rerank: Optional[str] = None,
               candidates: int = 50) -> list[Hit]:
        """Top ``k`` videos for one text query (stage 1: ``candidates`` from the index)."""
        check_query(query, k, candidates)
        e = self._entry(rerank)
        model, _ = self.model(e.head)
        text = self.encode_queries([query], e.head)
        qv = coarse_query_vectors(e.head, text).numpy()
        rows, fine, pos, coarse = two_stage(model.head, text, qv, self.coarse_index(e.head), self.store(e.head),
                                            k, candidates)
        return [Hit(self.video_ids[r], float(s), float(c), int(p)) for r, s, p, c in zip(rows, fine, pos, coarse)]


# ------------------------------------------------------------------------------------------ build
def gallery_ids(cfg, videos: Optional[PathLike]) -> tuple[list[str], Optional[Path]]:
    """Gallery video ids and the folder to decode them from (None: the run's own sources).

    ``videos``: None (every video of the run's annotation folder), a folder of ``<id>.mp4``, or a
    file listing ids (``.json`` list, or text/CSV with one id per line; a ``video_id`` header is skipped).
    """
    from glscl_lite.data.msrvtt import all_video_ids

    if videos is None:
        return all_video_ids(cfg.anno_path), None
    p = Path(videos)
    if p.is_dir():
        ids = sorted(f.stem for f in p.glob("*.mp4"))
        if not ids:
            raise DataError(f"{p}: no .mp4 files")
        return ids, p
    if p.is_file():
        if p.suffix == ".json":
            ids = [str(v) for v in json.loads(p.read_text())]
        else:
            ids = [ln.split(",")[0].strip() for ln in p.read_text().splitlines() if ln.strip()]
            ids = [v for v in ids if v not in ("video_id", "key")]
        if not ids:
            raise DataError(f"{p}: no video ids")
        return list(dict.fromkeys(ids)), None
    raise DataError(f"{p}: neither a video folder nor a file of video ids")


def _video_sources(model, cfg, ids: list[str], folder: Optional[Path]):
    """(source, features) for ``evaluate.encode_videos``: the run's feature cache when it holds every
    id, else its frame cache when it does, else decoding from ``folder`` or ``cfg.video_path``."""
    from glscl_lite.data.cache import DecodedVideos, FrameCache
    from glscl_lite.features import FeatureCache

    if folder is None and cfg.feature_cache and Path(cfg.feature_cache, "meta.json").is_file():
        fc = FeatureCache(cfg.feature_cache)
        try:
            fc.video_rows(ids)
        except DataError:  # some gallery videos are not cached: encode them from frames
            pass
        else:
            fc.check_provenance(cfg)
            return None, fc
    if folder is None and cfg.frame_cache and Path(cfg.frame_cache, "index.json").is_file():
        cache = FrameCache(cfg.frame_cache)
        if cache.image_size == model.backbone.image_size and all(v in cache for v in ids):
            cache.check_source(cfg.video_path, cfg.anno_path)
            return cache, None
    return DecodedVideos(folder or cfg.video_path, cfg.max_frames, model.backbone.image_size, cfg.video_framerate), None


@torch.no_grad()
def build_index(runs: Sequence[PathLike], out: PathLike, videos: Optional[PathLike] = None,
                params: Optional[IndexParams] = None, checkpoint: str = "best", block: int = 1024,
                progress: bool = False) -> dict:
    """Encode the gallery with every run's model and write the index folder atomically."""
    from glscl_lite.encode import encode_videos
    from glscl_lite.evaluate import load_run_model

    if not runs:
        raise UserError("index build needs at least one --run")
    params = params or IndexParams()
    t0 = time.time()
    out = Path(out)
    ids: Optional[list[str]] = None
    entries = []
    from glscl_lite import storage

    with storage.building(out, "search index") as tmp:
        tmp.mkdir(parents=True)
        for run in runs:
            model, cfg, dev = load_run_model(run, checkpoint, device="cpu")
            head = cfg.head
            from glscl_lite.model.registry import indexable_heads

            if head not in indexable_heads():
                raise UserError(f"{run}: head {head!r} cannot be indexed; supported: {', '.join(indexable_heads())}")
            if any(e["head"] == head for e in entries):
                raise UserError(f"two runs with head {head!r}: an index holds one run per head")
            run_ids, folder = gallery_ids(cfg, videos)
            if ids is None:
                ids = run_ids
            elif run_ids != ids:
                raise UserError(f"{run}: its gallery differs from the first run's; pass --videos explicitly")
            source, features = _video_sources(model, cfg, ids, folder)
            store, coarse = None, []
            for start in range(0, len(ids), block):
                side = encode_videos(model, ids[start:start + block], cfg, dev, source=source, features=features)
                if store is None:
                    store = RerankStore.create(tmp / head / "rerank", len(ids), side)
                store.write(start, side)
                coarse.append(coarse_video_vectors(head, side).numpy())
                if progress:
                    print(f"{head}: {min(start + block, len(ids))}/{len(ids)} videos")
            store.flush()
            vectors = np.concatenate(coarse).astype(np.float32)
            index = CoarseIndex.build(vectors, params)
            index.save(tmp / head / "coarse.faiss")
            video_dir = str(Path(folder or cfg.video_path).resolve())
            entries.append(asdict(RunEntry(head, str(Path(run).resolve()), checkpoint, index.kind,
                                           asdict(index.params), int(vectors.shape[1]), video_dir,
                                           entry_fingerprint(run, checkpoint, video_dir, ids))))
            del store
        (tmp / "video_ids.json").write_text(json.dumps(ids))
        meta = {"version": INDEX_VERSION, "n_videos": len(ids), "runs": entries,
                "seconds": round(time.time() - t0, 2), "videos": str(videos) if videos else None}
        (tmp / INDEX_FILE).write_text(json.dumps(meta, indent=2))
    return meta


def search(index: PathLike, query: str, k: int = 10, rerank: Optional[str] = None, candidates: int = 50,
           json_path: Optional[PathLike] = None) -> dict:
    """``glscl-lite search``: top ``k`` video ids and scores for ``query`` (also written as JSON)."""
    check_query(query, k, candidates)
    idx = SearchIndex(index)
    t0 = time.perf_counter()
    hits = idx.search(query, k=k, rerank=rerank, candidates=candidates)
    head = rerank or idx.heads[0]
    result = {"query": query, "rerank": head, "k": k, "candidates": candidates,
              "index_kind": idx.runs[head].kind, "n_videos": len(idx.video_ids),
              "seconds": round(time.perf_counter() - t0, 4), "results": [asdict(h) for h in hits]}
    if json_path:
        write_json_atomic(json_path, result)
    return result
