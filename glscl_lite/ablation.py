"""Ablation grids: ``glscl-lite ablate --config FILE|PRESET --grid GRID --seeds 0 1 2 --out DIR``.

A *grid* is a list of named settings, each a dict of config overrides.  Every (setting, seed) pair
is one *cell*: one :func:`glscl_lite.train.train` run into ``DIR/runs/<setting>__seed<s>/`` (train,
model selection on the validation split carved from train, test evaluation of the best
checkpoint).  After each finished cell the tidy table ``DIR/results.csv`` (one row per setting x
seed x split x direction) and its mean +- std over seeds ``DIR/summary.csv`` are rewritten
atomically.  Re-running the same command skips finished cells (:func:`glscl_lite.runs.finished`:
same settings, same inputs -- a cell whose feature cache or pretrained weights changed is refused
by name) and resumes unfinished ones (``train`` resumes by itself).

Built-in grids (spec/glscl.md 10.3 lists what the paper ablates; the numbers are not available):

* ``icl_idl``        ICL on/off x IDL on/off (paper names: ICL = cross-modal consistency, code
  ``Intra_Consistency``; IDL = within-modality diversity, code ``Inter_Diversity``; S2)
* ``queries``        K = ``query_number`` in {1, 2, 4, 8, 16}
* ``sharing``        shared / unshared queries x shared / unshared decoder
* ``icl_normalizer`` official (sum over the batch divided by K, S3) / batch (divided by B)
* ``full``           the union of the four

Settings are compared by the config they produce: the one equal to the base config is named
``default`` and appears once, whichever grids list it.  A JSON file
``{"name": {"key": value, ...}, ...}`` is a grid too.

Feature-cache mode (``--feature-cache DIR`` or a base config with ``feature_cache``) trains with
``freeze_backbone=True`` on CLIP outputs computed once: only the temporal transformer and the LIM
run, which makes a multi-seed grid affordable on a CPU.  A randomly initialised CLIP depends on the
seed, so such a cache holds one sub-folder per seed (``DIR/seed<s>``); with pretrained weights one
cache (``DIR`` itself) serves every seed.  Missing caches are built once, before the first cell.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import pandas as pd

from glscl_lite.config import FEATURE_CACHE_KEYS, Config, ConfigError, apply_overrides, resolve_config
from glscl_lite.errors import UserError
from glscl_lite.utils import PathLike, atomic_path, write_json_atomic

METRICS = ("R1", "R5", "R10", "MdR", "MnR")
"""Retrieval metrics of every row (percent for recalls, ranks for MdR / MnR)."""

DIRECTIONS = ("t2v", "v2t", "t2v_dsl", "v2t_dsl")
SPLITS = ("val", "test")

FIXED_COLUMNS = ("setting", "seed", "split", "direction", *METRICS, "n_videos", "overrides",
                 "steps", "best_step", "seconds", "run")
"""Columns of ``results.csv`` besides the swept config keys (one column per key the grid sets)."""

GRIDS: dict[str, dict[str, dict[str, Any]]] = {
    "icl_idl": {
        "icl+idl": {"icl": True, "idl": True},
        "no_idl": {"icl": True, "idl": False},
        "no_icl": {"icl": False, "idl": True},
        "no_icl_no_idl": {"icl": False, "idl": False},
    },
    "queries": {f"K{k}": {"query_number": k} for k in (1, 2, 4, 8, 16)},
    "sharing": {
        "shared_q+shared_dec": {"query_share": True, "cross_att_share": True},
        "unshared_q": {"query_share": False, "cross_att_share": True},
        "unshared_dec": {"query_share": True, "cross_att_share": False},
        "unshared_q+unshared_dec": {"query_share": False, "cross_att_share": False},
    },
    "icl_normalizer": {
        "icl_norm_official": {"icl_normalizer": "official"},
        "icl_norm_batch": {"icl_normalizer": "batch"},
    },
}
"""Built-in grids by name (``full`` is their union)."""

FULL_GRID = ("icl_idl", "queries", "sharing", "icl_normalizer")
DEFAULT_NAME = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$")
# keys a grid may not set: the seed is the other axis of the grid, paths belong to the base config
_FORBIDDEN = {"seed", "feature_cache", "frame_cache", "anno_path", "video_path"}


# feature-cache setup lives in glscl_lite.features, the CLIP warm start in glscl_lite.warmstart;
# the old names stay importable from here (notebooks 10/11, tests), imported on first use
_MOVED = {"feature_cache_path": "features", "ensure_feature_cache": "features",
          "export_clip_weights": "warmstart", "weights_record": "warmstart",
          "check_exported_weights": "warmstart", "ensure_pretrained_clip": "warmstart"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"glscl_lite.{_MOVED[name]}"), name)
    raise AttributeError(f"module 'glscl_lite.ablation' has no attribute {name!r}")


class GridError(ConfigError):
    """A grid that cannot be used: unknown name, malformed JSON, bad setting names or keys."""


@dataclass(frozen=True)
class Setting:
    """One named point of a grid.

    ``overrides`` are the config changes as given (type-coerced); ``changed`` are the keys whose
    value differs from the base config (empty for ``default``).
    """

    name: str
    overrides: dict[str, Any]
    changed: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ grids
def grid_names() -> list[str]:
    """Names of the built-in grids."""
    return [*GRIDS, "full"]


def load_grid(grid: Union[str, PathLike, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Raw settings ``{name: overrides}`` of a built-in grid name, a JSON file, or a mapping."""
    if isinstance(grid, Mapping):
        raw: Any = dict(grid)
        where = "grid"
    elif str(grid) == "full":
        raw = {name: ov for g in FULL_GRID for name, ov in GRIDS[g].items()}
        where = "grid 'full'"
    elif str(grid) in GRIDS:
        raw = GRIDS[str(grid)]
        where = f"grid {str(grid)!r}"
    else:
        path = Path(grid)
        if path.suffix != ".json" and not path.exists():
            raise GridError(f"unknown grid {str(grid)!r}; built-in grids: {', '.join(grid_names())}, "
                            "or a JSON file {\"name\": {\"key\": value, ...}, ...}")
        if not path.is_file():
            raise GridError(f"{path}: grid file not found")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise GridError(f"{path}: not valid JSON ({exc})") from None
        where = str(path)
    if not isinstance(raw, dict) or not raw:
        raise GridError(f"{where}: expected a non-empty JSON object {{\"name\": {{\"key\": value}}, ...}}")
    for name, overrides in raw.items():
        if not isinstance(name, str) or not _NAME.match(name) or "__" in name:
            raise GridError(f"{where}: setting name {name!r} must be letters, digits and _ . + = - "
                            "(no '__'; it names a run folder)")
        if not isinstance(overrides, dict):
            raise GridError(f"{where}: setting {name!r} must be an object of config overrides, "
                            f"got {type(overrides).__name__}")
    return {name: dict(ov) for name, ov in raw.items()}


