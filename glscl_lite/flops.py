"""FLOPs and latency of GLSCL and every head: per component, per pair, against gallery size.

How counts are made (units, fvcore's traps and the cross-check) is :mod:`glscl_lite.counting`;
figures of the reports are in :mod:`glscl_lite.plots` (``plot_gallery_costs``, ``plot_latency``,
``plot_figure1``).

What is counted (``profile``): per-item components (image tower per frame, text tower per
caption, temporal transformer per video, LIM per video / per text) and per-pair costs.  A pair
cost is fitted from counts at 1x1, 2x1, 1x2 and 2x2 (texts x videos) as
``cost(Bt,Bv) = Bt*per_text + Bv*per_video + Bt*Bv*per_pair``, so the part that scales with the
number of pairs is separated from per-item work that a scoring call happens to recompute
(X-Pool's key/value projections; GLSCL caches its per-video frame Gram matrix in the video side).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from glscl_lite.config import Config, load_preset
from glscl_lite.model import registry
# the general counting rules and timing (importable from here as before)
from glscl_lite.counting import (  # noqa: F401
    ATTENTION_HANDLES, NORM_OPS, Count, _EvalMode, _Traced, _cpu_sdpa_flops, _shape, count, counting_modes, einsum_macs_jit, fit_pair_costs, fvcore_count, native_mha_macs_jit, sdpa_macs_jit, time_call, torch_flop_count, torch_threads,
)

# the heads of the paper's comparison and the related methods, as registered when this module loaded
# (glscl_lite.model.registry; functions read the registry again when called, so later additions count)
HEAD_NAMES = registry.paper_heads()
RELATED_HEADS = registry.related_heads()

# Paper Table I (MSR-VTT 1k-A, ViT-B/32, no QB-Norm; spec/glscl.md 10.1): t2v R@1 and "FLOPs of
# the similarity calculation head" in GFLOPs.  The accounting behind them is not published.
PAPER_TABLE1_B32 = {
    "CLIP4Clip": {"r1": 44.5, "gflops": 0.5},
    "CenterCLIP": {"r1": 44.2, "gflops": 1.5},
    "X-CLIP": {"r1": 46.1, "gflops": 220.9},
    "TS2-Net": {"r1": 47.0, "gflops": 6.1},
    "X-Pool": {"r1": 46.9, "gflops": 275.0},
    "CLIP-VIP": {"r1": 46.5, "gflops": 0.5},
    "DiCoSA": {"r1": 46.7, "gflops": 0.51},
    "Prompt Switch": {"r1": 47.8, "gflops": 298.5},
    "GLSCL": {"r1": 48.1, "gflops": 1.0},
}
PAPER_METHOD = {"glscl": "GLSCL", "meanp": "CLIP4Clip", "xpool_like": "X-Pool", "xclip_like": "X-CLIP"}
PAPER_ACCOUNTING_NOTE = (
    "Paper Table I: 'we only test the FLOPs of the similarity calculation head'; the tool and the unit "
    "are not stated.  The official repo holds a commented-out thop.profile call, and thop does not see "
    "inside nn.MultiheadAttention (it reports 0.20 G MACs for what fvcore/FlopCounterMode count as 0.80 "
    "GFLOPs, spec 13).  Ratios below compare our counts with the paper's numbers as printed; they are "
    "not expected to match digit for digit."
)


# ------------------------------------------------------------------------------------ the model
def profile_config(backbone: str = "ViT-B-32-quickgelu", frames: int = 12, words: int = 32,
                   cfg: Optional[Config] = None) -> Config:
    """The config profiled: ``cfg`` (default: ``smoke`` preset for ``glscl-tiny``, else the paper
    defaults) with random weights, ``backbone``, ``frames`` and ``words``."""
    from glscl_lite.model.backbone import TINY

    base = cfg or (load_preset("smoke") if backbone == TINY else Config())
    return base.replace(base_encoder=backbone, pretrained=None, max_frames=frames, max_words=words, head="glscl")


def caption_ids(length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One full-length caption: SOT, random tokens, EOT (``[1,L]`` ids and an all-ones mask)."""
    ids = torch.randint(1, 49000, (1, length), generator=generator)
    ids[0, 0], ids[0, -1] = 49406, 49407
    return ids, torch.ones(1, length, dtype=torch.long)


