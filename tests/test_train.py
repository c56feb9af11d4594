"""Training engine: run layout, determinism, exact resume after kill -9, bad input, DDP, features."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from glscl_lite.cli import main as cli_main
from glscl_lite.config import ConfigError, load_config
from glscl_lite.errors import UserError
from glscl_lite.model import GLSCL
from glscl_lite.train import TrainingError, load_checkpoint_into, read_metrics, train

FAST = ["epochs=1", "max_steps=8", "log_every=1", "checkpoint_every=2", "batch_size=16"]


def _strip(records):
    """metrics.jsonl without wall-clock fields."""
    drop = {"clips_per_s", "seconds_feat", "seconds_match"}
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, smoke_overrides):
    out = tmp_path_factory.mktemp("runs") / "ref"
    train("smoke", smoke_overrides + FAST, out, progress=False)
    return out


def test_run_folder_layout(reference_run):
    for name in ("config.json", "metrics.jsonl", "results.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (reference_run / name).is_file(), name
    records = read_metrics(reference_run)
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == list(range(1, 9))
    assert any(r["split"] == "val" for r in records)
    res = json.loads((reference_run / "results.json").read_text())
    assert res["steps"] == 8 and set(res["test"]["t2v"]) == {"R1", "R5", "R10", "MdR", "MnR"}
    assert res["test"]["n_texts"] == res["test"]["n_videos"] > 0
    assert json.loads((reference_run / "config.json").read_text())["base_encoder"] == "glscl-synthetic-hybrid"


def test_two_seeded_runs_are_identical(reference_run, tmp_path, smoke_overrides):
    out = tmp_path / "again"
    train("smoke", smoke_overrides + FAST, out, progress=False)
    assert _strip(read_metrics(out)) == _strip(read_metrics(reference_run))
    a = torch.load(reference_run / "checkpoints/last.pt", weights_only=False)["model"]
    b = torch.load(out / "checkpoints/last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_kill_minus_9_then_rerun_gives_the_same_result(reference_run, tmp_path, smoke_overrides):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "glscl_lite", "train", "--config", "smoke", "--out", str(out)]
    for s in smoke_overrides + FAST:
        cmd += ["--set", s]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    ckpt = out / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=False)["step"]
    assert 0 < killed_at < 8
    assert not (out / "results.json").exists()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    assert rc.returncode == 0, rc.stderr[-2000:]
    assert json.loads((out / "results.json").read_text()) == json.loads((reference_run / "results.json").read_text())
    assert _strip(read_metrics(out)) == _strip(read_metrics(reference_run))


def test_eval_cli_writes_json(reference_run, tmp_path, capsys):
    path = tmp_path / "eval.json"
    assert cli_main(["eval", "--run", str(reference_run), "--json", str(path)]) == 0
    capsys.readouterr()
    res = json.loads(path.read_text())
    assert set(res["t2v"]) == {"R1", "R5", "R10", "MdR", "MnR"} and set(res["v2t"]) == set(res["t2v"])
    expected = json.loads((reference_run / "results.json").read_text())["test"]
    assert res["t2v"] == expected["t2v"]
    assert cli_main(["eval", "--run", str(reference_run), "--split", "val", "--dsl"]) == 0
    assert "t2v_dsl" in json.loads(capsys.readouterr().out)


def test_eval_cli_ties_switch_reaches_the_metrics(reference_run, capsys, monkeypatch):
    import glscl_lite.evaluate as ev

    seen = []
    real = ev.evaluate_retrieval
    monkeypatch.setattr(ev, "evaluate_retrieval", lambda *a, **k: seen.append(k["ties"]) or real(*a, **k))
    for ties in ("pessimistic", "official"):
        assert cli_main(["eval", "--run", str(reference_run), "--ties", ties]) == 0
        assert json.loads(capsys.readouterr().out)["ties"] == ties
    assert seen == ["pessimistic", "official"]
    with pytest.raises(SystemExit):  # argparse: invalid choice
        cli_main(["eval", "--run", str(reference_run), "--ties", "random"])
    assert "invalid choice: 'random'" in capsys.readouterr().err


def test_bad_set_key_and_preset_errors(capsys, tmp_path):
    assert cli_main(["train", "--config", "smoke", "--set", "qurey_number=4", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'qurey_number'" in err and "query_number" in err
    with pytest.raises(ConfigError, match="unknown preset 'papr'.*paper"):
        load_config("papr")
    with pytest.raises(ConfigError, match="query_number: expected an integer"):
        load_config("smoke", ["query_number=eight"])


def test_resume_with_other_settings_is_refused(reference_run, smoke_overrides):
    with pytest.raises(UserError, match="other settings.*query_number"):
        train("smoke", smoke_overrides + FAST + ["query_number=4"], reference_run, progress=False)


def test_checkpoint_errors(reference_run, tmp_path):
    cfg = load_config("smoke", ["query_number=4"])
    with pytest.raises(UserError, match="another model: query_number=8"):
        load_checkpoint_into(GLSCL(cfg), reference_run, "best")
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint_into(GLSCL(cfg), tmp_path, "best")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_checkpoint_into(GLSCL(cfg), tmp_path, str(bad))


def test_non_finite_loss_stops_with_step_and_terms(monkeypatch, tmp_path, smoke_overrides):
    from glscl_lite.model.glscl import GLSCLHead

    original = GLSCLHead.losses
    calls = {"n": 0}

    def poisoned(self, text, video, logit_scale):
        out = original(self, text, video, logit_scale)
        calls["n"] += 1
        if calls["n"] == 3:
            out["icl"] = out["icl"] * float("nan")
            out["loss"] = out["info_nce"] + out["icl"] + out["idl"]
        return out

    monkeypatch.setattr(GLSCLHead, "losses", poisoned)
    with pytest.raises(TrainingError, match=r"non-finite loss at step 3 .*'icl': nan"):
        train("smoke", smoke_overrides + FAST, tmp_path / "nan", progress=False)


def test_torchrun_two_processes_match_one_process(tmp_path, smoke_overrides):
    """gloo, 2 ranks x 8 = one process with batch 16: same loss (all-gather semantics, spec 7.4)."""
    sets = smoke_overrides + ["epochs=1", "max_steps=2", "log_every=1", "batch_size=16", "lim_dropout=0"]
    single = tmp_path / "single"
    train("smoke", sets, single, progress=False)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "glscl_lite", "train", "--config", "smoke", "--out", str(tmp_path / "ddp")]
    for s in sets:
        cmd += ["--set", s]
    rc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                        timeout=300)
    assert rc.returncode == 0, rc.stderr[-3000:]
    one = [r for r in read_metrics(single) if r["split"] == "train"]
    two = [r for r in read_metrics(tmp_path / "ddp") if r["split"] == "train"]
    assert [r["step"] for r in two] == [1, 2]
    for a, b in zip(one, two):
        for k in ("loss", "info_nce", "icl", "idl"):
            assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-7), (a["step"], k)


def test_feature_cache_mode(tmp_path, smoke_overrides):
    from glscl_lite.features import FeatureCache, build_feature_cache

    cfg = load_config("smoke", smoke_overrides + ["freeze_backbone=True"])
    feats = tmp_path / "features"
    meta = build_feature_cache(cfg, feats, progress=False)
    cache = FeatureCache(feats)
    assert meta["n_videos"] == len(cache.video_ids) and meta["n_captions"] == len(cache.captions)
    # cached CLIP outputs equal the backbone's (fp16 storage)
    torch.manual_seed(cfg.seed)
    model = GLSCL(cfg).eval()
    from glscl_lite.data.cache import FrameCache
    from glscl_lite.data.video import normalize_frames

    fc = FrameCache(cfg.frame_cache)
    vid = cache.video_ids[0]
    frames, mask = fc.get(vid)
    with torch.no_grad():
        ref = model.backbone.encode_video(normalize_frames(torch.from_numpy(frames.copy())[None],
                                                           torch.from_numpy(mask)[None]))
    got = cache.videos(cache.video_rows([vid]))["frame_feats"].float()
    torch.testing.assert_close(got, ref, atol=2e-2, rtol=2e-2)
    res = train(cfg, FAST + [f"feature_cache={feats}"], tmp_path / "run", progress=False)
    assert res["steps"] == 8
    # the test numbers of the run are those of a fresh evaluation of its best checkpoint from the cache
    from glscl_lite.evaluate import evaluate_run
    again = evaluate_run(tmp_path / "run", split="test")
    assert again["t2v"] == pytest.approx(res["test"]["t2v"]) and again["v2t"] == pytest.approx(res["test"]["v2t"])
    with pytest.raises(UserError, match="freeze_backbone=True"):
        train(cfg.replace(freeze_backbone=False), FAST + [f"feature_cache={feats}"], tmp_path / "run2",
              progress=False)


def test_out_of_memory_gives_a_batch_size_hint(monkeypatch, tmp_path, smoke_overrides):
    def oom(self, batch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(GLSCL, "forward", oom)
    with pytest.raises(TrainingError, match=r"out of GPU memory at batch_size=16 .*batch_size=8"):
        train("smoke", smoke_overrides + FAST, tmp_path / "oom", progress=False)


def test_metrics_log_survives_a_line_torn_by_a_kill(tmp_path):
    from glscl_lite.train import MetricsLog

    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in (1, 2, 3):
        log.write({"step": step, "loss": 1.0 / step})
    with open(log.path, "a") as f:
        f.write('{"step": 4, "lo')  # the append that kill -9 interrupted
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    log.truncate_after(2)  # resume from the step-2 checkpoint
    assert log.path.read_text() == '{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n'
    log.truncate_after(0)  # a restart without a checkpoint starts the log afresh
    assert log.path.read_text() == ""
    log.path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl, line 2: not a JSON record"):
        read_metrics(tmp_path)


def test_schedule_steps_drop_last_official_schedule_length_and_cap():
    from glscl_lite.config import Config
    from glscl_lite.train import schedule_steps

    cfg = Config(batch_size=4, epochs=10, schedule_epochs=5)
    assert schedule_steps(cfg, 18) == (4, 20, 40)        # 18 // 4 full batches; cosine over 5 epochs (S11)
    assert schedule_steps(cfg.replace(schedule_epochs=None), 18) == (4, 40, 40)
    assert schedule_steps(cfg.replace(max_steps=7), 18) == (4, 20, 7)
    with pytest.raises(UserError, match="batch_size 4 is larger than the 3 training pairs"):
        schedule_steps(cfg, 3)