def expand_grid(grid: Union[str, PathLike, Mapping[str, Mapping[str, Any]]], base: Config,
                feature_cache: bool = False) -> list[Setting]:
    """Validated, de-duplicated settings of ``grid`` on top of ``base``.

    Each setting is applied to ``base`` (an unknown key raises the config error that lists the
    valid keys).  Settings that yield the same config are one setting: the first name is kept,
    except that the setting equal to ``base`` is always called ``default``.  With
    ``feature_cache`` a setting may not change what the cached CLIP outputs depend on.
    """
    raw = load_grid(grid)
    base_dict = {k: v for k, v in base.to_dict().items() if k != "seed"}
    out: list[Setting] = []
    seen: dict[str, str] = {}  # resolved config (JSON) -> setting name
    for name, overrides in raw.items():
        bad = sorted(set(overrides) & _FORBIDDEN)
        if bad:
            raise GridError(f"setting {name!r}: {', '.join(bad)} cannot be set by a grid "
                            "(seeds come from --seeds, paths from the base config)")
        if feature_cache:
            cached = sorted(set(overrides) & set(FEATURE_CACHE_KEYS))
            if cached:
                raise GridError(f"setting {name!r} changes {', '.join(cached)}, which the feature cache "
                                "was computed with; run this grid without a feature cache")
        try:
            cfg = apply_overrides(base, overrides)
        except ConfigError as exc:
            raise GridError(f"setting {name!r}: {exc}") from None
        resolved = {k: v for k, v in cfg.to_dict().items() if k != "seed"}
        changed = {k: v for k, v in resolved.items() if v != base_dict[k]}
        key = json.dumps(resolved, sort_keys=True, default=str)
        if key in seen:
            continue
        if name == DEFAULT_NAME and changed:
            raise GridError(f"setting name {DEFAULT_NAME!r} is reserved for the base config, but it "
                            f"changes {', '.join(sorted(changed))}")
        final = DEFAULT_NAME if not changed else name
        seen[key] = final
        coerced = {k: getattr(cfg, k) for k in overrides}
        out.append(Setting(final, {} if not changed else coerced, changed))
    return out


