"""Figures shared by the notebooks (matplotlib + seaborn styling); every function returns the Figure.

They take plain DataFrames, so any notebook can use them:

* a tidy results table (``glscl_lite.ablation`` ``results.csv``: columns ``setting``, ``seed``,
  ``split``, ``direction``, ``R1`` ... and config columns such as ``query_number``);
* training-loss records (``metrics.jsonl`` rows of split ``train`` as a DataFrame: ``step``,
  ``info_nce``, ``icl``, ``idl`` ..., optionally ``setting`` and ``seed`` columns).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

LOSS_TERMS = ("info_nce", "icl", "idl",                    # GLSCL (meanP: info_nce only)
              "csc",                                        # GLCCL
              "info_nce_weak", "info_nce_strong", "pearson")  # EERCF
"""Loss terms the heads log, in panel order; a panel is drawn for each term present."""
"""Loss terms logged by training (paper names; the official code swaps ICL and IDL, spec S2)."""


def _select(df: pd.DataFrame, split: str, direction: str) -> pd.DataFrame:
    sel = df[(df["split"] == split) & (df["direction"] == direction)]
    if sel.empty:
        raise ValueError(f"no rows with split={split!r} and direction={direction!r}")
    return sel


def _chance_line(ax, chance: Optional[float]) -> None:
    if chance is not None:
        ax.axhline(chance, color="0.4", linestyle=":", linewidth=1, label=f"chance ({chance:.1f})")


def plot_r1_per_setting(df: pd.DataFrame, metric: str = "R1", split: str = "test", direction: str = "t2v",
                        chance: Optional[float] = None, ax: Optional[plt.Axes] = None) -> Figure:
    """One bar per setting: mean over seeds, error bar = sample std, dots = single seeds.

    ``df``: tidy per-seed results (settings keep their order of appearance); ``chance``: draw the
    chance level (100 / number of test videos for R@1) as a dotted line.
    """
    sel = _select(df, split, direction)
    order = list(dict.fromkeys(sel["setting"]))
    stats = sel.groupby("setting", sort=False)[metric].agg(["mean", "std"]).reindex(order)
    with sns.axes_style("whitegrid"):
        if ax is None:
            fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(order) + 1.5), 3.6))
        fig = ax.figure
        colors = sns.color_palette("deep", len(order))
        x = np.arange(len(order))
        ax.bar(x, stats["mean"].to_numpy(), yerr=stats["std"].fillna(0).to_numpy(), color=colors,
               capsize=3, edgecolor="0.2", linewidth=0.5)
        pos = {name: i for i, name in enumerate(order)}
        ax.scatter(sel["setting"].map(pos).to_numpy(), sel[metric].to_numpy(), s=10, color="k", zorder=3)
        _chance_line(ax, chance)
        ax.set_xticks(x, order, rotation=35, ha="right")
        n_seeds = sel.groupby("setting")["seed"].nunique().max() if "seed" in sel else 1
        ax.set_ylabel(f"{direction} {metric} (%)")
        ax.set_title(f"{split} {direction} {metric}: mean ± std over {n_seeds} seed(s)")
        if chance is not None:
            ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def plot_r1_vs_k(df: pd.DataFrame, metric: str = "R1", split: str = "test",
                 directions: Sequence[str] = ("t2v", "v2t"), key: str = "query_number",
                 chance: Optional[float] = None, ax: Optional[plt.Axes] = None) -> Figure:
    """``metric`` against the number of LIM queries K: one line per direction (mean over seeds,
    band = std, dots = single seeds).  ``df``: rows that differ only in ``key``
    (``glscl_lite.ablation.sweep(df, "query_number")``)."""
    sel = df[df["split"] == split]
    with sns.axes_style("whitegrid"):
        if ax is None:
            fig, ax = plt.subplots(figsize=(4.6, 3.4))
        fig = ax.figure
        for color, direction in zip(sns.color_palette("deep"), directions):
            d = sel[sel["direction"] == direction]
            if d.empty:
                continue
            stats = d.groupby(key)[metric].agg(["mean", "std"]).sort_index()
            ks, mean, std = stats.index.to_numpy(), stats["mean"].to_numpy(), stats["std"].fillna(0).to_numpy()
            ax.plot(ks, mean, marker="o", color=color, label=direction)
            ax.fill_between(ks, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
            ax.scatter(d[key].to_numpy(), d[metric].to_numpy(), s=8, color=color, alpha=0.6)
        ax.set_xscale("log", base=2)
        ks_all = sorted(sel[key].unique())
        ax.set_xticks(ks_all, [str(int(k)) for k in ks_all])
        ax.minorticks_off()
        _chance_line(ax, chance)
        ax.set_xlabel(f"K ({key})")
        ax.set_ylabel(f"{split} {metric} (%)")
        ax.set_title(f"{split} {metric} vs number of queries")
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def plot_loss_terms(metrics_df: pd.DataFrame, terms: Sequence[str] = LOSS_TERMS, by: str = "setting",
                    x: str = "step") -> Figure:
    """Loss-term curves: one panel per term present in ``metrics_df``; one line per value of the
    ``by`` column (mean over seeds, band = std) or a single line when there is no such column.

    A term that a setting switched off (no values) draws no line for that setting.
    """
    df = metrics_df
    if "split" in df.columns:
        df = df[df["split"] == "train"]
    present = [t for t in terms if t in df.columns and df[t].notna().any()]
    if not present:
        raise ValueError(f"none of the loss terms {list(terms)} is in the metrics DataFrame")
    groups = list(dict.fromkeys(df[by])) if by in df.columns else [None]
    colors = dict(zip(groups, sns.color_palette("deep" if len(groups) <= 10 else "tab20", len(groups))))
    with sns.axes_style("whitegrid"):
        ncols = min(len(present), 4)
        nrows = -(-len(present) // ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 3.2 * nrows), squeeze=False)
        axes = grid.ravel()
        for ax in axes[len(present):]:  # the unused cells of the last row
            fig.delaxes(ax)
        axes = axes[:len(present)]
        for ax, term in zip(axes, present):
            for g in groups:
                d = df if g is None else df[df[by] == g]
                d = d[[x, term]].dropna()
                if d.empty:
                    continue
                stats = d.groupby(x)[term].agg(["mean", "std"]).sort_index()
                steps = stats.index.to_numpy()
                mean, std = stats["mean"].to_numpy(), stats["std"].fillna(0).to_numpy()
                ax.plot(steps, mean, color=colors[g], label=term if g is None else str(g), linewidth=1.2)
                ax.fill_between(steps, mean - std, mean + std, color=colors[g], alpha=0.15, linewidth=0)
            ax.set_title(term)
            ax.set_xlabel(x)
        for row in grid:
            row[0].set_ylabel("loss term (as added to the total)")
        if groups != [None]:
            handles, labels = [], []
            for ax in axes:
                for h, lab in zip(*ax.get_legend_handles_labels()):
                    if lab not in labels:
                        handles.append(h)
                        labels.append(lab)
            fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small",
                       title=by)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------ FLOPs report figures
# (reports of glscl_lite.flops.profile / head_latency)
def plot_gallery_costs(report: dict[str, Any], ax: Any = None, sizes: Optional[Sequence[int]] = None):
    """Per-query GFLOPs vs gallery size (log-log), one line per head; dashed: per-video score work cached."""
    from glscl_lite import flops

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    sizes = sizes if sizes is not None else np.unique(np.logspace(2, 6, 40).astype(int))
    rows = flops.gallery_costs(report, sizes)
    for i, name in enumerate(report["per_pair"]):
        r = [x for x in rows if x["head"] == name]
        color = f"C{i}"
        ax.plot([x["gallery"] for x in r], [2 * x["query_macs"] / 1e9 for x in r], color=color, label=name)
        ax.plot([x["gallery"] for x in r], [2 * x["query_macs_video_terms_cached"] / 1e9 for x in r],
                color=color, ls="--", lw=1)
    text = report["components"]["text_tower_per_caption"]["flops"] / 1e9
    ax.axhline(text, color="gray", ls=":", label="text tower (one caption)")
    ax.set(xscale="log", yscale="log", xlabel="gallery size (videos)", ylabel="GFLOPs per text query",
           title=f"{report['backbone']}: cost of one query (dashed: per-video score work cached)")
    ax.legend(fontsize=8)
    return ax


def plot_latency(rows_by_head: dict[str, list[dict[str, Any]]], ax: Any = None, title: str = ""):
    """Seconds per query vs gallery size (log-log); hollow markers are extrapolated."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for i, (name, rows) in enumerate(rows_by_head.items()):
        ax.plot([r["gallery"] for r in rows], [r["seconds"] for r in rows], color=f"C{i}", label=name)
        for r in rows:
            ax.plot(r["gallery"], r["seconds"], "o", color=f"C{i}", mfc="none" if r["extrapolated"] else f"C{i}")
    ax.set(xscale="log", yscale="log", xlabel="gallery size (videos)", ylabel="seconds per query (head only)",
           title=title or "query latency (hollow: extrapolated)")
    ax.legend(fontsize=8)
    return ax


