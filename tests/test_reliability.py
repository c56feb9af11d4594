"""Issue 10: one writer per run, settings checked before anything is written, a full disk said
plainly, the one run-folder module (glscl_lite.runs)."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glscl_lite import runs, storage
from glscl_lite.cli import main as cli_main
from glscl_lite.config import Config, ConfigError, check_runnable, load_config
from glscl_lite.errors import UserError
from glscl_lite.train import train

FAST = ["epochs=1", "max_steps=2", "log_every=1", "batch_size=16", "eval_every=0"]


# ------------------------------------------------------------------------------- the runs module
def test_runs_imports_neither_train_nor_evaluate():
    code = ("import sys, glscl_lite.runs, glscl_lite.evaluate; "
            "print(sorted(m for m in ('glscl_lite.train',) if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # evaluate (and runs) no longer pull in train: the import loop is gone


def test_runs_layout_names():
    assert runs.checkpoint_path("R", "last").as_posix() == "R/checkpoints/last.pt"
    assert runs.checkpoint_path("R", "best").as_posix() == "R/checkpoints/best.pt"
    assert runs.checkpoint_path("R", "/x/y.pt").as_posix() == "/x/y.pt"
    assert runs.results_path("R").as_posix() == "R/results.json"
    assert runs.config_path("R").as_posix() == "R/config.json"


def test_finished_rule(tmp_path, smoke_overrides):
    cfg = load_config("smoke", smoke_overrides + FAST)
    run = tmp_path / "run"
    assert runs.finished(run, cfg) is None  # nothing there
    res = train(cfg, (), run, progress=False)
    assert runs.finished(run, cfg) == res
    assert runs.finished(run, cfg.replace(workers=0, log_every=5)) == res  # neutral keys
    assert runs.finished(run, cfg.replace(max_steps=3)) is None  # another length: train extends it
    with pytest.raises(UserError, match=r"holds a finished run with other settings \(beta=0.005, now 0.5\)"):
        runs.finished(run, cfg.replace(beta=0.5))
    # the run folder records its inputs: an edited annotation file is refused by name
    anno = cfg.resolve("MSRVTT_JSFUSION_test.csv")
    st = anno.stat()
    os.utime(anno, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        with pytest.raises(UserError, match=r"annotations MSRVTT_JSFUSION_test.csv: recorded .* now .*"
                                            r"rebuild it with: glscl-lite train"):
            runs.finished(run, cfg)
    finally:
        os.utime(anno, ns=(st.st_atime_ns, st.st_mtime_ns))


# ------------------------------------------------------------------------------------ one writer
def test_second_writer_is_refused_with_the_holders_pid(tmp_path, smoke_overrides, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from glscl_lite.runs import writer_lock\n"
                               "with writer_lock(sys.argv[1]):\n print('locked', flush=True); time.sleep(60)",
                               str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["train", "--config", "smoke", "--out", str(run)]
        for s in smoke_overrides + FAST:
            args += ["--set", s]
        assert cli_main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"glscl-lite: error: {run}: run folder: another process (pid {holder.pid}) is "
                       "writing it; wait for it to finish or use another output")
        assert not runs.metrics_path(run).exists() and not runs.config_path(run).exists()
    finally:
        holder.kill()
        holder.wait()
    assert train("smoke", smoke_overrides + FAST, run, progress=False)["steps"] == 2  # lock released
    assert not (run / runs.LOCK_FILE).exists()


# ------------------------------------------------------------------- settings before the folder
@pytest.mark.parametrize("bad, message", [
    ("lr=-1", "lr: must be > 0, got -1.0 (the learning rate)"),
    ("val_videos=0", "val_videos: must be >= 1, got 0 (model selection needs a validation split)"),
    ("workers=-1", "workers: must be >= 0, got -1"),
    ("temp=nan", "temp: must be a finite number, got nan"),
    ("epochs=0", "epochs: must be >= 1, got 0 (a run that trains zero steps is an error)"),
    ("max_steps=0", "max_steps: must be >= 1, got 0"),
    ("warmup_proportion=1.5", "warmup_proportion: must be < 1, got 1.5"),
    ("device=tpu", "device: 'tpu' is not one of auto, cpu, cuda, cuda:N"),
])
def test_bad_settings_fail_before_the_run_folder_is_touched(bad, message, tmp_path, smoke_overrides, capsys):
    run = tmp_path / "run"
    args = ["train", "--config", "smoke", "--out", str(run)]
    for s in smoke_overrides + FAST + [bad]:
        args += ["--set", s]
    assert cli_main(args) == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


def test_cuda_without_cuda_is_refused_before_the_folder(tmp_path, smoke_overrides, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = load_config("smoke", smoke_overrides + FAST + ["device=cuda"])
    with pytest.raises(ConfigError, match="device: 'cuda' but CUDA is not available on this machine"):
        check_runnable(cfg)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        train(cfg, (), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_failed_start_leaves_no_config_and_the_corrected_command_runs(tmp_path, smoke_overrides):
    run = tmp_path / "run"
    with pytest.raises(UserError, match="batch_size 4096 is larger than the"):
        train("smoke", smoke_overrides + FAST + ["batch_size=4096"], run, progress=False)
    assert not run.exists()
    run.mkdir()  # an existing empty folder stays, without config.json
    with pytest.raises(UserError, match="batch_size 4096"):
        train("smoke", smoke_overrides + FAST + ["batch_size=4096"], run, progress=False)
    assert list(run.iterdir()) == []
    assert train("smoke", smoke_overrides + FAST, run, progress=False)["steps"] == 2


# ------------------------------------------------------------------------------------ full disk
def test_checkpoint_on_a_full_disk_is_checked_up_front(tmp_path, smoke_overrides, monkeypatch):
    monkeypatch.setattr(storage, "free_bytes", lambda path: 4096)
    run = tmp_path / "run"
    with pytest.raises(storage.DiskFullError, match=r"checkpoints/last.pt: disk full: needs .* \(\d+ bytes\), "
                                                    r"4.0 KiB free on its filesystem"):
        train("smoke", smoke_overrides + FAST + ["checkpoint_every=1"], run, progress=False)
    assert [p.name for p in (run / "checkpoints").iterdir()] == []  # nothing half-written


def test_enospc_while_saving_a_checkpoint(tmp_path, monkeypatch):
    import torch

    def full(obj, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0: "
                           "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    target = tmp_path / "checkpoints" / "last.pt"
    target.parent.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (target.parent / f".last.pt.tmp-{dead}").write_bytes(b"left by a save killed with -9")
    with pytest.raises(storage.DiskFullError, match=r"last.pt: disk full: needs .* free"):
        runs.save_checkpoint({"model": {"w": torch.zeros(10)}}, target)
    assert list(target.parent.iterdir()) == []

    def enospc(obj, path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", enospc)
    with pytest.raises(storage.DiskFullError, match="disk full"):
        runs.save_checkpoint({"w": torch.zeros(3)}, target)
    assert list(target.parent.iterdir()) == []


# ------------------------------------------------------------------------------------ caches
try:
    from data_fixtures import make_corpus, write_video
except ImportError:  # tests/ imported as a package
    from tests.data_fixtures import make_corpus, write_video


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("reliability"), n_train=4, n_test=2, pattern="noise")


def test_frame_cache_of_other_videos_is_refused_by_name(tiny, tmp_path):
    import shutil

    from glscl_lite.config import Config
    from glscl_lite.data.cache import FrameCache, build_frame_cache
    from glscl_lite.data.splits import video_source
    from glscl_lite.provenance import ProvenanceError

    out = tmp_path / "frames"
    build_frame_cache(tiny.all_ids, tiny.video_dir, out, max_frames=4, image_size=16, workers=1, progress=False)
    FrameCache(out).check_source(tiny.video_dir)  # the same videos: fine
    other = tmp_path / "other-corpus"  # same ids, other pixels
    shutil.copytree(tiny.video_dir, other)
    write_video(other / "video2.mp4", 30, pattern="noise", seed=99)
    cfg = Config(anno_path=str(tiny.anno_dir), video_path=str(other), frame_cache=str(out), max_frames=4)
    with pytest.raises(ProvenanceError, match=r"frames \(frame cache\): built from other inputs than the ones in use "
                                              r"now \(videos video2: recorded \d+ bytes, mtime_ns \d+, now \d+ bytes, "
                                              r"mtime_ns \d+.*\); rebuild it with: glscl-lite cache frames --anno "
                                              r".*--videos .*other-corpus --out .*frames --size 16 --max-frames 4"):
        video_source(cfg, 16)
    shutil.rmtree(other)
    shutil.copytree(tiny.video_dir, other)  # copytree keeps times and sizes: the same inputs
    assert video_source(cfg, 16).image_size == 16


@pytest.mark.parametrize("flag, value, message", [("--size", "0", "--size 0: image_size must be a whole number >= 1"),
                                                  ("--max-frames", "0", "--max-frames 0: max_frames must be a whole "
                                                                        "number >= 1")])
def test_cache_frames_blames_the_argument(tiny, tmp_path, capsys, flag, value, message):
    out = tmp_path / "frames"
    assert cli_main(["cache", "frames", "--anno", str(tiny.anno_dir), "--videos", str(tiny.video_dir),
                     "--out", str(out), flag, value, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"glscl-lite: error: {message}"]
    assert list(tmp_path.iterdir()) == []


def test_frame_cache_on_a_full_disk(tiny, tmp_path, monkeypatch):
    from glscl_lite.data.cache import build_frame_cache

    need = 6 * 4 * 16 * 16 * 3
    monkeypatch.setattr(storage, "free_bytes", lambda path: 1000)
    with pytest.raises(storage.DiskFullError, match=rf"frames: disk full: needs .* \({need} bytes\), 1000 bytes free"):
        build_frame_cache(tiny.all_ids, tiny.video_dir, tmp_path / "frames", max_frames=4, image_size=16,
                          workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    def enospc(fd, offset, length):  # free space looked fine, then the allocation failed
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", enospc)
    with pytest.raises(storage.DiskFullError, match=rf"frames.u8: disk full: needs .* \({need} bytes\)"):
        build_frame_cache(tiny.all_ids, tiny.video_dir, tmp_path / "frames", max_frames=4, image_size=16,
                          workers=2, progress=False)
    assert list(tmp_path.iterdir()) == []  # no temp folder, no lock file


def test_second_cache_builder_is_refused(tiny, tmp_path):
    from glscl_lite.data.cache import build_frame_cache

    with storage.exclusive_lock(tmp_path / ".frames.lock", "x"):
        with pytest.raises(storage.LockedError, match=rf"frames \(frame cache\): another process \(pid {os.getpid()}\)"):
            build_frame_cache(tiny.all_ids, tiny.video_dir, tmp_path / "frames", max_frames=2, image_size=8,
                              workers=1, progress=False)


_KILL_SCRIPT = r"""
import os, sys, time
from pathlib import Path
marks = Path(sys.argv[2])