@dataclass
class ProfileInputs:
    """Random inputs of the profiled sizes (two items per side, for the pair fits)."""

    images: torch.Tensor      # [1,3,S,S]
    ids: torch.Tensor         # [1,L]
    ids_mask: torch.Tensor    # [1,L]
    sentence: torch.Tensor    # [2,D]
    words: torch.Tensor       # [2,L,D]
    text_mask: torch.Tensor   # [2,L]
    frames: torch.Tensor      # [2,T,D]
    frame_mask: torch.Tensor  # [2,T]
    patches: torch.Tensor     # [2,T,P,D] patch tokens (EERCF's weak patch score)

    @classmethod
    def make(cls, dim: int, frames: int, words: int, image_size: int, device: torch.device,
             seed: int = 0, patches: int = 49) -> "ProfileInputs":
        """Inputs for width ``dim``; ``image_size`` only sizes the image-tower input; ``patches``
        tokens per frame (49 for ViT-B/32 at 224 px)."""
        g = torch.Generator().manual_seed(seed)
        ids, ids_mask = caption_ids(words, g)
        t = {
            "images": torch.randn(1, 3, image_size, image_size, generator=g), "ids": ids, "ids_mask": ids_mask,
            "sentence": torch.randn(2, dim, generator=g), "words": torch.randn(2, words, dim, generator=g),
            "text_mask": torch.ones(2, words, dtype=torch.long), "frames": torch.randn(2, frames, dim, generator=g),
            "frame_mask": torch.ones(2, frames, dtype=torch.long),
            "patches": torch.randn(2, frames, patches, dim, generator=g),
        }
        return cls(**{k: v.to(device) for k, v in t.items()})


def encode_video_for(head: nn.Module, frames: torch.Tensor, mask: torch.Tensor,
                     patches: torch.Tensor) -> dict[str, torch.Tensor]:
    """``head.encode_video`` with what the head reads: EERCF also takes the raw CLIP frames (here
    the same tensor) and patch tokens."""
    if head.uses_raw_frames:
        return head.encode_video(frames, mask, raw_frames=frames,
                                 patches=patches[:len(frames)] if head.uses_patches else None)
    return head.encode_video(frames, mask)


def _side_floats(side: dict[str, torch.Tensor]) -> int:
    """Numbers stored per item in a side (first dimension = items)."""
    return sum(v[0].numel() for v in side.values())