def plot_figure1(report: dict[str, Any], ax: Any = None):
    """The paper's Fig. 1 re-drawn (t2v R@1 vs head GFLOPs, log x) with our counts beside the paper's.

    Filled: Table I values.  Hollow: our count "after CLIP, one pair" of the matching head, at the
    paper's R@1 of that method (we did not train these heads on MSR-VTT).
    """
    from glscl_lite import flops

    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    for m, v in flops.PAPER_TABLE1_B32.items():
        ax.plot(v["gflops"], v["r1"], "o", color="C3" if m == "GLSCL" else "C0")
        ax.annotate(m, (v["gflops"], v["r1"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for h, e in report["per_pair"].items():
        m = flops.PAPER_METHOD.get(h)
        if m is None:
            continue
        ours, paper = e["after_clip_one_pair_flops"] / 1e9, flops.PAPER_TABLE1_B32[m]
        ax.plot(ours, paper["r1"], "o", mfc="none", color="C3" if h == "glscl" else "C2")
        ax.annotate("", xy=(ours, paper["r1"]), xytext=(paper["gflops"], paper["r1"]),
                    arrowprops={"arrowstyle": "->", "color": "gray", "lw": 0.8})
        ax.annotate(f"{h} (ours)", (ours, paper["r1"]), textcoords="offset points", xytext=(4, -10),
                    fontsize=7, color="C2")
    ax.set(xscale="log", xlabel="head GFLOPs (log)", ylabel="MSR-VTT t2v R@1 (paper)",
           title=f"Fig. 1 re-drawn: paper (filled) vs our count after CLIP, one pair ({report['backbone']})")
    return ax


def gallery_forest(summary: pd.DataFrame, metrics: Sequence[str] = ("t2v_R1", "moment_R1", "order_acc",
                                                                    "binding_acc")) -> Figure:
    """Forest plot of the gallery (:func:`glscl_lite.gallery.summarize_gallery`): each setting's
    difference to the default with its 95 % paired-bootstrap CI, one panel per metric (red / green:
    separable and worse / better; grey: the interval contains 0)."""
    metrics = [m for m in metrics if m in set(summary.metric)]
    if not metrics:
        raise ValueError(f"none of the metrics {list(metrics)} is in the summary")
    settings = [s for s in dict.fromkeys(summary.setting) if s != "default"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 0.32 * len(settings) + 1.6),
                             sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sub = summary[(summary.metric == metric)].set_index("setting")
        y = np.arange(len(settings))[::-1]
        d = sub.loc[settings]
        colours = ["tab:red" if sep and diff < 0 else "tab:green" if sep else "tab:gray"
                   for sep, diff in zip(d.separable, d["diff"])]
        ax.errorbar(d["diff"], y, xerr=[d["diff"] - d.ci_low, d.ci_high - d["diff"]], fmt="none",
                    ecolor=colours, elinewidth=2)
        ax.scatter(d["diff"], y, c=colours, zorder=3, s=18)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{metric}\n(default {sub.loc['default', 'mean']:.1f})", fontsize=9)
        ax.set_xlabel("difference to default (points)")
        ax.set_yticks(y, settings)
    fig.suptitle("gallery: difference to default GLSCL, 95 % paired bootstrap CI (grey: not separable)",
                 fontsize=10)
    fig.tight_layout()
    return fig


GALLERY_K = {"K1": 1, "K2": 2, "K4": 4, "default": 8, "K16": 16}
"""The gallery settings of the K sweep and their number of queries."""


def gallery_k(summary: pd.DataFrame, metric: str = "t2v_R1") -> Figure:
    """``metric`` against the number of queries K (mean over seeds, the setting's own 95 % CI)."""
    sub = summary[(summary.metric == metric) & summary.setting.isin(list(GALLERY_K))]
    if len(sub) < 2:
        raise ValueError("the summary holds fewer than two settings of the K sweep")
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    sub = sub.assign(K=sub.setting.map(GALLERY_K)).sort_values("K")
    ax.errorbar(sub.K, sub["mean"], yerr=[sub["mean"] - sub.own_ci_low, sub.own_ci_high - sub["mean"]],
                marker="o", capsize=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of queries K")
    ax.set_ylabel(f"test {metric} (%)")
    ax.set_title(f"{metric} vs K (mean over seeds, 95 % CI)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_concept_cosine(train: pd.DataFrame, settings: Sequence[str], targets: Optional[dict[str, float]] = None,
                        column: str = "sim2_pos", smooth: int = 5) -> Figure:
    """Mean matched-pair local score (``sim2_pos``: the mean cosine of a caption's and its video's
    matched concepts) over training, one line per setting (mean over seeds, rolling mean of
    ``smooth`` logged steps); dashed lines: ``targets`` (label -> value), e.g. ICL's target."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, name in enumerate(settings):
        sub = train[train.setting == name]
        if sub.empty or column not in sub or sub[column].isna().all():
            continue
        curve = sub.groupby("step")[column].mean().rolling(smooth, min_periods=1).mean()
        ax.plot(curve.index, curve.values, color=f"C{i}", label=name)
    for j, (label, value) in enumerate((targets or {}).items()):
        ax.axhline(value, color=f"C{len(settings) + j}", ls="--", lw=1, label=label)
    ax.set(xlabel="training step", ylabel="matched-concept cosine (Sim2 of the pair)",
           title="what ICL does to the matched concepts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def has_k_curve(summary: pd.DataFrame) -> bool:
    """Whether a gallery summary has R@1 at two or more K (then ``gallery_k.png`` is drawn)."""
    return bool(((summary.metric == "t2v_R1") & summary.setting.isin(list(GALLERY_K))).sum() > 1)


def plot_gallery(summary: pd.DataFrame, dest: Any, metrics: Sequence[str] = ("t2v_R1", "moment_R1", "order_acc",
                                                                         "binding_acc")) -> list:
    """Write :func:`gallery_forest` (``gallery_diffs.png``) and :func:`gallery_k` (``gallery_k.png``)
    to folder ``dest``; returns the paths written."""
    from pathlib import Path

    dest = Path(dest)
    written = []
    if any(m in set(summary.metric) for m in metrics):
        fig = gallery_forest(summary, metrics)
        written.append(dest / "gallery_diffs.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    if has_k_curve(summary):
        fig = gallery_k(summary)
        written.append(dest / "gallery_k.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written