def hang(*args, **kwargs):
    (marks / str(os.getpid())).touch()
    time.sleep(120)

if sys.argv[1] == "cache":
    import glscl_lite.data.cache as m
    from glscl_lite.data.msrvtt import all_video_ids
    m.load_clip = hang
    m.build_frame_cache(all_video_ids(sys.argv[3]), sys.argv[4], sys.argv[5], max_frames=2, image_size=8,
                        workers=2, progress=False)
else:
    import glscl_lite.data.synthetic.corpus as m
    m.render_video = hang
    m.generate_corpus(sys.argv[5], n_videos=24, workers=2, progress=False)
"""


@pytest.mark.parametrize("command", ["cache", "synth"])
def test_workers_die_with_their_parent_and_stale_temps_go(tiny, tmp_path, command):
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, command, str(marks), str(tiny.anno_dir),
                             str(tiny.video_dir), str(out)])
    deadline = time.time() + 60
    while len(list(marks.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    workers = [int(p.name) for p in marks.iterdir()]
    assert len(workers) == 2, "the pool workers did not start"
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while any(storage.pid_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(storage.pid_alive(w) for w in workers), "pool workers outlived their parent"
    stale = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    assert stale == [f".out.tmp-{proc.pid}"]
    assert storage.remove_stale_temps(out) == [tmp_path / stale[0]]  # what the next build does first
    assert not (tmp_path / stale[0]).exists()


def test_synth_on_a_full_disk_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    import glscl_lite.data.synthetic.corpus as synthetic

    calls = []

    def encode(frames, path, fps):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")  # what PyAV raises (av.error.OSError)
        Path(path).write_bytes(b"x" * 1000)

    monkeypatch.setattr(synthetic, "encode_video", encode)
    out = tmp_path / "corpus"
    with pytest.raises(storage.DiskFullError, match=r"corpus: disk full: needs 16.4 KiB \(16800 bytes\), .* free"):
        synthetic.generate_corpus(out, n_videos=16, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []  # no corpus, no temp folder, no lock


# --------------------------------------------------------------------------------- data check
def test_data_check_reports_duplicates(tmp_path, capsys):
    import shutil

    c = make_corpus(tmp_path / "c", n_train=3, n_test=2)
    anno = c.anno_dir / "MSRVTT_data.json"
    assert cli_main(["data", "check", "--anno", str(c.anno_dir), "--videos", str(c.video_dir), "--quiet",
                     "--no-decode"]) == 0
    capsys.readouterr()
    data = json.loads(anno.read_text())
    data["videos"].append(dict(data["videos"][1]))                          # video1 listed twice
    data["sentences"].append({**data["sentences"][4], "caption": "another"})  # sen_id 4 again
    anno.write_text(json.dumps(data))
    test_csv = c.anno_dir / "MSRVTT_JSFUSION_test.csv"
    lines = test_csv.read_text().splitlines()
    test_csv.write_text("\n".join(lines + [lines[1]]) + "\n")               # first test row again
    assert cli_main(["data", "check", "--anno", str(c.anno_dir), "--videos", str(c.video_dir), "--quiet",
                     "--no-decode"]) == 1
    out = capsys.readouterr().out.splitlines()
    n = len(data["sentences"]) - 1
    assert out == [f"{anno}: sentences[{n}]: repeated sen_id 4 (first at sentences[4])",
                   f"{anno}: videos[{len(data['videos']) - 1}]: video video1 is listed again (first at videos[1])",
                   f"{test_csv}: row 3 (line 4): repeats row 1 (video video3, same caption)"]
    shutil.rmtree(tmp_path / "c")


def test_data_check_notes_a_variable_frame_rate_and_reads_a_1x1_video(tmp_path, capsys):
    from fractions import Fraction

    import av
    import numpy as np

    from glscl_lite.data.video import load_clip

    c = make_corpus(tmp_path / "c", n_train=3, n_test=2)
    vfr = c.video_dir / "video0.mp4"
    with av.open(str(vfr), "w") as out:  # 20 frames 50 ms apart, then 20 frames 250 ms apart
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for i in range(40):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            t += 50 if i < 20 else 250
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    one = c.video_dir / "video1.mp4"
    with av.open(str(one), "w") as out:  # a valid 1x1 video (decord opens it but cannot copy its frames)
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 1, 1, "yuv444p"
        for i in range(25):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((1, 1, 3), 9 * i, np.uint8), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    assert cli_main(["data", "check", "--anno", str(c.anno_dir), "--videos", str(c.video_dir), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    notes = [ln for ln in captured.err.splitlines() if ln.startswith("note:")]
    assert notes == [f"note: video0: {vfr}: variable frame rate (frame intervals 0.050-0.250 s); frames are "
                     "sampled at the average 7.34 fps, as the official loader does"]
    frames, mask = load_clip(one, max_frames=4, image_size=8)  # 2.5 s at 10 fps: frames 0, 10, 20
    assert mask.tolist() == [1, 1, 1, 0]
    assert [int(frames[k].mean()) for k in range(3)] == pytest.approx([0, 90, 180], abs=3)


# ------------------------------------------------------------------- provenance per artefact type
def _touch_later(path):
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    return st


def test_feature_cache_refuses_edited_annotations(tmp_path, smoke_overrides):
    from glscl_lite.features import FeatureCache, build_feature_cache
    from glscl_lite.provenance import ProvenanceError

    cfg = load_config("smoke", smoke_overrides + ["freeze_backbone=True"])
    build_feature_cache(cfg, tmp_path / "feats", progress=False)
    assert json.loads((tmp_path / "feats" / "meta.json").read_text())["bf16"] is False  # CPU: fp32 whatever precision says
    cache = FeatureCache(tmp_path / "feats")
    cache.check_provenance(cfg)
    anno = cfg.resolve("MSRVTT_data.json")
    st = _touch_later(anno)
    try:
        with pytest.raises(ProvenanceError, match=r"feats \(feature cache\): built from other inputs than the ones in "
                                                  r"use now \(annotations MSRVTT_data.json: recorded \d+ bytes, "
                                                  r"mtime_ns \d+, now \d+ bytes, mtime_ns \d+\); rebuild it with: "
                                                  r"glscl-lite cache features --config CONFIG"):
            train(cfg, FAST + [f"feature_cache={tmp_path / 'feats'}"], tmp_path / "run", progress=False)
    finally:
        os.utime(anno, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not (tmp_path / "run" / "config.json").exists()


def test_cache_features_keeps_a_matching_cache_and_refuses_another(tmp_path, smoke_overrides, capsys):
    """`glscl-lite cache features` over an existing cache: the same settings, inputs and CLIP weights
    keep it (no rebuild); other weights or settings are refused unless --force, which rebuilds."""
    out = tmp_path / "feats"
    sets = sum((["--set", o] for o in smoke_overrides + ["freeze_backbone=True", "pretrained=none"]), [])
    args = ["cache", "features", "--config", "smoke", "--out", str(out), "--quiet", *sets]

    def stamp():
        st = (out / "frame_feats.npy").stat()
        return st.st_ino, st.st_mtime_ns

    assert cli_main(args) == 0
    assert json.loads(capsys.readouterr().out)["reused"] is False
    built = stamp()
    assert cli_main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reused"] is True and "up to date" in captured.err
    assert stamp() == built
    assert cli_main(args + ["--set", "seed=1"]) == 2  # a random-init CLIP of another seed: other weights
    assert "CLIP weights differ" in capsys.readouterr().err
    assert cli_main(args + ["--set", "max_words=16"]) == 2
    err = capsys.readouterr().err
    assert "max_words: cache 32 vs config 16" in err and "pass --force to replace it" in err
    assert stamp() == built
    assert cli_main(args + ["--set", "max_words=16", "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["reused"] is False
    assert stamp() != built and json.loads((out / "meta.json").read_text())["max_words"] == 16


def test_stand_in_weights_and_ablation_cells_know_their_inputs(tmp_path, smoke_overrides):
    """Pretraining output: clip.pt records the checkpoint it was exported from; a cell trained on
    those weights records their sha256 and is refused when they change."""
    import torch

    from glscl_lite import ablation
    from glscl_lite.provenance import ProvenanceError

    base = load_config("smoke", smoke_overrides + ["epochs=1", "batch_size=16", "eval_every=0", "log_every=1"])
    weights = ablation.ensure_pretrained_clip(base, tmp_path / "pre", steps=2, progress=False)
    record = json.loads(ablation.weights_record(weights).read_text())["provenance"]
    assert record["checkpoint"]["sha256"] == __import__("hashlib").sha256(
        (tmp_path / "pre" / "checkpoints" / "best.pt").read_bytes()).hexdigest()
    ablation.check_exported_weights(weights, tmp_path / "pre")
    cfg = base.replace(pretrained=str(weights), max_steps=2)
    cell = tmp_path / "grid" / "runs" / "default__seed0"
    train(cfg, (), cell, progress=False)
    assert runs.finished(cell, cfg)["steps"] == 2
    best = tmp_path / "pre" / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=False)
    state["step"] = 99
    torch.save(state, best)  # the pretraining run changed after the export
    with pytest.raises(ProvenanceError, match=r"clip.pt: built from other inputs .*checkpoint .*best.pt: recorded "
                                              r"sha256 \w+, now sha256 \w+.*rebuild it with: "
                                              r"warmstart.export_clip_weights"):
        ablation.check_exported_weights(weights, tmp_path / "pre")
    ablation.export_clip_weights(tmp_path / "pre", weights)  # the same weights again, a new record
    state["model"] = {k: v * 1.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save(state, best)
    ablation.export_clip_weights(tmp_path / "pre", weights)  # other weights now
    with pytest.raises(ProvenanceError, match=r"default__seed0: built from other inputs than the ones in use now "
                                              r"\(pretrained .*clip.pt: recorded sha256 \w+, now sha256 \w+\); "
                                              r"rebuild it with: glscl-lite train"):
        runs.finished(cell, cfg)


def test_a_run_decoding_videos_on_the_fly_records_the_video_folder(tiny, tmp_path):
    from glscl_lite.config import Config
    from glscl_lite.provenance import ProvenanceError

    cfg = Config(anno_path=str(tiny.anno_dir), video_path=str(tiny.video_dir), val_videos=1)
    run = tmp_path / "run"
    runs.write_config(run, cfg)
    runs.write_provenance(run, cfg)
    assert runs.finished(run, cfg) is None  # same inputs, not finished
    video = tiny.video_dir / "video0.mp4"
    st = _touch_later(video)
    try:
        with pytest.raises(ProvenanceError, match=r"run: built from other inputs than the ones in use now "
                                                  r"\(videos.digest: recorded \"\w+\", now \"\w+\"\)"):
            runs.finished(run, cfg)
    finally:
        os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert runs.finished(run, cfg) is None


def test_one_bf16_decision_for_training_evaluation_and_feature_caches():
    import torch

    from glscl_lite.utils import use_bf16

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert use_bf16(Config(precision="auto"), cuda) and use_bf16(Config(precision="bf16"), cuda)
    assert not use_bf16(Config(precision="fp32"), cuda)          # a feature cache on a GPU honours fp32 too
    assert not any(use_bf16(Config(precision=p), cpu) for p in ("auto", "fp32", "bf16"))


def test_a_setting_on_one_side_only_is_a_difference():
    """Writers leave a later setting out while it has its default, so a key absent from a record means the
    default: present now (set) or present in the record (was set) must be refused, not silently passed."""
    from glscl_lite import provenance

    old = provenance.fingerprint(settings={"lr": 0.1})
    assert provenance.differences(old, provenance.fingerprint(settings={"lr": 0.1})) == []
    now_set = provenance.fingerprint(settings={"lr": 0.1, "twins": 0.5})
    assert provenance.differences(old, now_set) == ["settings.twins: recorded (absent: the default), now 0.5"]
    assert provenance.differences(now_set, old) == ["settings.twins: recorded 0.5, now (absent: the default)"]
    with pytest.raises(provenance.ProvenanceError, match=r"art: .*settings.twins.*rebuild it with: redo"):
        provenance.check(old, now_set, "art", "redo")
    # a whole part the record predates is still not compared
    assert provenance.differences(old, provenance.fingerprint(settings={"lr": 0.1}, frames={"n": 3})) == []