def profile_head(head: nn.Module, x: ProfileInputs, cross_check: bool = True) -> dict[str, Any]:
    """Per-item and per-pair MACs of a similarity head from CLIP features (temporal excluded).

    ``macs``/``flops`` are the per-pair part (grows with texts x videos); ``encode_*_macs`` are
    the per-item encoders (cacheable); ``score_per_text_macs`` / ``score_per_video_macs`` are
    per-item work that ``score`` recomputes on each call.
    """
    enc_t = count(lambda s, w, m: head.encode_text(s, w, m), (x.sentence[:1], x.words[:1], x.text_mask[:1]),
                  [head], cross_check=False)
    enc_v = count(lambda f, m, p: encode_video_for(head, f, m, p), (x.frames[:1], x.frame_mask[:1], x.patches[:1]),
                  [head], cross_check=False)
    with _EvalMode([head]), torch.no_grad():
        text = head.encode_text(x.sentence, x.words, x.text_mask)
        video = encode_video_for(head, x.frames, x.frame_mask, x.patches)
    tkeys, vkeys = list(text), list(video)

    def score(*tensors: torch.Tensor) -> torch.Tensor:
        return head.score(dict(zip(tkeys, tensors[:len(tkeys)])), dict(zip(vkeys, tensors[len(tkeys):])))

    costs, one = {}, None
    for nt, nv in ((1, 1), (2, 1), (1, 2), (2, 2)):
        args = [text[k][:nt] for k in tkeys] + [video[k][:nv] for k in vkeys]
        c = count(score, args, [head], cross_check=cross_check and (nt, nv) == (1, 1))
        costs[(nt, nv)] = c.macs
        one = c if (nt, nv) == (1, 1) else one
    fit = fit_pair_costs(costs)
    return {
        "macs": fit["per_pair"], "flops": 2 * fit["per_pair"],
        "score_per_text_macs": fit["per_text"], "score_per_video_macs": fit["per_video"],
        "score_constant_macs": fit["constant"],
        "encode_text_macs": enc_t.macs, "encode_video_macs": enc_v.macs,
        "one_pair_macs": enc_t.macs + enc_v.macs + costs[(1, 1)],
        "cached_floats_per_text": _side_floats(text), "cached_floats_per_video": _side_floats(video),
        "params": sum(p.numel() for p in head.parameters()),
        "unsupported_ops": dict(Counter(one.unsupported_ops) + Counter(enc_t.unsupported_ops)
                                + Counter(enc_v.unsupported_ops)),
        "cross_check_one_pair_score": one.cross_check(),
    }


def _entry(c: Count, latency: Optional[dict[str, float]] = None, **extra: Any) -> dict[str, Any]:
    out = {"macs": c.macs, "flops": c.flops, **extra, "by_operator": c.by_operator,
           "unsupported_ops": c.unsupported_ops, "cross_check": c.cross_check()}
    if latency is not None:
        out["latency_ms"], out["latency_cpu_ms"] = 1e3 * latency["wall_s"], 1e3 * latency["cpu_s"]
    return out


