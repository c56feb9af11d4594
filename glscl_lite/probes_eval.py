"""Scoring a trained model on the diagnostic probes and reporting the oracle (``eval --probes``).

Metrics (all in percent):

* **moment** -- text-to-video retrieval over the moment gallery (one probe video per test video):
  ``moment``: R@1/R@5/R@10/MdR of the moment captions (true of at most 30 % of the clip);
  ``full``: the same for whole-clip captions of the same videos.  Each comes with its ``oracle``
  (best expected recall given how many gallery videos each caption is true of).  A model that
  dilutes short content loses more from ``full`` to ``moment``.
* **order** / **binding** -- pairwise accuracy over caption/video pairs ``(Ca, Va), (Cb, Vb)`` with
  score ``s``: ``t2v`` = share of captions that score their own video above the twin
  (``s(Ca,Va) > s(Ca,Vb)`` and ``s(Cb,Vb) > s(Cb,Va)``); ``v2t`` = share of videos that score their
  own caption above the twin's (``s(Ca,Va) > s(Cb,Va)``, ``s(Cb,Vb) > s(Ca,Vb)``); ``acc`` = mean
  of the two; a tie (``|difference| <= TIE_TOL``) counts 0.5.  Chance is 50 %.
  For order pairs the input of ``Vb`` is, by default (``order_twin="reverse"``), exactly the sampled
  frames of ``Va`` in reverse order (the ``_b`` file holds the same reversal, up to H.264 noise), so
  any order-blind model (frame features pooled by a permutation-invariant function) gets
  ``Va == Vb``, all ties, and exactly 50 %.
* **oracle** -- for the run's test captions, the best expected R@1/5/10 (``min(1, k / n_true)``
  averaged) from ``probes/oracle.json``, printed beside the model's R@1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from glscl_lite.config import Config
from glscl_lite.data.caption_truth import oracle_recall
from glscl_lite.data.probes import PROBE_NAMES, load_oracle, read_probe_csv
from glscl_lite.errors import DataError

__all__ = ["TIE_TOL", "pair_wins", "pair_accuracy", "score_probes", "test_oracle", "format_probes", "ProbeVideos",
           "ProbeFeatures"]

TIE_TOL = 1e-5
"""Score differences at most this large (times max(1, |score|)) count as ties."""


class ProbeVideos:
    """Video source for probe videos: decodes ``video_dir/<id>.mp4``; ids in ``reverse_of`` are the
    time-reversed clip of another id (only the real frames are reversed; padding stays at the end).
    Picklable (DataLoader workers)."""

    def __init__(self, video_dir, max_frames: int, image_size: int, framerate: int = 1,
                 reverse_of: Optional[dict[str, str]] = None):
        from glscl_lite.data.cache import DecodedVideos

        self.decoded = DecodedVideos(video_dir, max_frames, image_size, framerate)
        self.max_frames, self.image_size = int(max_frames), int(image_size)
        self.reverse_of = dict(reverse_of or {})

    def __contains__(self, video_id: object) -> bool:
        return isinstance(video_id, str) and self.reverse_of.get(video_id, video_id) in self.decoded

    def get(self, video_id: str, augment=None) -> tuple[np.ndarray, np.ndarray]:
        base = self.reverse_of.get(video_id)
        if base is None:
            path = self.decoded.path(video_id)
            if not path.is_file():
                raise DataError(f"{path}: probe video not found; regenerate the corpus with `glscl-lite synth`")
            return self.decoded.get(video_id)
        frames, mask = self.get(base)
        n = int(np.asarray(mask).sum())
        frames = frames.copy()
        frames[:n] = frames[:n][::-1]
        return frames, mask


def pair_wins(sim: torch.Tensor, tol: float = TIE_TOL) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair scores for ``sim [P, 2, 2]`` (pair, caption a/b, video a/b): ``(t2v [P], v2t [P])``,
    each the mean over the pair's two captions (videos) of 1 (own item scores higher), 0.5 (tie,
    ``|difference| <= tol * max(1, |scores|)``) or 0."""
    s = torch.as_tensor(sim, dtype=torch.float64)
    scale = torch.clamp(s.abs().amax(dim=(1, 2)), min=1.0)

    def win(good: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
        d = good - bad
        return torch.where(d.abs() <= tol * scale, torch.full_like(d, 0.5), (d > 0).double())

    t2v = (win(s[:, 0, 0], s[:, 0, 1]) + win(s[:, 1, 1], s[:, 1, 0])) / 2
    v2t = (win(s[:, 0, 0], s[:, 1, 0]) + win(s[:, 1, 1], s[:, 0, 1])) / 2
    return t2v, v2t


def pair_accuracy(sim: torch.Tensor, tol: float = TIE_TOL) -> dict[str, float]:
    """Pairwise accuracy for ``sim [P, 2, 2]`` (pair, caption a/b, video a/b): ``t2v``, ``v2t``
    and their mean ``acc`` in percent, ties count 0.5 (see the module docstring)."""
    t2v, v2t = pair_wins(sim, tol)
    out = {"t2v": 100.0 * t2v.mean().item(), "v2t": 100.0 * v2t.mean().item()}
    out["acc"] = (out["t2v"] + out["v2t"]) / 2
    return {k: round(v, 3) for k, v in out.items()}


class ProbeFeatures:
    """Frozen-CLIP outputs of every probe video and caption, computed once per backbone.

    The same reading interface as :class:`glscl_lite.features.FeatureCache` (``video_rows``,
    ``caption_rows``, ``videos``, ``texts``), so :func:`score_probes` can score many heads that share
    one frozen backbone (an ablation grid) without decoding and encoding ~3 probe videos per test
    video for every cell.  The order twin ``_b`` holds ``_a``'s frame features reversed (exact:
    the image tower sees one frame at a time).  ``backbone_checksum`` is checked against the model's
    backbone before scoring; a mismatch is refused by name.
    """

    def __init__(self, video_ids: list[str], captions: list[tuple[str, str]], arrays: dict[str, torch.Tensor],
                 backbone_checksum: str, corpus_dir: str):
        self.video_ids, self.captions = list(video_ids), list(captions)
        self.arrays, self.backbone_checksum, self.corpus_dir = arrays, backbone_checksum, corpus_dir
        self._vpos = {v: i for i, v in enumerate(self.video_ids)}
        self._cpos = {c: i for i, c in enumerate(self.captions)}

    @classmethod
    @torch.no_grad()
    def build(cls, model, cfg: Config, device, corpus_dir=None) -> "ProbeFeatures":
        """Encode every probe item of the corpus with ``model``'s backbone (patch tokens too when the
        model's head scores them)."""
        from torch.utils.data import DataLoader

        from glscl_lite.data.dataset import VideoDataset
        from glscl_lite.data.text import tokenize
        from glscl_lite.features import backbone_checksum

        corpus = Path(corpus_dir if corpus_dir is not None else cfg.anno_path)
        rows = {name: read_probe_csv(corpus, name) for name in PROBE_NAMES}
        twins = {r2["video_id"]: r1["video_id"] for r1, r2 in zip(rows["order"][::2], rows["order"][1::2])}
        ids = list(dict.fromkeys(r["video_id"] for name in PROBE_NAMES for r in rows[name]
                                 if r["video_id"] not in twins))
        source = ProbeVideos(corpus / "videos", cfg.max_frames, model.backbone.image_size, cfg.video_framerate)
        was_training = model.training
        model.eval()
        frames, masks, patches = [], [], []
        loader = DataLoader(VideoDataset(ids, source), batch_size=cfg.batch_size_val, shuffle=False,
                            num_workers=cfg.workers)
        for b in loader:
            mask = b["video_mask"].to(device)
            f, p = model.frame_and_patch_features(b["video"].to(device), mask)
            frames.append(f.float().cpu())
            masks.append(mask.cpu())
            if p is not None:
                patches.append(p.half().cpu())
        arrays = {"frame_feats": torch.cat(frames), "video_mask": torch.cat(masks)}
        if patches:
            arrays["patch_feats"] = torch.cat(patches)
        pos = {v: i for i, v in enumerate(ids)}
        extra = {k: [] for k in arrays}
        for twin, base in twins.items():  # the reversed twin: the base's valid frames in reverse order
            i, n = pos[base], int(arrays["video_mask"][pos[base]].sum())
            for k in arrays:
                x = arrays[k][i].clone()
                if k != "video_mask":
                    x[:n] = x[:n].flip(0)
                extra[k].append(x)
        if twins:
            arrays = {k: torch.cat([arrays[k], torch.stack(extra[k])]) for k in arrays}
        captions = list(dict.fromkeys((r["video_id"], r["sentence"]) for name in PROBE_NAMES for r in rows[name]))
        sent, words, tmask = [], [], []
        for s in range(0, len(captions), cfg.batch_size_val):
            ids_, m = tokenize([c for _, c in captions[s:s + cfg.batch_size_val]], cfg.max_words)
            se, wo = model.text_tokens(ids_.to(device), m.to(device))
            sent.append(se.cpu())
            words.append(wo.cpu())
            tmask.append(m)
        arrays.update(sentence=torch.cat(sent), words=torch.cat(words), text_mask=torch.cat(tmask))
        model.train(was_training)
        return cls(ids + list(twins), captions, arrays, backbone_checksum(model.backbone), str(corpus))

    def save(self, path) -> None:
        """Write the features to one file (atomically); :meth:`load` reads it back."""
        from glscl_lite.utils import atomic_path

        state = {"video_ids": self.video_ids, "captions": self.captions, "arrays": self.arrays,
                 "backbone_checksum": self.backbone_checksum, "corpus_dir": self.corpus_dir}
        with atomic_path(Path(path)) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path) -> "ProbeFeatures":
        state = torch.load(Path(path), map_location="cpu", weights_only=False)
        return cls(state["video_ids"], [tuple(c) for c in state["captions"]], state["arrays"],
                   state["backbone_checksum"], state["corpus_dir"])

    def check(self, model) -> None:
        from glscl_lite.features import backbone_checksum

        if backbone_checksum(model.backbone) != self.backbone_checksum:
            raise DataError(f"probe features of {self.corpus_dir} were encoded with other CLIP weights "
                            f"({self.backbone_checksum}); build them with this model's backbone")

    @property
    def patch_feats(self):
        return self.arrays.get("patch_feats")

    def video_rows(self, video_ids: list[str]) -> np.ndarray:
        try:
            return np.asarray([self._vpos[v] for v in video_ids])
        except KeyError as exc:
            raise DataError(f"probe video {exc.args[0]} has no features here") from None

    def caption_rows(self, captions) -> np.ndarray:
        try:
            return np.asarray([self._cpos[(c.video_id, c.caption)] for c in captions])
        except KeyError as exc:
            raise DataError(f"probe caption {exc.args[0]!r} has no features here") from None

    def videos(self, rows) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(np.asarray(rows))
        keys = ("frame_feats", "video_mask", "patch_feats")
        return {k: self.arrays[k][rows] for k in keys if k in self.arrays}

    def texts(self, rows) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(np.asarray(rows))
        return {k: self.arrays[k][rows] for k in ("sentence", "words", "text_mask")}


