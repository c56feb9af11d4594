"""Retrieval metrics, spec/glscl.md section 8.

For every query row, the rank ``r`` (0-based) of its ground-truth item in the row sorted by
descending score; R@K = % of queries with ``r < K``; MdR = median(r) + 1; MnR = mean(r) + 1.

Ties.  The official ``compute_metrics`` finds the rank by value equality with the sorted row
(``np.where(sorted - gt == 0)``): when the ground truth ties with k other items, that row
contributes k+1 entries (ranks g, g+1, ..., g+k) and the denominator grows with it.  That is
reproduced by default (``ties="official"``) so numbers match the released code exactly;
``"optimistic"`` (rank = number of strictly higher scores) and ``"pessimistic"`` count one
entry per query.  Without ties all three agree.

Several captions per video and unequal numbers of texts and videos are handled by
:func:`evaluate_retrieval`, which takes the ground truth as an explicit text -> video index (so
nothing assumes that text i belongs to video i).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

METRIC_KEYS = ("R1", "R5", "R10", "MdR", "MnR")


def _as_float32(sim) -> torch.Tensor:
    """The official code ranks ``torch.Tensor(x)``, i.e. in float32."""
    return torch.as_tensor(np.asarray(sim) if not torch.is_tensor(sim) else sim).detach().float().cpu()


def ranks_from_scores(sim, gt_index: Sequence[int], ties: str = "official") -> np.ndarray:
    """0-based ranks of ``sim[i, gt_index[i]]`` in row i (one or more entries per row, see ties)."""
    x = _as_float32(sim)
    gt = torch.as_tensor(np.asarray(gt_index), dtype=torch.long)
    if x.dim() != 2 or gt.shape[0] != x.shape[0]:
        raise ValueError(f"need a 2-D score matrix and one ground-truth index per row, got "
                         f"{tuple(x.shape)} and {tuple(gt.shape)}")
    d = x.gather(1, gt[:, None])
    if torch.isnan(x).any():
        raise ValueError("score matrix contains NaN")
    greater = (x > d).sum(1)
    equal = (x == d).sum(1)  # >= 1 (the ground truth itself)
    if ties == "optimistic":
        return greater.numpy()
    if ties == "pessimistic":
        return (greater + equal - 1).numpy()
    if ties == "official":
        return np.concatenate([np.arange(g, g + e) for g, e in zip(greater.tolist(), equal.tolist())])
    raise ValueError(f"ties must be 'official', 'optimistic' or 'pessimistic', got {ties!r}")


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    ranks = np.asarray(ranks)
    return {
        "R1": float(np.sum(ranks < 1)) * 100 / len(ranks),
        "R5": float(np.sum(ranks < 5)) * 100 / len(ranks),
        "R10": float(np.sum(ranks < 10)) * 100 / len(ranks),
        "MdR": float(np.median(ranks)) + 1,
        "MnR": float(np.mean(ranks)) + 1,
    }


def retrieval_metrics(sim, ties: str = "official") -> dict[str, float]:
    """R1/R5/R10 (percent), MdR, MnR for ``sim [Nt,Nv]`` (rows = queries, the ground truth of row i
    in column i, so ``Nt <= Nv``; the official ``compute_metrics`` reads ``np.diag`` the same way)."""
    x = _as_float32(sim)
    if x.dim() != 2 or x.shape[0] > x.shape[1]:
        raise ValueError(f"retrieval_metrics needs [Nt,Nv] with Nt <= Nv and the ground truth of row i in "
                         f"column i, got {tuple(x.shape)}; use evaluate_retrieval for other layouts")
    return metrics_from_ranks(ranks_from_scores(x, np.arange(x.shape[0]), ties))


def dual_softmax(sim: torch.Tensor, temperature: float = 100.0) -> torch.Tensor:
    """DSL re-scoring for text->video rows: ``sim * softmax(temperature*sim over the texts)``.

    Post-processing that looks at all queries at once (CAMoE); off by default, always reported
    beside the raw numbers.  For video->text apply it to ``sim.T``.
    """
    sim = torch.as_tensor(sim).float()
    return sim * torch.softmax(sim * temperature, dim=0)


def evaluate_retrieval(sim, text_video: Sequence[int], ties: str = "official",
                       dsl: bool = False) -> dict[str, dict[str, float]]:
    """Metrics both ways for ``sim [Nt,Nv]`` with ``text_video[i]`` = index of text i's video.

    t2v: each text ranks all videos.  v2t: each video that has at least one caption ranks all
    texts; its rank is that of its best-ranked caption (with one caption per video this is the
    usual transpose).  With ``dsl=True`` the DSL numbers are added under ``t2v_dsl``/``v2t_dsl``.
    """
    x = _as_float32(sim)
    tv = np.asarray(text_video, dtype=np.int64)
    nt, nv = x.shape
    if tv.shape != (nt,) or (tv < 0).any() or (tv >= nv).any():
        raise ValueError(f"text_video must give a video index in [0, {nv}) for each of the {nt} texts")
    out = {"t2v": metrics_from_ranks(ranks_from_scores(x, tv, ties)),
           "v2t": metrics_from_ranks(_v2t_ranks(x, tv, ties))}
    if dsl:
        out["t2v_dsl"] = metrics_from_ranks(ranks_from_scores(dual_softmax(x), tv, ties))
        out["v2t_dsl"] = metrics_from_ranks(_v2t_ranks(dual_softmax(x.T).T, tv, ties))
    return out


def query_ranks(sim, text_video: Sequence[int], ties: str = "optimistic") -> tuple[np.ndarray, np.ndarray]:
    """0-based rank of every query both ways: ``(t2v [Nt], v2t [Nv'])`` (``ties`` optimistic or
    pessimistic: one rank per query, for per-query statistics such as a bootstrap)."""
    if ties not in ("optimistic", "pessimistic"):
        raise ValueError(f"query_ranks gives one rank per query: ties must be optimistic or pessimistic, got {ties!r}")
    x = _as_float32(sim)
    tv = np.asarray(text_video, dtype=np.int64)
    return ranks_from_scores(x, tv, ties), _v2t_ranks(x, tv, ties)


def _v2t_ranks(x: torch.Tensor, tv: np.ndarray, ties: str) -> np.ndarray:
    nt, nv = x.shape
    videos = np.unique(tv)
    if len(videos) == nt and nt == nv and (tv == np.arange(nt)).all():
        return ranks_from_scores(x.T, np.arange(nv), ties)  # the square single-caption case
    xt = x.T[torch.as_tensor(videos)]                       # [Nv', Nt]
    ranks = []
    gt_mask = torch.as_tensor(tv)[None, :] == torch.as_tensor(videos)[:, None]
    best = torch.where(gt_mask, xt, torch.full_like(xt, -torch.inf)).max(1).values
    greater = (xt > best[:, None]).sum(1)
    equal_other = ((xt == best[:, None]) & ~gt_mask).sum(1)  # ties with wrong captions
    for g, e in zip(greater.tolist(), equal_other.tolist()):
        if ties == "optimistic" or e == 0:
            ranks.append([g])
        elif ties == "pessimistic":
            ranks.append([g + e])
        else:
            ranks.append(list(range(g, g + e + 1)))
    return np.concatenate([np.asarray(r) for r in ranks])

