"""Ablation grids (expansion, dedup, JSON form, errors), the end-to-end grid runner with resume and
skip, summaries, and the plot functions."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from glscl_lite import ablation, plots  # noqa: E402
from glscl_lite.ablation import (  # noqa: E402
    GridError, expand_grid, feature_cache_path, format_summary, load_grid, run_ablation, summarize, sweep,
)
from glscl_lite.cli import main as cli_main  # noqa: E402
from glscl_lite.config import Config, ConfigError  # noqa: E402
from glscl_lite.errors import UserError  # noqa: E402

FAST = ["epochs=1", "max_steps=3", "log_every=1", "batch_size=16", "eval_every=0"]


# ------------------------------------------------------------------------------------------ grids
def test_builtin_grids_expand_with_one_default():
    base = Config()
    names = {g: [s.name for s in expand_grid(g, base)] for g in ablation.grid_names()}
    assert names["icl_idl"] == ["default", "no_idl", "no_icl", "no_icl_no_idl"]
    assert names["queries"] == ["K1", "K2", "K4", "default", "K16"]
    assert names["sharing"] == ["default", "unshared_q", "unshared_dec", "unshared_q+unshared_dec"]
    assert names["icl_normalizer"] == ["default", "icl_norm_batch"]
    full = names["full"]
    assert full.count("default") == 1 and len(full) == len(set(full)) == 4 + 5 + 4 + 2 - 3
    by_name = {s.name: s for s in expand_grid("full", base)}
    assert by_name["default"].overrides == {} and by_name["default"].changed == {}
    assert by_name["no_icl_no_idl"].changed == {"icl": False, "idl": False}
    assert by_name["unshared_q"].changed == {"query_share": False}  # cross_att_share stays as base
    assert by_name["K16"].overrides == {"query_number": 16}
    assert ablation.swept_keys(list(by_name.values())) == [
        "icl", "idl", "query_number", "query_share", "cross_att_share", "icl_normalizer"]


def test_default_follows_the_base_config():
    names = [s.name for s in expand_grid("queries", Config(query_number=16))]
    assert names == ["K1", "K2", "K4", "K8", "default"]


def test_json_grid_file_and_mapping(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"base": {}, "beta_hi": {"beta": "0.02"}, "same_as_base": {"alpha": 1e-4},
                                "lam0": {"loss2_weight": 0}}))
    settings = expand_grid(path, Config())
    assert [s.name for s in settings] == ["default", "beta_hi", "lam0"]  # same_as_base is a duplicate
    assert settings[1].overrides == {"beta": 0.02} and isinstance(settings[1].overrides["beta"], float)
    assert [s.name for s in expand_grid({"a": {"query_number": 2}}, Config())] == ["a"]
    assert load_grid("icl_normalizer")["icl_norm_batch"] == {"icl_normalizer": "batch"}


@pytest.mark.parametrize("grid, message", [
    ("nope", "unknown grid 'nope'; built-in grids: icl_idl, queries, sharing, icl_normalizer, full"),
    ({"x": {"quer_number": 4}}, "unknown config key 'quer_number'; valid keys: anno_path"),
    ({"x": {"query_number": 0}}, "query_number: must be >= 1, got 0"),
    ({"x": {"icl_normalizer": "mean"}}, "'mean' is not one of official, batch"),
    ({"x": 4}, "setting 'x' must be an object"),
    ({}, "non-empty JSON object"),
    ({"a/b": {}}, "setting name 'a/b'"),
    ({"a__b": {}}, "no '__'"),
    ({"x": {"seed": 3}}, "seed cannot be set by a grid"),
    ({"x": {"query_number": 2}, "default": {"query_number": 4}}, "'default' is reserved for the base config"),
])
def test_bad_grids_raise_config_errors(grid, message):
    with pytest.raises(ConfigError) as err:
        expand_grid(grid, Config())
    assert message in str(err.value)
    assert isinstance(err.value, GridError)


def test_bad_grid_files(tmp_path):
    with pytest.raises(GridError, match="grid file not found"):
        load_grid(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GridError, match="not valid JSON"):
        load_grid(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(GridError, match="non-empty JSON object"):
        load_grid(bad)


def test_feature_cache_mode_refuses_settings_that_change_the_cache():
    with pytest.raises(GridError, match="changes max_frames"):
        expand_grid({"x": {"max_frames": 6}}, Config(), feature_cache=True)
    assert expand_grid({"x": {"max_frames": 6}}, Config())[0].changed == {"max_frames": 6}


def test_feature_cache_path_per_seed_only_for_random_weights(tmp_path):
    assert feature_cache_path(tmp_path, Config(pretrained=None), 2) == tmp_path / "seed2"
    assert feature_cache_path(tmp_path, Config(pretrained="openai"), 2) == tmp_path


# -------------------------------------------------------------------------------------- analysis
def _hand_made() -> pd.DataFrame:
    rows = []
    r1 = {("default", "t2v"): [10.0, 20.0, 30.0], ("K1", "t2v"): [4.0, 4.0, 7.0],
          ("default", "v2t"): [1.0, 2.0, 3.0], ("K1", "v2t"): [5.0, 5.0, 5.0]}
    for (setting, direction), values in r1.items():
        for seed, v in enumerate(values):
            rows.append({"setting": setting, "seed": seed, "split": "test", "direction": direction,
                         "R1": v, "R5": 2 * v, "R10": 3 * v, "MdR": 50 - v, "MnR": 60 - v, "n_videos": 100,
                         "query_number": 8 if setting == "default" else 1,
                         "overrides": "{}" if setting == "default" else '{"query_number": 1}',
                         "steps": 10, "best_step": 10, "seconds": 1.0, "run": f"runs/{setting}__seed{seed}"})
    return pd.DataFrame(rows)


def test_summarize_mean_and_sample_std():
    s = summarize(_hand_made())
    assert list(s["setting"]) == ["default", "default", "K1", "K1"]  # order of appearance
    row = s[(s["setting"] == "default") & (s["direction"] == "t2v")].iloc[0]
    assert row["R1_mean"] == pytest.approx(20.0) and row["R1_std"] == pytest.approx(10.0)  # ddof=1
    assert row["R5_mean"] == pytest.approx(40.0) and row["MdR_mean"] == pytest.approx(30.0)
    assert row["n_seeds"] == 3 and row["query_number"] == 8
    k1 = s[(s["setting"] == "K1") & (s["direction"] == "t2v")].iloc[0]
    assert k1["R1_mean"] == pytest.approx(5.0) and k1["R1_std"] == pytest.approx(3 ** 0.5)
    v = s[(s["setting"] == "K1") & (s["direction"] == "v2t")].iloc[0]
    assert v["R1_std"] == 0.0
    one_seed = summarize(_hand_made().query("seed == 0"))
    assert one_seed["R1_std"].isna().all() and (one_seed["n_seeds"] == 1).all()
    table = format_summary(s)
    assert table.loc[0, "R1"] == "20.0 ± 10.0" and table.loc[1, "changes"] == "query_number=1"
    assert format_summary(one_seed).loc[0, "R1"] == "10.0"


def test_sweep_selects_settings_that_change_only_that_key():
    df = _hand_made()
    df.loc[df["setting"] == "K1", "overrides"] = '{"icl": false, "query_number": 1}'
    assert set(sweep(df, "query_number")["setting"]) == {"default"}
    assert set(sweep(_hand_made(), "query_number")["setting"]) == {"default", "K1"}


# ----------------------------------------------------------------------------------------- plots
def test_plot_r1_per_setting_one_bar_per_setting():
    fig = plots.plot_r1_per_setting(_hand_made(), chance=1.0)
    ax = fig.axes[0]
    assert len(ax.patches) == 2
    assert [p.get_height() for p in ax.patches] == pytest.approx([20.0, 5.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["default", "K1"]
    assert len(ax.collections[-1].get_offsets()) == 6  # one dot per seed and setting
    plt.close(fig)
    with pytest.raises(ValueError, match="no rows"):
        plots.plot_r1_per_setting(_hand_made(), split="val")


def test_plot_r1_vs_k_one_line_per_direction():
    fig = plots.plot_r1_vs_k(_hand_made())
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2
    assert list(lines[0].get_xdata()) == [1, 8] and list(lines[0].get_ydata()) == pytest.approx([5.0, 20.0])
    plt.close(fig)


def test_plot_loss_terms_per_setting_and_single_run():
    recs = []
    for setting, has_icl in (("default", True), ("no_icl", False)):
        for seed in (0, 1):
            for step in (1, 2, 3):
                r = {"setting": setting, "seed": seed, "step": step, "split": "train",
                     "info_nce": 3.0 - step * 0.1 - seed, "idl": 1e-5}
                if has_icl:
                    r["icl"] = 0.5
                recs.append(r)
    df = pd.DataFrame(recs)
    fig = plots.plot_loss_terms(df)
    assert [ax.get_title() for ax in fig.axes] == ["info_nce", "icl", "idl"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 1, 2]  # no icl line for no_icl
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == pytest.approx([2.4, 2.3, 2.2])  # seed mean
    plt.close(fig)
    single = plots.plot_loss_terms(df[df["setting"] == "default"].drop(columns="setting"), terms=("info_nce",))
    assert len(single.axes) == 1 and len(single.axes[0].get_lines()) == 1
    plt.close(single)
    with pytest.raises(ValueError, match="none of the loss terms"):
        plots.plot_loss_terms(df, terms=("nope",))


def test_plot_loss_terms_of_other_heads_wrap_into_rows():
    """GLCCL's csc and EERCF's weak/strong InfoNCE and Pearson terms get panels of their own."""
    recs = [{"setting": "glccl", "seed": 0, "step": s, "split": "train", "info_nce": 3.0, "csc": 0.01}
            for s in (1, 2)]
    recs += [{"setting": "eercf", "seed": 0, "step": s, "split": "train", "info_nce_weak": 2.0,
              "info_nce_strong": 0.6, "pearson": 0.008} for s in (1, 2)]
    fig = plots.plot_loss_terms(pd.DataFrame(recs))
    assert [ax.get_title() for ax in fig.axes] == ["info_nce", "csc", "info_nce_weak", "info_nce_strong",
                                                   "pearson"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1, 1, 1, 1]
    assert fig.axes[4].get_subplotspec().rowspan.start == 1  # 4 panels per row at most
    plt.close(fig)


# ------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def grid_run(tmp_path_factory, smoke_overrides):
    """A 2-setting x 1-seed grid in feature-cache mode, a few steps per cell, run through the CLI.

    Returns the output folder, the CLI arguments and the same call as run_ablation keywords."""
    out = tmp_path_factory.mktemp("ablation") / "abl"
    grid = out.parent / "grid.json"
    grid.write_text(json.dumps({"no_icl": {"icl": False}, "base": {}}))
    overrides = smoke_overrides + FAST
    args = ["ablate", "--config", "smoke", *sum((["--set", s] for s in overrides), []), "--grid", str(grid),
            "--seeds", "0", "--out", str(out), "--feature-cache", str(out / "features")]
    assert cli_main(args + ["--quiet"]) == 0
    kwargs = dict(config="smoke", overrides=overrides, grid=grid, seeds=[0], out=out,
                  feature_cache=out / "features", progress=False)
    return out, args, kwargs


def test_grid_run_writes_tidy_results(grid_run):
    out, _, _ = grid_run
    df = pd.read_csv(out / "results.csv")
    assert list(df.columns) == ["setting", "seed", "split", "direction", "R1", "R5", "R10", "MdR", "MnR",
                                "n_videos", "icl", "overrides", "steps", "best_step", "seconds", "run"]
    assert len(df) == 2 * 1 * 2 * 2
    assert list(df["setting"].unique()) == ["no_icl", "default"]  # grid order
    assert set(zip(df["split"], df["direction"])) == {(s, d) for s in ("val", "test") for d in ("t2v", "v2t")}
    assert (df["steps"] == 3).all() and (df["best_step"] == 3).all() and (df["seconds"] > 0).all()
    assert df.groupby("setting")["icl"].first().to_dict() == {"default": True, "no_icl": False}
    assert df["R1"].between(0, 100).all() and (df["MdR"] >= 1).all()
    assert (df.loc[df["split"] == "test", "n_videos"] == 8).all()
    for _, row in df.iterrows():  # the CSV holds exactly what each run folder reports
        res = json.loads((out / row["run"] / "results.json").read_text())
        assert res[row["split"]][row["direction"]]["R1"] == pytest.approx(row["R1"])
    cfg = json.loads((out / "runs" / "no_icl__seed0" / "config.json").read_text())
    assert cfg["icl"] is False and cfg["freeze_backbone"] is True and cfg["seed"] == 0
    # pretrained (shipped stand-in) CLIP: one cache serves every seed (random CLIP: one per seed)
    assert cfg["feature_cache"] == str(out / "features")
    assert (out / "features" / "meta.json").is_file()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 * 2 * 2 and (summary["n_seeds"] == 1).all()
    metrics = ablation.load_train_metrics(out)
    assert list(metrics["setting"].unique()) == ["no_icl", "default"]  # grid order, not folder order
    assert metrics.loc[metrics["setting"] == "no_icl", "icl"].isna().all()
    assert sorted(metrics.loc[metrics["setting"] == "default", "step"]) == [1, 2, 3]


def test_rerun_skips_finished_cells(grid_run, monkeypatch, capsys):
    out, args, _ = grid_run
    before = (out / "results.csv").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}

    def no_training(*a, **k):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr("glscl_lite.train.train", no_training)
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert "[1/2] no_icl__seed0: skipped (finished)" in printed and "[2/2] default__seed0: skipped" in printed
    assert (out / "results.csv").read_text() == before  # same rows, same seconds
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_rerun_resumes_an_unfinished_cell(grid_run, tmp_path):
    out, _, kwargs = grid_run
    before = pd.read_csv(out / "results.csv")
    (out / "runs" / "no_icl__seed0" / "results.json").unlink()  # as if killed before the final evaluation
    seconds = json.loads((out / "runs" / "no_icl__seed0" / "ablation.json").read_text())["seconds"]
    df = run_ablation(**kwargs, export=tmp_path / "export")
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), before.drop(columns="seconds"))
    info = json.loads((out / "runs" / "no_icl__seed0" / "ablation.json").read_text())
    assert info["finished"] is True and info["seconds"] > seconds
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [
        "ablation_loss_terms.png", "ablation_r1_per_setting.png", "ablation_results.csv",
        "ablation_summary.csv", "ablation_train_metrics.csv"]


def test_a_finished_cell_with_other_settings_is_an_error(grid_run):
    out, _, kwargs = grid_run
    with pytest.raises(UserError, match="holds a finished run with other settings .beta."):
        run_ablation(**{**kwargs, "overrides": kwargs["overrides"] + ["beta=0.5"], "grid": {"base": {}}})


def test_cli_rejects_a_bad_grid(tmp_path, capsys):
    assert cli_main(["ablate", "--config", "smoke", "--grid", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown grid 'nope'" in capsys.readouterr().err


def test_pretrained_clip_stand_in(tmp_path, smoke_overrides, monkeypatch):
    import torch

    from glscl_lite.config import load_config
    from glscl_lite.model.backbone import CLIPBackbone

    base = load_config("smoke", smoke_overrides + ["epochs=1", "batch_size=16", "eval_every=0", "log_every=1"])
    weights = ablation.ensure_pretrained_clip(base, tmp_path / "pre", steps=2, progress=False)
    assert weights == tmp_path / "pre" / "clip.pt"
    assert json.loads((tmp_path / "pre" / "results.json").read_text())["steps"] == 2
    best = torch.load(tmp_path / "pre" / "checkpoints" / "best.pt", weights_only=False)["model"]
    loaded = CLIPBackbone(base.base_encoder, str(weights), base.text_mask).clip.state_dict()
    assert loaded.keys() == {k[len("backbone.clip."):] for k in best if k.startswith("backbone.clip.")}
    assert all(torch.equal(loaded[k], best["backbone.clip." + k]) for k in loaded)
    random_init = CLIPBackbone(base.base_encoder, None, base.text_mask).clip.state_dict()
    assert not torch.equal(random_init["visual.proj"], loaded["visual.proj"])  # it did train

    monkeypatch.setattr("glscl_lite.train.train", lambda *a, **k: pytest.fail("finished pretraining rerun"))
    assert ablation.ensure_pretrained_clip(base, tmp_path / "pre", steps=2, progress=False) == weights
    with pytest.raises(UserError, match="pretraining run of 2 steps, not 1"):
        ablation.ensure_pretrained_clip(base, tmp_path / "pre", steps=1, progress=False)


def test_a_grid_of_heads_shares_one_cache_with_patch_tokens(grid_run, tmp_path):
    """An EERCF cell makes the runner cache patch tokens; every head then trains from that cache.
    A cache built without patches is refused by name instead of failing inside a cell."""
    _, _, kwargs = grid_run
    grid = {"glscl": {}, "eercf": {"head": "eercf"}, "meanp": {"head": "meanp"}}
    df = run_ablation(**{**kwargs, "grid": grid, "out": tmp_path / "heads", "feature_cache": tmp_path / "feats"})
    assert list(df["setting"].unique()) == ["default", "eercf", "meanp"]
    assert (tmp_path / "feats" / "patch_feats.npy").is_file()
    for cell in ("eercf__seed0", "meanp__seed0"):
        cfg = json.loads((tmp_path / "heads" / "runs" / cell / "config.json").read_text())
        assert cfg["head"] == cell.split("__")[0] and cfg["feature_cache"] == str(tmp_path / "feats")
    assert df["R1"].between(0, 100).all() and (df["steps"] == 3).all()
    with pytest.raises(UserError, match="no patch tokens"):  # the grid_run cache has none
        run_ablation(**{**kwargs, "grid": grid, "out": tmp_path / "heads2"})
    other = Config().replace(anno_path=str(tmp_path / "another-corpus"))
    with pytest.raises(UserError, match=r"settings.anno_path: recorded .*, now .*another-corpus.*rebuild it with"):
        ablation.ensure_feature_cache(other, tmp_path / "feats")