def _encode(model, cfg: Config, device, captions: Sequence[str], video_ids: Sequence[str],
            source: ProbeVideos, features: Optional[ProbeFeatures] = None) -> torch.Tensor:
    """Score matrix [captions, videos] with the model's own similarity (raw tokens and frames, or
    the precomputed backbone outputs in ``features``)."""
    from glscl_lite.data.msrvtt import Caption
    from glscl_lite.encode import encode_texts, encode_videos

    text = encode_texts(model, [Caption(v, c) for v, c in zip(video_ids, captions)], cfg, device, features)
    video = encode_videos(model, list(dict.fromkeys(video_ids)), cfg, device, source=source, features=features)
    return model.similarity(text, video, chunk=cfg.eval_chunk).float().cpu()


def _score_pairs(model, cfg, device, rows: list[dict[str, str]], source: ProbeVideos,
                 features: Optional[ProbeFeatures] = None, details: bool = False) -> dict[str, Any]:
    if len(rows) % 2:
        raise DataError("probe pairs: odd number of rows")
    sim = _encode(model, cfg, device, [r["sentence"] for r in rows], [r["video_id"] for r in rows], source,
                  features)
    p = len(rows) // 2
    idx = torch.arange(p)
    pairs = torch.stack([torch.stack([sim[2 * idx, 2 * idx], sim[2 * idx, 2 * idx + 1]], -1),
                         torch.stack([sim[2 * idx + 1, 2 * idx], sim[2 * idx + 1, 2 * idx + 1]], -1)], 1)
    out = {**pair_accuracy(pairs), "n_pairs": p, "chance": 50.0}
    if details:
        t2v, v2t = pair_wins(pairs)
        out.update(t2v_per_pair=t2v.tolist(), v2t_per_pair=v2t.tolist())
    return out


