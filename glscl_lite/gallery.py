"""The ablation gallery with statistical power: every setting, metric and probe against the default.

``glscl-lite gallery --config PRESET --out DIR`` trains the grid :data:`GALLERY_SETTINGS` x seeds
with the ablation runner (:func:`glscl_lite.ablation.run_ablation`: one cell per setting and seed,
resumable, frozen stand-in CLIP features from a feature cache), then scores every finished cell
item by item -- each test caption's rank (t2v), each test video's rank (v2t), each probe query's
rank (``moment``, ``full``) and each probe pair's outcome (``order``, ``binding``) -- and caches
those outcomes in the cell's folder (``gallery_outcomes.json``, tied to the cell's best checkpoint
by its sha256).

Statistics (:func:`summarize_gallery`), for every setting and metric:

* ``mean``, ``std``: over seeds, of the metric on all test items;
* ``diff``, ``ci_low``, ``ci_high``: the difference to the default setting and its 95 % *paired
  bootstrap* interval: the test items (queries, videos or probe pairs) are resampled with
  replacement ``n_boot`` times; in each resample both settings are scored on the same items, each
  averaged over its seeds, and the 2.5 / 97.5 percentiles of the difference are reported.  Seeds are
  averaged, not resampled: the interval is about which test items happen to be in the test set;
  ``std`` shows the seed-to-seed spread beside it.
* ``own_ci_low``, ``own_ci_high``: the same bootstrap interval of the setting's own mean.
* ``t2v_all_*`` (every caption of every test video as a query): the captions of one video are not
  independent, so these resample *videos* (a cluster bootstrap) and keep all their captions.

A difference whose interval contains 0 is reported as not separable from noise (``separable``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from glscl_lite.utils import PathLike, atomic_path, write_json_atomic

__all__ = ["GALLERY_SETTINGS", "GALLERY_METRICS", "cell_outcomes", "collect_outcomes", "summarize_gallery",
           "run_gallery", "write_report"]

GALLERY_SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "meanp": {"head": "meanp"},
    "gim_only": {"loss2_weight": 0.0},
    "tau1": {"temp": 1.0},
    "tau10": {"temp": 10.0},
    "K1": {"query_number": 1},
    "K2": {"query_number": 2},
    "K4": {"query_number": 4},
    "K16": {"query_number": 16},
    "no_icl": {"icl": False},
    "no_idl": {"idl": False},
    "no_icl_no_idl": {"icl": False, "idl": False},
    "unshared": {"query_share": False, "cross_att_share": False},
    "icl_batch": {"icl_normalizer": "batch"},
    "no_temporal": {"agg_module": "None"},
    "glccl": {"head": "glccl"},
    "eercf": {"head": "eercf"},
}
"""The gallery's settings (overrides of the base config; the default is GLSCL as released: tau 3,
K 8, shared queries and decoder, ICL with the official normaliser, IDL on video concepts)."""

GALLERY_METRICS: dict[str, tuple[str, str]] = {
    "t2v_R1": ("t2v", "r1"), "t2v_R5": ("t2v", "r5"), "t2v_R10": ("t2v", "r10"),
    "v2t_R1": ("v2t", "r1"), "v2t_R5": ("v2t", "r5"),
    "moment_R1": ("moment", "r1"), "full_R1": ("full", "r1"),
    "order_acc": ("order", "pair"), "binding_acc": ("binding", "pair"),
    "t2v_all_R1": ("t2v_all", "r1"), "t2v_all_R5": ("t2v_all", "r5"),
}
"""metric -> (item population, how an item scores): ``rK`` = 100 if the item's rank < K else 0;
``pair`` = 100 x the mean of the pair's t2v and v2t outcomes (1 / 0.5 tie / 0).  ``t2v_all``: every
caption of every test video as a query (MSR-VTT's "full" protocol; 20 per video in the synthetic
corpus), resampled by video (:func:`summarize_gallery`)."""
OUTCOMES_FILE = "gallery_outcomes.json"
OUTCOMES_VERSION = 2
"""Bumped when cells are scored on more items (2: ``t2v_all``); an older cache is recomputed."""


def _item_values(outcomes: Mapping[str, Any], metric: str) -> np.ndarray:
    population, kind = GALLERY_METRICS[metric]
    if kind == "pair":
        return 100.0 * (np.asarray(outcomes[f"{population}_t2v"], float) + np.asarray(outcomes[f"{population}_v2t"], float)) / 2
    k = int(kind[1:])
    return 100.0 * (np.asarray(outcomes[f"{population}_rank"]) < k)


def cell_outcomes(run_dir: PathLike, probe_features=None, device: Optional[str] = None) -> dict[str, Any]:
    """Per-item outcomes of a finished cell (cached in ``RUN/gallery_outcomes.json``).

    Keys: ``t2v_rank`` / ``v2t_rank`` (0-based, equal scores ranked optimistically) on the test
    split; ``t2v_all_rank`` and ``t2v_all_video`` (each query's video) for every caption of the test
    videos when they have more than the test list's; with probes in the corpus also ``moment_rank``, ``full_rank``, ``order_t2v``,
    ``order_v2t``, ``binding_t2v``, ``binding_v2t`` (:func:`glscl_lite.probes_eval.score_probes`).
    A cache written for another best checkpoint is recomputed.
    """
    from glscl_lite import runs
    from glscl_lite.data.msrvtt import load_annotations
    from glscl_lite.data.splits import all_test_captions, build_splits
    from glscl_lite.evaluate import evaluate_model, load_run_model
    from glscl_lite.features import video_inputs
    from glscl_lite.metrics import query_ranks
    from glscl_lite.provenance import file_sha256

    run_dir = Path(run_dir)
    best = runs.checkpoint_path(run_dir, "best")
    ckpt = file_sha256(best)["sha256"]
    cache = run_dir / OUTCOMES_FILE
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("checkpoint_sha256") == ckpt and saved.get("version") == OUTCOMES_VERSION:
            return saved
    model, cfg, dev = load_run_model(run_dir, "best", device)
    anno = load_annotations(cfg.anno_path)
    splits = build_splits(cfg, anno)
    source, features = video_inputs(cfg, model.backbone.image_size)
    res = evaluate_model(model, splits.test, cfg, dev, source=source, features=features, return_similarity=True)
    t2v, v2t = query_ranks(res["similarity"], splits.test.text_video, ties="optimistic")
    out: dict[str, Any] = {"checkpoint_sha256": ckpt, "version": OUTCOMES_VERSION,
                           "t2v_rank": t2v.tolist(), "v2t_rank": v2t.tolist()}
    every = all_test_captions(splits.test, anno)
    if len(every.captions) > len(splits.test.captions):  # more than the one caption per video of the test list
        res = evaluate_model(model, every, cfg, dev, source=source, features=features, return_similarity=True)
        out["t2v_all_rank"] = query_ranks(res["similarity"], every.text_video, ties="optimistic")[0].tolist()
        out["t2v_all_video"] = list(every.text_video)
    if (Path(cfg.anno_path) / "probes").is_dir():
        from glscl_lite.probes_eval import score_probes

        probes = score_probes(model, cfg, dev, features=probe_features, details=True)
        out["moment_rank"] = probes["moment"]["moment"]["ranks"]
        out["full_rank"] = probes["moment"]["full"]["ranks"]
        for name in ("order", "binding"):
            out[f"{name}_t2v"] = probes[name]["t2v_per_pair"]
            out[f"{name}_v2t"] = probes[name]["v2t_per_pair"]
    write_json_atomic(cache, out, indent=None)
    return out


def collect_outcomes(out: PathLike, settings: Sequence[str], seeds: Sequence[int],
                     probe_features=None, progress: bool = True) -> dict[str, dict[int, dict[str, Any]]]:
    """``{setting: {seed: outcomes}}`` for every finished cell of the gallery in ``out``."""
    from glscl_lite import runs
    from glscl_lite.ablation import cell_name

    found: dict[str, dict[int, dict[str, Any]]] = {}
    for s in settings:
        for seed in seeds:
            run = Path(out) / "runs" / cell_name(s, seed)
            if runs.read_results(run) is None:
                continue
            if progress:
                print(f"outcomes: {run.name}", flush=True)
            found.setdefault(s, {})[seed] = cell_outcomes(run, probe_features)
    return found


def summarize_gallery(outcomes: Mapping[str, Mapping[int, Mapping[str, Any]]], default: str = "default",
                      metrics: Optional[Sequence[str]] = None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The summary table: one row per setting and metric (columns: see the module docstring).

    Every setting is compared with ``default`` on the same bootstrap resamples of the test items.
    """
    if default not in outcomes:
        raise ValueError(f"the gallery has no finished {default!r} cell to compare with")
    any_cell = next(iter(outcomes[default].values()))
    metrics = [m for m in (metrics or GALLERY_METRICS) if f"{GALLERY_METRICS[m][0]}_rank" in any_cell
               or f"{GALLERY_METRICS[m][0]}_t2v" in any_cell]
    rng = np.random.default_rng(seed)
    rows = []
    for metric in metrics:
        values = {s: np.stack([_item_values(o, metric) for o in cells.values()])   # [seeds, items]
                  for s, cells in outcomes.items()}
        n_items = values[default].shape[1]
        groups = any_cell.get(f"{GALLERY_METRICS[metric][0]}_video")
        if groups is None:  # independent items: resample them
            idx = rng.integers(0, n_items, size=(n_boot, n_items))
            boot = {s: v.mean(0)[idx].mean(1) for s, v in values.items()}         # [n_boot], seeds averaged
        else:  # several captions per video are not independent: resample videos, keep all their captions
            g = np.asarray(groups)
            counts = np.bincount(g)
            vidx = rng.integers(0, len(counts), size=(n_boot, len(counts)))
            total = counts[vidx].sum(1)
            boot = {s: np.bincount(g, weights=v.mean(0), minlength=len(counts))[vidx].sum(1) / total
                    for s, v in values.items()}
        for s, v in values.items():
            per_seed = v.mean(1)
            diff = boot[s] - boot[default]
            lo, hi = np.percentile(diff, [2.5, 97.5])
            own_lo, own_hi = np.percentile(boot[s], [2.5, 97.5])
            rows.append({"setting": s, "metric": metric, "mean": round(float(per_seed.mean()), 3),
                         "std": round(float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0, 3),
                         "diff": round(float(per_seed.mean() - values[default].mean(1).mean()), 3),
                         "ci_low": round(float(lo), 3), "ci_high": round(float(hi), 3),
                         "own_ci_low": round(float(own_lo), 3), "own_ci_high": round(float(own_hi), 3),
                         "separable": bool(s != default and (lo > 0 or hi < 0)),
                         "n_seeds": int(v.shape[0]), "n_items": int(n_items)})
    return pd.DataFrame(rows)


def run_gallery(config: str, overrides: Sequence[str], out: PathLike, seeds: Sequence[int] = (0, 1, 2),
                settings: Optional[Sequence[str]] = None, export: Optional[PathLike] = None,
                n_boot: int = 2000, progress: bool = True, train_only: bool = False) -> Optional[pd.DataFrame]:
    """Train (or finish) the gallery's cells, score them item by item, and write ``summary.csv``.

    ``settings``: a subset of :data:`GALLERY_SETTINGS` (default: all; ``default`` is always added, as
    every difference is taken to it).  ``export``: also write the committed artefacts there
    (:func:`write_report`).  ``train_only``: train exactly the cells of ``settings`` (``default`` only if
    named) and return None -- a second worker on a disjoint subset of the same ``out``; a final run
    without it scores every cell.
    """
    from glscl_lite.ablation import run_ablation
    from glscl_lite.errors import UserError

    names = list(settings or GALLERY_SETTINGS)
    unknown = [n for n in names if n not in GALLERY_SETTINGS]
    if unknown:
        raise UserError(f"unknown gallery settings {unknown}; known: {', '.join(GALLERY_SETTINGS)}")
    if train_only and export is not None:
        raise UserError("gallery: --train-only trains cells and scores nothing; export from a run without it")
    if "default" not in names and not train_only:
        names.insert(0, "default")
    out = Path(out)
    run_ablation(config, overrides, grid={n: GALLERY_SETTINGS[n] for n in names}, seeds=seeds, out=out,
                 progress=progress)
    if train_only:
        return None
    probe_features = _probe_features(out, config, overrides)
    outcomes = collect_outcomes(out, names, seeds, probe_features, progress)
    summary = summarize_gallery(outcomes, n_boot=n_boot)
    summary.to_csv(out / "summary.csv", index=False)
    if export is not None:
        write_report(out, export, summary, config, overrides, seeds)
    return summary


def _probe_features(out: Path, config: str, overrides: Sequence[str]):
    """Probe items encoded once by the frozen backbone (None without probes or with a trained backbone)."""
    from glscl_lite.config import resolve_config

    from glscl_lite import runs

    cfg = resolve_config(config, overrides)
    if not cfg.pretrained or not (cfg.feature_cache or cfg.freeze_backbone) \
            or not (Path(cfg.anno_path) / "probes").is_dir():
        return None  # no backbone shared by every cell (random CLIP differs per seed): encode per cell
    import torch

    from glscl_lite.evaluate import load_run_model
    from glscl_lite.probes_eval import ProbeFeatures

    path = out / "probe_features.pt"
    cells = [p for p in sorted((out / "runs").iterdir()) if runs.read_results(p) is not None]
    # a head that scores patch tokens (EERCF) makes the features keep them; every head shares the frozen backbone
    cells.sort(key=lambda p: not runs.run_config(p).head == "eercf")
    model, run_cfg, dev = load_run_model(cells[0], "best")
    if path.exists():
        feats = ProbeFeatures.load(path)
        feats.check(model)
        return feats
    with torch.no_grad():
        feats = ProbeFeatures.build(model, run_cfg, dev)
    feats.save(path)
    return feats


def write_report(out: PathLike, dest: PathLike, summary: pd.DataFrame, config: str, overrides: Sequence[str],
                 seeds: Sequence[int]) -> list[Path]:
    """Write ``summary.csv``, the figures, ``train_metrics.csv`` (every cell's training-loss log:
    loss terms, matched-pair Sim1/Sim2, logit scale, lr) and ``gallery_config.json`` (the
    reproducing command) to ``dest``."""
    from glscl_lite.plots import plot_gallery

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = [dest / "summary.csv"]
    summary.to_csv(written[0], index=False)
    written += plot_gallery(summary, dest)
    from glscl_lite.ablation import load_train_metrics

    keep = ["setting", "seed", "step", "loss", "info_nce", "icl", "idl", "sim1_pos", "sim2_pos", "logit_scale", "lr"]
    train = load_train_metrics(out)
    train = train[[c for c in keep if c in train.columns]]
    with atomic_path(dest / "train_metrics.csv") as tmp:  # the loss logs of every cell (notebook 08 reads them)
        train.to_csv(tmp, index=False, float_format="%.6g")
    written.append(dest / "train_metrics.csv")
    names = [n for n in GALLERY_SETTINGS if n in set(summary.setting)]
    subset = [] if names == list(GALLERY_SETTINGS) else ["--settings " + " ".join(names)]  # re-runs what ran
    command = " ".join(["glscl-lite gallery", f"--config {config}", *[f"--set {o}" for o in overrides],
                        f"--out {out}", "--seeds " + " ".join(map(str, seeds)), *subset, f"--export {dest}"])
    write_json_atomic(dest / "gallery_config.json", {"config": config, "overrides": list(overrides),
                                                     "seeds": list(seeds), "command": command,
                                                     "oracle": _oracle_ceiling(config, overrides)})
    written.append(dest / "gallery_config.json")
    readme = gallery_readme(summary, json.loads((dest / "gallery_config.json").read_text()), out)
    with atomic_path(dest / "README.md") as tmp:
        tmp.write_text(readme)
    written.append(dest / "README.md")
    return written


def _cell_info(out: Path) -> dict[str, Any]:
    """Training facts of the cells under ``out/runs``: count, steps, early stops, seconds."""
    from glscl_lite import runs

    cells = sorted((out / "runs").glob("*__seed*"))
    res = [runs.read_results(c) or {} for c in cells]
    secs = [json.loads((c / "ablation.json").read_text()).get("seconds", 0.0) for c in cells
            if (c / "ablation.json").is_file()]
    return {"cells": len(cells), "steps": sorted({r.get("steps") for r in res if r.get("steps")}),
            "stopped_early": sum(bool(r.get("stopped_early")) for r in res), "seconds": round(sum(secs), 1)}


_SCRIPT_KEYS = frozenset({"anno_path", "video_path", "frame_cache", "feature_cache"})
"""The overrides ``benchmarks/gallery_cpu.sh`` passes (where the corpus and caches are)."""


def gallery_readme(summary: pd.DataFrame, record: Mapping[str, Any], out: PathLike) -> str:
    """The gallery's README (markdown): what was run, the reproducing command, the method of the
    intervals, and one table per headline metric (written by :func:`write_report`)."""
    from glscl_lite.config import resolve_config
    from glscl_lite.plots import has_k_curve
    from glscl_lite.utils import machine_name

    cfg = resolve_config(record["config"], record["overrides"])
    info = _cell_info(Path(out))
    n_test = int(summary.loc[(summary.setting == "default") & (summary.metric == "t2v_R1"), "n_items"].iloc[0])
    oracle = (record.get("oracle") or {}).get("test") or {}
    moment = (record.get("oracle") or {}).get("moment") or {}
    # benchmarks/gallery_cpu.sh runs the whole gallery of the `synthetic` preset, changing only where the data is
    as_script = (record["config"] == "synthetic" and "--settings" not in record["command"]
                 and all(o.split("=", 1)[0] in _SCRIPT_KEYS for o in record["overrides"]))
    script = ["nohup bash benchmarks/gallery_cpu.sh > runs/gallery.log 2>&1 &   # = the two steps below"] if as_script else []
    k_curve = has_k_curve(summary)
    lines = [
        "# The gallery: GLSCL's components on the stand-in CLIP, with statistical power", "",
        "Written by `glscl-lite gallery ... --export` (`glscl_lite.gallery.write_report`); do not edit by hand.", "",
        "## Reproduce", "", "```bash", *script,
        f"glscl-lite synth --out {cfg.anno_path} --videos 10000 --workers 2", record["command"], "```", "",
        f"* Base config `{record['config']}` ({cfg.base_encoder}, pretrained={cfg.pretrained!r}, frozen: features "
        f"cached once), lr {cfg.lr:g}, batch {cfg.batch_size}, at most {cfg.max_steps} steps of a "
        f"{cfg.schedule_epochs or cfg.epochs}-epoch warm-up + cosine schedule, validation every {cfg.eval_every} "
        f"steps on {cfg.val_videos} videos carved out of the training list, early stopping (patience {cfg.patience}),"
        " the best validation checkpoint tested.",
        f"* {summary.setting.nunique()} settings x seeds {', '.join(map(str, record['seeds']))} = {info['cells']} cells; "
        f"steps trained {info['steps']}, {info['stopped_early']} stopped early; {info['seconds'] / 60:.0f} min of "
        f"cell time on `{machine_name()}`.",
        f"* Test: {n_test:,} captions over the JSFUSION-style test list (chance R@1 {100 / n_test:.2f} %). "
        f"Oracle ceiling (best expected recall any model can reach, from the scene specifications): "
        f"R@1 {oracle.get('R1', float('nan')):.1f} %, R@5 {oracle.get('R5', float('nan')):.1f} %; "
        f"moment probe R@1 {moment.get('R1', float('nan')):.1f} %.", "",
        "## Method", "",
        "Every cell is scored item by item (each test caption's and video's rank, each probe query's rank, each "
        "probe pair's outcome). `mean`, `std`: over seeds. `diff`, `ci_low`, `ci_high`: the difference to `default` "
        "and its 95 % **paired bootstrap** interval -- the test items are resampled with replacement 2,000 times, "
        "in each resample both settings are scored on the same items (each averaged over its seeds), and the "
        "2.5 / 97.5 percentiles of the difference are reported. Seeds are averaged, not resampled. `separable`: the "
        "interval excludes 0; a difference whose interval contains 0 is not separable from noise.", "",
        "Files: `summary.csv` (every setting x metric), `train_metrics.csv` (every cell's training log), "
        "`gallery_diffs.png` (forest plot), " + ("`gallery_k.png` (R@1 vs K), " if k_curve else "")
        + "`gallery_config.json`.", "",
    ]
    titles = {"t2v_R1": "Text-to-video R@1 (%)", "v2t_R1": "Video-to-text R@1 (%)", "t2v_R5": "Text-to-video R@5 (%)",
              "moment_R1": "Moment probe R@1 (%): captions true of a short flash only",
              "full_R1": "Moment probe videos, whole-clip captions R@1 (%)",
              "order_acc": "Order probe, pairwise accuracy (%, chance 50)",
              "binding_acc": "Binding probe, pairwise accuracy (%, chance 50)",
              "t2v_all_R1": "Every caption of every test video as a query, text-to-video R@1 (%)"}
    for metric, title in titles.items():
        if (summary.metric == metric).any():
            lines += [f"## {title}", "", format_table(summary, metric), ""]
    own = summary[(summary.setting == "default") & summary.metric.isin(["t2v_R1", "t2v_all_R1"])]
    every_oracle = (record.get("oracle") or {}).get("test_all") or {}
    if len(own) == 2:
        one, every = (own[own.metric == m].iloc[0] for m in ("t2v_R1", "t2v_all_R1"))
        if every_oracle:
            lines += [f"Oracle ceiling on every caption: R@1 {every_oracle['R1']:.1f} %, R@5 {every_oracle['R5']:.1f} % "
                      f"(test list: {oracle.get('R1', float('nan')):.1f} / {oracle.get('R5', float('nan')):.1f} %); the "
                      f"default reaches {100 * every['mean'] / every_oracle['R1']:.0f} % of it at R@1.", ""]
        lines += ["The default's own 95 % interval: "
                  f"{one['mean']:.2f} [{one.own_ci_low:.2f}, {one.own_ci_high:.2f}] on the {int(one.n_items):,} captions of the "
                  f"test list, {every['mean']:.2f} [{every.own_ci_low:.2f}, {every.own_ci_high:.2f}] on all "
                  f"{int(every.n_items):,} captions of the same videos (videos resampled: the captions of one video "
                  "are not independent). Both rank the same test videos; the second averages over "
                  f"{int(every.n_items) // int(one.n_items)} descriptions of each video instead of one, so it is "
                  "not the same number.", ""]
    lines += ["![differences to the default](gallery_diffs.png)", ""]
    if k_curve:
        lines += ["![R@1 against K](gallery_k.png)", ""]
    return "\n".join(lines)


def _oracle_ceiling(config: str, overrides: Sequence[str]) -> Optional[dict[str, Any]]:
    """The corpus's oracle ceilings (best expected recall any model can reach; None without probes):
    ``{"test": {"R1", "R5", "R10", "n_captions"}, "test_all": {...}, "moment": {"R1", "R5", "R10"}}``;
    ``test_all``: every caption of the test videos as a query (:func:`~glscl_lite.heldout.every_caption_oracle`)."""
    from glscl_lite.config import resolve_config
    from glscl_lite.data.probes import load_oracle, probe_dir
    from glscl_lite.heldout import every_caption_oracle

    cfg = resolve_config(config, overrides)
    if not (probe_dir(cfg.anno_path) / "oracle.json").is_file():
        return None
    oracle = load_oracle(cfg.anno_path)
    keep = ("R1", "R5", "R10", "n_captions")
    test_ids = list(dict.fromkeys(c["video_id"] for c in oracle["test"]["captions"]))
    every = every_caption_oracle(cfg.anno_path, test_ids)  # ~1 min for 20,000 captions x 1,000 videos
    return {"test": {k: oracle["test"][k] for k in keep if k in oracle["test"]},
            "test_all": {k: every[k] for k in keep},
            "moment": {k: oracle["moment"]["moment"][k] for k in keep if k in oracle["moment"]["moment"]}}


def format_table(summary: pd.DataFrame, metric: str) -> str:
    """Markdown table of one metric: mean +- std over seeds, difference to the default and its CI."""
    sub = summary[summary.metric == metric]
    lines = [f"| setting | {metric} (mean ± std) | diff to default [95 % CI] | separable |", "|---|---|---|---|"]
    for r in sub.itertuples():
        ci = "—" if r.setting == "default" else f"{r.diff:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
        lines.append(f"| {r.setting} | {r.mean:.2f} ± {r.std:.2f} | {ci} | {'yes' if r.separable else 'no'} |")
    return "\n".join(lines)