def swept_keys(settings: Sequence[Setting]) -> list[str]:
    """Config keys set by any setting of a grid, in first-seen order (the CSV's config columns)."""
    keys: list[str] = []
    for s in settings:
        keys += [k for k in {**s.overrides, **s.changed} if k not in keys]
    return keys


def cell_name(setting: str, seed: int) -> str:
    """Run folder name of a cell."""
    return f"{setting}__seed{seed}"


# ------------------------------------------------------------------------------------------ cells
def _rows(setting: Setting, keys: Sequence[str], cfg: Config, seed: int, results: dict,
          info: dict, run: str) -> list[dict[str, Any]]:
    rows = []
    for split in SPLITS:
        res = results.get(split) or {}
        for direction in DIRECTIONS:
            if direction not in res:
                continue
            rows.append({
                "setting": setting.name, "seed": seed, "split": split, "direction": direction,
                **{m: res[direction][m] for m in METRICS},
                "n_videos": res.get("n_videos"),
                **{k: getattr(cfg, k) for k in keys},
                "overrides": json.dumps(setting.changed, sort_keys=True),
                "steps": results.get("steps"), "best_step": results.get("best_step"),
                "seconds": info.get("seconds"), "run": run,
            })
    return rows


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def results_frame(rows: list[dict[str, Any]], keys: Sequence[str]) -> pd.DataFrame:
    """The tidy results table with its columns in the documented order."""
    cols = [*FIXED_COLUMNS[:4], *METRICS, "n_videos", *keys, *FIXED_COLUMNS[10:]]
    return pd.DataFrame(rows, columns=cols)