@torch.no_grad()
def score_probes(model, cfg: Config, device, corpus_dir=None, names: Sequence[str] = PROBE_NAMES,
                 order_twin: str = "reverse", features: Optional[ProbeFeatures] = None,
                 details: bool = False) -> dict[str, dict[str, Any]]:
    """``{"moment": {...}, "order": {...}, "binding": {...}}`` for a model (eval mode) on the probes of
    the synthetic corpus at ``corpus_dir`` (default ``cfg.anno_path``).  Texts and videos are encoded
    from raw tokens and decoded frames (probe items are in no cache), or read from ``features``
    (:meth:`ProbeFeatures.build`, once per frozen backbone).  ``order_twin``: ``reverse`` (the twin's
    input is the base clip reversed, exact) or ``file`` (decode the ``_b`` mp4; not with features).
    ``details`` adds per-item outcomes for paired bootstraps: ``ranks`` (0-based rank of each moment /
    full query's video, equal scores ranked optimistically) and ``t2v_per_pair`` / ``v2t_per_pair``
    (:func:`pair_wins`), in CSV order."""
    from glscl_lite.metrics import ranks_from_scores
    from glscl_lite.metrics import retrieval_metrics

    corpus = Path(corpus_dir if corpus_dir is not None else cfg.anno_path)
    if features is not None:
        features.check(model)
        if order_twin != "reverse":
            raise ValueError("probe features hold the reversed twin; use order_twin='reverse' with them")
    was_training = model.training
    model.eval()
    out: dict[str, dict[str, Any]] = {}
    size = model.backbone.image_size
    plain = ProbeVideos(corpus / "videos", cfg.max_frames, size, cfg.video_framerate)
    for name in names:
        rows = read_probe_csv(corpus, name)
        if name == "moment":
            oracle = load_oracle(corpus).get("moment", {})
            result: dict[str, Any] = {}
            for kind in ("moment", "full"):
                sel = [r for r in rows if r["kind"] == kind]
                sim = _encode(model, cfg, device, [r["sentence"] for r in sel], [r["video_id"] for r in sel], plain,
                              features)
                result[kind] = {k: round(float(v), 3) for k, v in retrieval_metrics(sim).items()}
                if details:
                    result[kind]["ranks"] = ranks_from_scores(sim, np.arange(len(sel)), "optimistic").tolist()
                if kind in oracle:
                    result[kind]["oracle"] = {k: oracle[kind][k] for k in ("R1", "R5", "R10")}
            result["n_videos"] = len({r["video_id"] for r in rows})
            out[name] = result
        elif name in ("order", "binding"):
            source = plain
            if name == "order" and order_twin == "reverse":
                source = ProbeVideos(corpus / "videos", cfg.max_frames, size, cfg.video_framerate,
                                     reverse_of={rows[i + 1]["video_id"]: rows[i]["video_id"]
                                                 for i in range(0, len(rows) - 1, 2)})
            elif name == "order" and order_twin != "file":
                raise ValueError(f"order_twin must be 'reverse' or 'file', got {order_twin!r}")
            out[name] = _score_pairs(model, cfg, device, rows, source, features, details)
            if name == "order":
                out[name]["twin"] = order_twin
        else:
            raise ValueError(f"unknown probe {name!r}; probes are {', '.join(PROBE_NAMES)}")
    model.train(was_training)
    return out