def profile(backbone: str = "ViT-B-32-quickgelu", frames: int = 12, words: int = 32, device: str = "cpu",
            cfg: Optional[Config] = None, heads: Optional[Sequence[str]] = None,
            gallery_sizes: Sequence[int] = (1000, 10000, 100000), latency: bool = True,
            repeats: int = 3, threads: Optional[int] = None, seed: int = 0,
            progress: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """FLOPs (fvcore MACs, FLOPs = 2 MACs), cross-checks and CPU/GPU latency of every component.

    Returns the ``glscl-lite profile`` JSON object (design.md): ``components`` and ``per_pair``
    (one entry per head in ``heads``), plus ``dims``, ``counting_modes`` (the no_grad / SDPA
    traps on the image tower), ``gallery`` (:func:`gallery_costs`), ``paper`` and ``ratios``.
    Weights are random (FLOPs and latency do not depend on them).  Latency is the median of
    ``repeats`` inference-mode calls with ``threads`` intra-op threads (None: torch's default).
    """
    heads = tuple(heads) if heads is not None else registry.paper_heads() + registry.related_heads()
    with torch_threads(threads):
        report = _profile(backbone, frames, words, device, cfg, heads, gallery_sizes, latency, repeats, seed,
                          progress)
    if latency:
        report["latency_setup"] = {"threads": threads or torch.get_num_threads(), "repeats": repeats,
                                   "statistic": "median", "load_average": _load_average()}
    return report


def _load_average() -> Optional[list[float]]:
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _profile(backbone: str, frames: int, words: int, device: str, cfg: Optional[Config], heads: Sequence[str],
             gallery_sizes: Sequence[int], latency: bool, repeats: int, seed: int,
             progress: Optional[Callable[[str], None]]) -> dict[str, Any]:
    from glscl_lite.model import RetrievalModel, build_head

    say = progress or (lambda msg: None)
    dev = torch.device(device)
    pcfg = profile_config(backbone, frames, words, cfg)
    torch.manual_seed(seed)
    say(f"building {backbone} (random weights)")
    model = RetrievalModel(pcfg).to(dev)
    bb, head = model.backbone, model.head
    dim = bb.embed_dim
    grid = bb.clip.visual.grid_size
    x = ProfileInputs.make(dim, frames, words, bb.image_size, dev, seed, patches=int(grid[0] * grid[1]))
    calls: dict[str, tuple[Callable[..., Any], tuple[torch.Tensor, ...], list[nn.Module]]] = {
        "image_tower_per_frame": (lambda im: bb.encode_frames(im), (x.images,), [bb]),
        "text_tower_per_caption": (lambda i, m: bb.encode_text(i, m), (x.ids, x.ids_mask), [bb]),
        "temporal_per_video": (lambda f, m: model.temporal_features(f, m), (x.frames[:1], x.frame_mask[:1]),
                               [model]),
        "lim_per_video": (lambda f, m: head.lim.encode_video(f, m), (x.frames[:1], x.frame_mask[:1]), [head]),
        "lim_per_text": (lambda w, m: head.lim.encode_text(w, m), (x.words[:1], x.text_mask[:1]), [head]),
    }
    components: dict[str, Any] = {}
    for name, (fn, args, mods) in calls.items():
        say(f"counting {name}")
        with _EvalMode(mods):
            lat = time_call(fn, args, repeats) if latency else None
        components[name] = _entry(count(fn, args, mods), lat)
    components["image_tower_per_video"] = {
        "macs": frames * components["image_tower_per_frame"]["macs"],
        "flops": frames * components["image_tower_per_frame"]["flops"], "note": f"{frames} x image_tower_per_frame"}

    # the GLSCL per-pair parts, each fitted over 1x1 .. 2x2 pairs
    with _EvalMode([head]), torch.no_grad():
        tc, vc = head.lim.encode_text(x.words, x.text_mask), head.lim.encode_video(x.frames, x.frame_mask)
    pair_calls = {
        "gim_per_pair": (lambda s, f, m: head.gim(s, f, m), lambda nt, nv: (x.sentence[:nt], x.frames[:nv],
                                                                             x.frame_mask[:nv])),
        "local_score_per_pair": (lambda t, v: head.lim.similarity(t, v), lambda nt, nv: (tc[:nt], vc[:nv])),
    }
    for name, (fn, make_args) in pair_calls.items():
        say(f"counting {name}")
        one = count(fn, make_args(1, 1), [head])
        costs = {(nt, nv): count(fn, make_args(nt, nv), [head], cross_check=False).macs
                 for nt, nv in ((2, 1), (1, 2), (2, 2))}
        costs[(1, 1)] = one.macs
        fit = fit_pair_costs(costs)
        components[name] = _entry(one, None, per_video_macs=fit["per_video"], per_text_macs=fit["per_text"],
                                  one_pair_macs=one.macs)
        components[name].update(macs=fit["per_pair"], flops=2 * fit["per_pair"])

    per_pair: dict[str, Any] = {}
    temporal = components["temporal_per_video"]["macs"]
    for name in heads:
        say(f"counting head {name}")
        h = head if name == "glscl" else build_head(pcfg.replace(head=name), dim).to(dev)
        entry = profile_head(h, x)
        entry["after_clip_one_pair_macs"] = temporal + entry["one_pair_macs"]
        entry["after_clip_one_pair_flops"] = 2 * entry["after_clip_one_pair_macs"]
        if name == "eercf":  # real two-stage retrieval: coarse <s W_g, v> on all videos, fine on the top k
            entry["two_stage"] = {"coarse_macs_per_video": dim, "candidates": pcfg.eercf_topk,
                                  "note": "macs = the fused fine score of one pair (stage 2)"}
        if latency and not h.uses_raw_frames:
            entry["latency"] = query_latency(h, x, sizes=(1000,), repeats=repeats)[0]
        per_pair[name] = entry
    if "glscl" in per_pair:
        g = per_pair["glscl"]
        macs = temporal + g["one_pair_macs"]  # both item encoders (LIMs, GIM frame Gram) + the pair score
        components["after_clip_per_pair"] = {
            "macs": macs, "flops": 2 * macs,
            "note": "temporal + LIM(video) + LIM(text) + GIM and local score of one isolated pair: the "
                    "accounting closest to the paper's 1.0G (spec 13: 0.80 GFLOPs for ViT-B/32)"}

    say("counting modes (no_grad / attention handles) on the image tower")
    fn, args, mods = calls["image_tower_per_frame"]
    report: dict[str, Any] = {
        "backbone": backbone, "device": str(dev),
        "dims": {"embed_dim": dim, "frames": frames, "words": words, "image_size": bb.image_size,
                 "query_number": pcfg.query_number, "lim_layers": pcfg.cross_att_layer,
                 "temporal_layers": pcfg.num_hidden_layers},
        "units": "macs: multiply-accumulates as counted by fvcore (fvcore calls them flops); flops = 2 * macs",
        "counter": "fvcore FlopCountAnalysis, eval mode, autograd enabled, handles for "
                   + ", ".join(ATTENTION_HANDLES) + " and an exact two-operand aten::einsum; cross-check: "
                   "torch.utils.flop_counter.FlopCounterMode with a formula for the CPU SDPA kernel",
        "components": components,
        "per_pair": per_pair,
        "counting_modes": {"image_tower_per_frame": counting_modes(fn, args, mods)},
    }
    report["gallery"] = gallery_costs(report, gallery_sizes)
    report["paper"] = {"table1_b32": PAPER_TABLE1_B32, "note": PAPER_ACCOUNTING_NOTE}
    report["ratios"] = ratios(report)
    return report


# ----------------------------------------------------------------------------- gallery & latency
def gallery_costs(report: dict[str, Any], sizes: Sequence[int] = (1000, 10000, 100000)) -> list[dict[str, Any]]:
    """Cost of one text query against a gallery of ``n`` videos, per head and size (MACs).

    * ``query_macs``: what runs per query as implemented -- text tower, the head's text encoder and
      per-text score work, and for every gallery video the per-pair part plus the per-video work
      ``score`` recomputes (X-Pool-like: key/value projections; GLSCL recomputes none).
    * ``query_macs_video_terms_cached``: the same if that per-video score work were cached too.
    * ``offline_macs``: encoding the gallery once (image tower x frames, temporal, head video encoder).
    * ``cached_floats_per_video``: what the gallery stores per video.
    """
    comps, dims = report["components"], report["dims"]
    text_tower = comps["text_tower_per_caption"]["macs"]
    per_video_backbone = dims["frames"] * comps["image_tower_per_frame"]["macs"] + comps["temporal_per_video"]["macs"]
    rows = []
    for name, e in report["per_pair"].items():
        per_text = e["encode_text_macs"] + e["score_per_text_macs"] + e["score_constant_macs"]
        for n in sizes:
            n = int(n)
            q = text_tower + per_text + n * (e["macs"] + e["score_per_video_macs"])
            if "two_stage" in e:  # EERCF: N coarse inner products, then the fine score on k candidates
                ts = e["two_stage"]
                q = text_tower + per_text + n * ts["coarse_macs_per_video"] + min(n, ts["candidates"]) * e["macs"]
            rows.append({
                "head": name, "gallery": n, "query_macs": q, "query_flops": 2 * q,
                "head_query_macs": q - text_tower,
                "query_macs_video_terms_cached": text_tower + per_text + n * e["macs"],
                "offline_macs": n * (per_video_backbone + e["encode_video_macs"]),
                "cached_floats_per_video": e["cached_floats_per_video"],
            })
    return rows


def _tile(side: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """Repeat a side's items along dim 0 up to ``n`` items (timing does not depend on the values)."""
    reps = -(-n // len(next(iter(side.values()))))
    return {k: v.repeat(reps, *([1] * (v.dim() - 1)))[:n] for k, v in side.items()}


def query_latency(head: nn.Module, x: ProfileInputs, sizes: Sequence[int] = (1000, 10000),
                  repeats: int = 3, max_gallery_bytes: int = 1 << 30, base_videos: int = 64) -> list[dict[str, Any]]:
    """Time of one text query against galleries of ``sizes`` videos (the head's online work).

    The gallery is the video side of ``base_videos`` random videos tiled to size (computed once,
    i.e. cached, as in deployment).  Timed per query: ``encode_text`` of the query + ``score``
    against the whole gallery (median ``seconds`` wall-clock and ``cpu_seconds`` of this process).
    A size whose cached side would exceed ``max_gallery_bytes`` is extrapolated linearly from the
    two largest measured sizes (``extrapolated: true``).
    """
    dev = x.frames.device
    g = torch.Generator().manual_seed(1)
    T, D = x.frames.shape[1:]
    frames = torch.randn(base_videos, T, D, generator=g).to(dev)
    mask = torch.ones(base_videos, T, dtype=torch.long, device=dev)
    # EERCF also reads the raw frames and patch tokens (encode_video_for); other heads ignore them
    patches = torch.randn(base_videos, *x.patches.shape[1:], generator=g).to(dev) if head.uses_patches else None
    with _EvalMode([head]):
        offline = time_call(lambda f, m: encode_video_for(head, f, m, patches), (frames, mask), repeats=1)
        with torch.inference_mode():
            base = encode_video_for(head, frames, mask, patches)
    bytes_per_video = sum(v[0].numel() * v.element_size() for v in base.values())
    rows, measured = [], []
    for n in sizes:
        if n * bytes_per_video > max_gallery_bytes:
            continue
        gallery = _tile(base, n)
        with _EvalMode([head]):
            t = time_call(lambda s, w, m, g=gallery: head.score(head.encode_text(s, w, m), g),
                          (x.sentence[:1], x.words[:1], x.text_mask[:1]), repeats=repeats)
        measured.append((n, t["wall_s"], t["cpu_s"]))
        rows.append({"gallery": n, "seconds": t["wall_s"], "cpu_seconds": t["cpu_s"], "extrapolated": False})
        del gallery
    for n in sizes:
        if n * bytes_per_video > max_gallery_bytes:
            if len(measured) < 2:
                raise ValueError(f"a gallery of {n} videos needs {n * bytes_per_video / 2**30:.1f} GiB; "
                                 "measure at least two smaller sizes to extrapolate from")
            (n1, w1, c1), (n2, w2, c2) = sorted(measured)[-2:]
            rows.append({"gallery": n, "seconds": w2 + (w2 - w1) / (n2 - n1) * (n - n2),
                         "cpu_seconds": c2 + (c2 - c1) / (n2 - n1) * (n - n2), "extrapolated": True})
    for r in rows:
        r.update(offline_seconds_per_video=offline["wall_s"] / base_videos, cached_bytes_per_video=bytes_per_video)
    return sorted(rows, key=lambda r: r["gallery"])


def head_latency(cfg: Config, dim: int, heads: Optional[Sequence[str]] = None, sizes: Sequence[int] = (1000, 10000),
                 repeats: int = 3, device: str = "cpu", max_gallery_bytes: int = 1 << 30,
                 seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """:func:`query_latency` of each head in ``heads``, built from ``cfg`` at feature width ``dim``
    (no CLIP needed: the heads read post-temporal features ``[*,T,dim]``)."""
    from glscl_lite.model import build_head

    dev = torch.device(device)
    x = ProfileInputs.make(dim, cfg.max_frames, cfg.max_words, image_size=1, device=dev, seed=seed)
    out = {}
    for name in (heads if heads is not None else registry.paper_heads()):
        torch.manual_seed(seed)
        head = build_head(cfg.replace(head=name), dim).to(dev)
        out[name] = query_latency(head, x, sizes, repeats, max_gallery_bytes)
    return out


# ---------------------------------------------------------------------------------------- ratios
def ratios(report: dict[str, Any]) -> dict[str, Any]:
    """Our head FLOPs vs GLSCL's and vs the paper's (all computed from ``report``)."""
    pp = report["per_pair"]
    out: dict[str, Any] = {"paper_vs_glscl": {
        m: PAPER_TABLE1_B32[m]["gflops"] / PAPER_TABLE1_B32["GLSCL"]["gflops"] for m in PAPER_METHOD.values()}}
    if "glscl" not in pp:
        return out
    g = pp["glscl"]
    out["ours_per_pair_vs_glscl"] = {h: e["macs"] / g["macs"] for h, e in pp.items()}
    out["ours_after_clip_one_pair_vs_glscl"] = {
        h: e["after_clip_one_pair_macs"] / g["after_clip_one_pair_macs"] for h, e in pp.items()}
    by_size: dict[int, dict[str, int]] = {}
    for r in report.get("gallery", []):
        by_size.setdefault(r["gallery"], {})[r["head"]] = r["head_query_macs"]
    out["ours_head_per_query_vs_glscl"] = {
        str(n): {h: v / d["glscl"] for h, v in d.items()} for n, d in by_size.items() if "glscl" in d}
    out["ours_after_clip_one_pair_gflops"] = {h: e["after_clip_one_pair_flops"] / 1e9 for h, e in pp.items()}
    out["ours_after_clip_one_pair_vs_paper"] = {
        h: e["after_clip_one_pair_flops"] / 1e9 / PAPER_TABLE1_B32[PAPER_METHOD[h]]["gflops"]
        for h, e in pp.items() if h in PAPER_METHOD}
    if "after_clip_per_pair" in report["components"]:
        out["glscl_after_clip_gflops_vs_paper_1.0G"] = (report["components"]["after_clip_per_pair"]["flops"] / 1e9
                                                        / PAPER_TABLE1_B32["GLSCL"]["gflops"])
    return out


# ------------------------------------------------------------------------------------- reporting
def component_table(report: dict[str, Any]):
    """The components and heads as a pandas DataFrame.

    ``MACs``/``FLOPs`` are per item, or for ``*_per_pair`` rows the per-pair part.  The two
    ``checked call`` columns compare fvcore and FlopCounterMode on the same call (one item, or
    one 1x1 pair including its per-item work), both in FLOPs; fvcore also counts LayerNorms.
    """
    import pandas as pd

    rows = []
    for name, e in report["components"].items():
        cc = e.get("cross_check", {})
        rows.append({"part": name, "MACs (fvcore)": e["macs"], "FLOPs (2 MACs)": e["flops"],
                     "checked call: fvcore FLOPs": cc.get("fvcore_flops"),
                     "checked call: FlopCounterMode FLOPs": cc.get("torch_flops"),
                     "FlopCounterMode without CPU SDPA": cc.get("torch_flops_without_cpu_sdpa"),
                     "latency ms": e.get("latency_ms"), "latency CPU ms": e.get("latency_cpu_ms")})
    for name, e in report["per_pair"].items():
        cc = e["cross_check_one_pair_score"]
        rows.append({"part": f"per_pair[{name}]", "MACs (fvcore)": e["macs"], "FLOPs (2 MACs)": e["flops"],
                     "checked call: fvcore FLOPs": cc.get("fvcore_flops"),
                     "checked call: FlopCounterMode FLOPs": cc.get("torch_flops"),
                     "FlopCounterMode without CPU SDPA": cc.get("torch_flops_without_cpu_sdpa")})
    return pd.DataFrame(rows).set_index("part")


def head_table(report: dict[str, Any]):
    """Per head: per-pair, per-item and one-pair MACs, params, what the gallery stores."""
    import pandas as pd

    keys = ["macs", "score_per_text_macs", "score_per_video_macs", "encode_text_macs", "encode_video_macs",
            "one_pair_macs", "after_clip_one_pair_macs", "cached_floats_per_video", "params"]
    return pd.DataFrame({h: {k: e[k] for k in keys} for h, e in report["per_pair"].items()}).T


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    from glscl_lite.utils import write_json_atomic

    return write_json_atomic(path, report)