def run_ablation(config: Union[str, Config], overrides: Iterable[str] = (),
                 grid: Union[str, PathLike, Mapping[str, Mapping[str, Any]]] = "icl_idl",
                 seeds: Sequence[int] = (0, 1, 2), out: Optional[PathLike] = None,
                 feature_cache: Optional[PathLike] = None, pretrain_steps: Optional[int] = None,
                 export: Optional[PathLike] = None, progress: bool = True) -> pd.DataFrame:
    """Run (or finish) every cell of ``grid`` x ``seeds`` and return the tidy results table.

    ``config``/``overrides``: the base config (preset name, JSON file or Config; ``key=value``
    strings).  ``feature_cache``: root of the feature caches (default: the base config's
    ``feature_cache``; None for end-to-end training).  ``pretrain_steps``: first train the base
    config end to end for that many steps and use its CLIP weights, frozen, as ``pretrained`` for
    every cell (:func:`glscl_lite.warmstart.ensure_pretrained_clip`; for corpora without pretrained CLIP weights).
    ``export``: also write the shareable artefacts there (see :func:`export_results`).  Returns
    the rows of ``DIR/results.csv``.
    """
    from glscl_lite import runs
    from glscl_lite.features import ensure_feature_cache, feature_cache_path
    from glscl_lite.train import train
    from glscl_lite.warmstart import ensure_pretrained_clip

    if out is None:
        raise UserError("ablate needs an output folder (--out DIR)")
    if not seeds:
        raise UserError("ablate needs at least one seed")
    out = Path(out)
    base = resolve_config(config, overrides)
    if pretrain_steps:
        weights = ensure_pretrained_clip(base, out / "pretrain", pretrain_steps, progress=progress)
        base = base.replace(pretrained=str(weights))
    cache_root = Path(feature_cache) if feature_cache else (Path(base.feature_cache) if base.feature_cache else None)
    if cache_root is not None:
        base = base.replace(feature_cache=None, freeze_backbone=True)
    settings = expand_grid(grid, base, feature_cache=cache_root is not None)
    keys = swept_keys(settings)
    seeds = [int(s) for s in dict.fromkeys(seeds)]
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "grid.json", {"base": base.to_dict(), "seeds": seeds,
                                          "feature_cache": str(cache_root) if cache_root else None,
                                          "settings": {s.name: s.overrides for s in settings}})
    if cache_root is not None:
        from glscl_lite.model.registry import needs_patches

        patches = any(needs_patches(apply_overrides(base, s.overrides)) for s in settings)
        for seed in seeds:
            ensure_feature_cache(base.replace(seed=seed), feature_cache_path(cache_root, base, seed), progress,
                                 patches=patches)

    rows: list[dict[str, Any]] = []
    total = len(settings) * len(seeds)
    for i, (setting, seed) in enumerate(((s, seed) for s in settings for seed in seeds), 1):
        cfg = apply_overrides(base, {**setting.overrides, "seed": seed})
        if cache_root is not None:
            cfg = cfg.replace(feature_cache=str(feature_cache_path(cache_root, base, seed)))
        run = out / "runs" / cell_name(setting.name, seed)
        info_path = run / "ablation.json"
        results = runs.finished(run, cfg)
        status = "skipped (finished)"
        if results is None:
            prior = json.loads(info_path.read_text()).get("seconds", 0.0) if info_path.is_file() else 0.0
            status = "resumed" if runs.has_checkpoint(run, "last") else "trained"
            t0 = time.perf_counter()
            try:
                results = train(cfg, (), run, progress=progress)
            finally:
                write_json_atomic(info_path, {"setting": setting.name, "seed": seed,
                                              "overrides": setting.overrides,
                                              "seconds": round(prior + time.perf_counter() - t0, 2),
                                              "finished": runs.is_finished(run)})
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        rows += _rows(setting, keys, cfg, seed, results, info, str(run.relative_to(out)))
        df = results_frame(rows, keys)
        _write_csv(df, out / "results.csv")
        _write_csv(summarize(df), out / "summary.csv")
        if progress:
            test = (results.get("test") or {}).get("t2v", {})
            print(f"[{i}/{total}] {cell_name(setting.name, seed)}: {status}; "
                  f"test t2v R@1 {test.get('R1', float('nan')):.1f}, {info.get('seconds', float('nan'))} s",
                  flush=True)
    df = results_frame(rows, keys)
    if export is not None:
        export_results(out, export)
    return df


# -------------------------------------------------------------------------------------- analysis
def setting_columns(df: pd.DataFrame) -> list[str]:
    """The config-key columns of a results table (every column that is not a fixed one)."""
    return [c for c in df.columns if c not in FIXED_COLUMNS]