def test_oracle(corpus_dir, captions) -> dict[str, Any]:
    """Oracle recall for ``captions`` (objects with ``video_id`` and ``caption``, e.g. a run's test
    captions) from ``probes/oracle.json``; ``n_matched`` of them are in the oracle (the JSFUSION
    list); others are left out and counted in ``n_unmatched``."""
    oracle = load_oracle(corpus_dir)["test"]
    n_true = {(c["video_id"], c["sentence"]): c["n_true"] for c in oracle["captions"]}
    found = [n_true[(c.video_id, c.caption)] for c in captions if (c.video_id, c.caption) in n_true]
    if not found:
        return {"n_matched": 0, "n_unmatched": len(captions),
                "note": "the oracle covers the JSFUSION test captions only"}
    return {**oracle_recall(found), "n_matched": len(found), "n_unmatched": len(captions) - len(found)}


test_oracle.__test__ = False  # not a pytest test despite the name


def format_probes(result: dict[str, Any]) -> str:
    """Human-readable lines: R@1 beside its oracle, then each probe."""
    lines = []
    oracle = result.get("oracle")
    if oracle and "R1" in oracle and "t2v" in result:
        lines.append(f"test t2v R@1 {result['t2v']['R1']:.1f} (oracle {oracle['R1']:.1f}; "
                     f"captions true of {oracle['mean_n_true']:.2f} test videos on average)")
    for name, p in result.get("probes", {}).items():
        if name == "moment":
            m, f = p["moment"], p["full"]
            lines.append(f"moment: R@1 {m['R1']:.1f} (oracle {m.get('oracle', {}).get('R1', float('nan')):.1f}) "
                         f"vs whole-clip captions R@1 {f['R1']:.1f} (oracle "
                         f"{f.get('oracle', {}).get('R1', float('nan')):.1f}) over {p['n_videos']} videos")
        else:
            lines.append(f"{name}: pairwise accuracy {p['acc']:.1f} % (t2v {p['t2v']:.1f}, v2t {p['v2t']:.1f}; "
                         f"chance 50) on {p['n_pairs']} pairs")
    return "\n".join(lines)