def summarize(df: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1; NaN with one seed) over seeds.

    One row per setting x split x direction (each in its order of appearance in ``df``), with the
    setting's config columns, ``n_seeds`` and ``<metric>_mean`` / ``<metric>_std``.
    """
    keys = ["setting", "split", "direction"]
    extra = [c for c in (*setting_columns(df), "overrides", "n_videos") if c in df.columns]
    grouped = df.groupby(keys, sort=False)
    stats = grouped[list(metrics)].agg(["mean", "std"])
    stats.columns = [f"{m}_{s}" for m, s in stats.columns]
    first = grouped[extra].first() if extra else None
    out = pd.concat([x for x in (first, grouped["seed"].nunique().rename("n_seeds"), stats) if x is not None],
                    axis=1).reset_index()
    rank = {k: {v: i for i, v in enumerate(dict.fromkeys(df[k]))} for k in keys}
    order = sorted(range(len(out)), key=lambda i: tuple(rank[k][out.at[i, k]] for k in keys))
    return out.iloc[order].reset_index(drop=True)


def sweep(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """Rows of the settings that differ from the base config in ``key`` only (``default``
    included): e.g. ``sweep(df, "query_number")`` for the K curve."""
    changed = df["overrides"].map(lambda s: set(json.loads(s)) if isinstance(s, str) else set())
    return df[changed.map(lambda c: c <= {key})]


def load_train_metrics(out: PathLike) -> pd.DataFrame:
    """The training-loss records (``metrics.jsonl``, split ``train``) of every cell under
    ``out/runs`` with ``setting`` and ``seed`` columns, for :func:`glscl_lite.plots.plot_loss_terms`;
    settings in the order of the last grid run there (``out/grid.json``), others after them."""
    from glscl_lite.runs import read_metrics

    grid_file = Path(out) / "grid.json"
    order = list(json.loads(grid_file.read_text())["settings"]) if grid_file.is_file() else []

    def rank(run: Path) -> tuple:
        name, seed = run.name.rsplit("__seed", 1)
        return (order.index(name) if name in order else len(order), name, int(seed))

    frames = []
    for run in sorted((Path(out) / "runs").glob("*__seed*"), key=rank):
        name, seed = run.name.rsplit("__seed", 1)
        recs = [r for r in read_metrics(run) if r.get("split") == "train"]
        if recs:
            frames.append(pd.DataFrame(recs).assign(setting=name, seed=int(seed)))
    if not frames:
        return pd.DataFrame(columns=["setting", "seed", "step"])
    return pd.concat(frames, ignore_index=True)


def format_summary(summary: pd.DataFrame, split: str = "test", direction: str = "t2v",
                   metrics: Sequence[str] = ("R1", "R5", "R10", "MdR"), digits: int = 1) -> pd.DataFrame:
    """``mean ± std`` strings of one split and direction, one row per setting."""
    sel = summary[(summary["split"] == split) & (summary["direction"] == direction)]

    def fmt(mean: float, std: float) -> str:
        return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"

    table = pd.DataFrame({"setting": sel["setting"].to_numpy()})
    if "overrides" in sel:
        table["changes"] = sel["overrides"].map(
            lambda s: ", ".join(f"{k}={v}" for k, v in json.loads(s).items()) or "(base config)").to_numpy()
    for m in metrics:
        table[m] = [fmt(a, b) for a, b in zip(sel[f"{m}_mean"], sel[f"{m}_std"])]
    return table


def export_results(out: PathLike, dest: PathLike, prefix: str = "ablation_") -> list[Path]:
    """Copy the shareable artefacts of ``out`` to ``dest``: results, summary and training-loss
    CSVs, and the figures (R@1 per setting, R@1 vs K when the grid sweeps K, loss terms)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glscl_lite import plots

    out, dest = Path(out), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(out / "results.csv")
    metrics = load_train_metrics(out)
    written = []
    for name, frame in (("results", df), ("summary", summarize(df)), ("train_metrics", metrics)):
        path = dest / f"{prefix}{name}.csv"
        _write_csv(frame, path)
        written.append(path)
    n_test = df.loc[df["split"] == "test", "n_videos"].dropna()
    chance = 100.0 / float(n_test.iloc[0]) if len(n_test) else None
    figures = {"r1_per_setting": plots.plot_r1_per_setting(df, chance=chance),
               "loss_terms": plots.plot_loss_terms(metrics)}
    k_rows = sweep(df, "query_number")
    if "query_number" in df.columns and k_rows["query_number"].nunique() > 1:
        figures["r1_vs_k"] = plots.plot_r1_vs_k(k_rows, chance=chance)
    for name, fig in figures.items():
        path = dest / f"{prefix}{name}.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written
