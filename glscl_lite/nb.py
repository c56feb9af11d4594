"""Helpers shared by the notebooks: get the data, get a trained run -- cached when present.

Every notebook's parameters cell defines ``smoke``, ``data_dir`` (the corpus, MSR-VTT layout) and
``work_dir`` (runs and caches).  ``ensure_corpus`` writes the synthetic corpus when ``data_dir``
is empty; ``ensure_run`` loads a finished run when its folder holds one, else trains it (so a
long GPU run is done once and every later notebook reuses it).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from glscl_lite.config import Config, load_preset
from glscl_lite.utils import PathLike

SMOKE_VIDEOS = 48
FULL_VIDEOS = 1000


def ensure_corpus(data_dir: PathLike, smoke: bool = True, n_videos: Optional[int] = None, seed: int = 0) -> Path:
    """``data_dir`` as is when it holds real MSR-VTT annotations; otherwise a synthetic corpus of
    the requested size there (an existing one of that size is reused, one of another size is
    regenerated: the smoke corpus is too small for ``smoke=False``)."""
    data_dir = Path(data_dir)
    anno = data_dir / "MSRVTT_data.json"
    if anno.exists():
        info = json.loads(anno.read_text()).get("info", {})
        if info.get("generator", {}).get("name") != "glscl_lite.data.synthetic":
            return data_dir  # real data: never touched
        if n_videos is None and smoke:
            return data_dir  # any synthetic corpus serves a smoke run
    from glscl_lite.data.synthetic import generate_corpus

    generate_corpus(data_dir, n_videos=n_videos or (SMOKE_VIDEOS if smoke else FULL_VIDEOS), seed=seed,
                    progress=False)
    return data_dir


def smoke_config(data_dir: PathLike, smoke: bool = True, **overrides: Any) -> Config:
    """The ``smoke`` preset pointed at ``data_dir`` (the shipped stand-in CLIP and a GLSCL head,
    64-px frame cache inside it).

    With ``smoke=False`` it trains longer (more epochs, eval every epoch) -- still the small model,
    for a CPU; use the ``paper`` preset on a GPU box for the real thing.
    """
    data_dir = Path(data_dir)
    cfg = load_preset("smoke").replace(anno_path=str(data_dir), video_path=str(data_dir / "videos"),
                                       frame_cache=str(data_dir / "frames-64"))
    if not smoke:
        cfg = cfg.replace(epochs=10, schedule_epochs=None, lr=1e-3, batch_size=32, val_videos=40)
    return cfg.replace(**overrides) if overrides else cfg


def run_settings(data_dir: PathLike, work_dir: PathLike, smoke: bool = True, preset: Optional[str] = None,
                 run_name: Optional[str] = None, video_dir: Optional[PathLike] = None,
                 frame_cache: Optional[PathLike] = None, max_steps: Optional[int] = None,
                 pretrained: Optional[str] = None, device: Optional[str] = None,
                 run_dir: Optional[PathLike] = None) -> tuple[Config, Path]:
    """Config and run folder of "the trained run" that notebooks 06 and 07 (and 03/04) share.

    ``preset=None``: the tiny CPU config of :func:`smoke_config`, folder ``smoke_run`` (smoke) or
    ``tiny_run``; else the named preset pointed at ``data_dir``, folder ``<preset>_run``.
    ``run_name`` overrides the folder name; ``video_dir`` / ``frame_cache`` point at real videos and
    a frame cache; ``pretrained`` / ``device`` as in :func:`series_config`; ``run_dir`` is the
    folder itself (wins over ``work_dir`` / ``run_name``).  ``max_steps`` defaults to 16 when
    ``smoke`` (keeps CI fast), else the full schedule.
    """
    cfg = series_config(data_dir, smoke, preset, pretrained, video_dir, frame_cache, device)
    name = run_name or (f"{preset}_run" if preset else ("smoke_run" if smoke else "tiny_run"))
    steps = max_steps if max_steps is not None else (16 if smoke else None)
    if steps:  # max_steps and log_every are run-time keys: they do not change the run's settings
        cfg = cfg.replace(max_steps=steps, log_every=2 if smoke else cfg.log_every)
    return cfg, Path(run_dir) if run_dir else Path(work_dir) / name


def ensure_run(cfg: Config, run_dir: PathLike, progress: bool = False) -> dict:
    """Results of the run in ``run_dir``: loaded when it finished before with the same settings
    (training length included), else trained -- or resumed: a different ``max_steps`` extends (or
    re-ends) the run in the same folder, so use a new folder to keep the old run."""
    from glscl_lite.runs import finished
    from glscl_lite.train import train

    results = finished(run_dir, cfg)  # refuses a folder of other settings or inputs
    if results is not None:
        return results
    # trains, resumes, or extends a finished run of another length in the same folder
    return train(cfg, (), run_dir, progress=progress)


# ------------------------------------------------------------------------ the series' parameters
SERIES_PARAMETERS: dict[str, tuple[Any, str]] = {
    "smoke": (True, "True: tiny settings, seconds on a CPU (CI); False: the real thing"),
    "preset": (None, 'None: the tiny CPU config; or "paper", "paper-readme", "glccl", ... (GPU box)'),
    "pretrained": (None, 'CLIP weights. None: the config\'s own; "openai", a checkpoint file, or "random"'),
    "data_dir": ("../data/synthetic", "MSR-VTT annotation folder; a synthetic corpus is written there when empty"),
    "video_dir": (None, "None: <data_dir>/videos (real MSR-VTT: .../MSRVTT/videos/all)"),
    "frame_cache": (None, "decoded-frame cache folder; None: the config's (tiny: <data_dir>/frames-64)"),
    "run_dir": (None, "run to read or train; None: <work_dir>/<smoke_run | tiny_run | PRESET_run>"),
    "device": (None, 'None: the config\'s (tiny: "cpu"; presets: "auto" = cuda if present); or "cuda:1"'),
    "work_dir": ("../runs", "runs and caches shared by the series"),
}
"""The parameters every notebook takes (first lines of its ``parameters`` cell): name -> (default,
meaning).  ``glscl-lite notebooks -p NAME=VALUE`` passes them to the whole series; a notebook that
does not use one says so in its comment."""

RANDOM_WEIGHTS = ("random", "none", "None", "")


def parameters_cell(extra: str = "") -> str:
    """Source of the standard ``parameters`` cell (the shared block, then ``extra`` lines)."""
    width = max(len(f"{k} = {v[0]!r}") for k, v in SERIES_PARAMETERS.items()) + 2
    lines = []
    for k, (default, meaning) in SERIES_PARAMETERS.items():
        value = json.dumps(default) if isinstance(default, str) else repr(default)
        lines.append(f"{k} = {value}".ljust(width) + f"# {meaning}")
    return "\n".join(lines) + ("\n" + extra.rstrip("\n") if extra else "")


def series_config(data_dir: PathLike, smoke: bool = True, preset: Optional[str] = None,
                  pretrained: Optional[str] = None, video_dir: Optional[PathLike] = None,
                  frame_cache: Optional[PathLike] = None, device: Optional[str] = None, **overrides: Any) -> Config:
    """The config the shared parameters describe: ``preset`` pointed at ``data_dir`` (or the tiny
    CPU config of :func:`smoke_config` when ``preset`` is None), then ``video_dir``,
    ``frame_cache``, ``pretrained`` ("random" = random weights) and ``device`` when given."""
    if preset is None:
        cfg = smoke_config(data_dir, smoke)
    else:
        cfg = load_preset(preset)
        home = cfg.anno_path  # a cache the preset keeps inside its own data folder moves with data_dir
        cache = cfg.frame_cache
        if cache and home and Path(cache).parts[:len(Path(home).parts)] == Path(home).parts:
            cfg = cfg.replace(frame_cache=str(Path(data_dir) / Path(cache).relative_to(home)))
        cfg = cfg.replace(anno_path=str(data_dir), video_path=str(Path(data_dir) / "videos"))
    if video_dir:
        cfg = cfg.replace(video_path=str(video_dir))
    if frame_cache:
        cfg = cfg.replace(frame_cache=str(frame_cache))
    if pretrained is not None:
        cfg = cfg.replace(pretrained=None if str(pretrained) in RANDOM_WEIGHTS else str(pretrained))
    if device:
        cfg = cfg.replace(device=str(device))
    return cfg.replace(**overrides) if overrides else cfg


@dataclass
class Series:
    """The shared parameters of one notebook run, resolved (see :data:`SERIES_PARAMETERS`)."""

    smoke: bool = True
    preset: Optional[str] = None
    pretrained: Optional[str] = None
    data_dir: Path = Path("../data/synthetic")
    video_dir: Optional[Path] = None
    frame_cache: Optional[Path] = None
    run_dir: Optional[Path] = None
    device: Optional[str] = None
    work_dir: Path = Path("../runs")

    def config(self, **overrides: Any) -> Config:
        """:func:`series_config` of these parameters."""
        return series_config(self.data_dir, self.smoke, self.preset, self.pretrained, self.video_dir,
                             self.frame_cache, self.device, **overrides)

    def weights(self) -> Optional[str]:
        """CLIP weights: ``pretrained`` when given ("random" -> None), else the config's (the smoke
        preset's shipped stand-in, or the preset's), else None (random: the ViT-B/32 inspection
        model of ``smoke=False`` without a preset, which stays offline)."""
        if self.pretrained is not None:
            return None if str(self.pretrained) in RANDOM_WEIGHTS else str(self.pretrained)
        return self.config().pretrained if (self.preset or self.smoke) else None

    def model_config(self, **overrides: Any) -> Config:
        """Config of a model built to be looked at, not trained (notebooks 02-05, 09): the tiny
        config when ``smoke``, the preset when one is given, else ViT-B/32 at the paper's sizes --
        with :meth:`weights`, so it stays offline unless ``pretrained`` asks for weights."""
        if self.smoke or self.preset:
            cfg = self.config()
        else:
            cfg = Config(anno_path=str(self.data_dir), video_path=str(self.video_file("x").parent))
            if self.device:
                cfg = cfg.replace(device=str(self.device))
        cfg = cfg.replace(pretrained=self.weights())
        return cfg.replace(**overrides) if overrides else cfg

    def run(self, run_name: Optional[str] = None, max_steps: Optional[int] = None) -> tuple[Config, Path]:
        """Config and folder of "the trained run" (:func:`run_settings`); ``run_dir`` wins."""
        return run_settings(self.data_dir, self.work_dir, self.smoke, self.preset, run_name, self.video_dir,
                            self.frame_cache, max_steps, pretrained=self.pretrained, device=self.device,
                            run_dir=self.run_dir)

    def trained_run(self) -> Optional[Path]:
        """The finished run to read (notebooks 03, 04): ``run_dir`` when given (it must hold a
        finished run), else the default run of :meth:`run` when it has finished, else None."""
        from glscl_lite import runs

        if self.run_dir is not None:
            if not runs.is_finished(self.run_dir):
                raise FileNotFoundError(f"run_dir={str(self.run_dir)!r} holds no finished run (no "
                                        f"{runs.RESULTS_FILE}); train it first (notebook 06 or glscl-lite train "
                                        "--out RUN_DIR)")
            return Path(self.run_dir)
        default = self.run()[1]
        return default if runs.is_finished(default) else None

    def inspection_model(self, seed: int = 0):
        """``(model, cfg, origin)`` to look inside (notebooks 03, 04, 07, 11), on the CPU:

        * ``run_dir`` given: that finished run (``origin`` from :func:`run_label`, which says
          CHANCE-LEVEL when it is);
        * no ``preset`` (the CPU series): the trained GLSCL shipped with the package -- the stand-in
          CLIP and a head trained on the 10,000-video synthetic corpus
          (:mod:`glscl_lite.model.shipped`), pointed at this series' corpus;
        * a preset: its trained run when finished, else an untrained model of :meth:`model_config`
          (seeded; ``origin`` says so).
        """
        import torch

        from glscl_lite.evaluate import load_run_model
        from glscl_lite.model.glscl import RetrievalModel

        if self.run_dir is None and self.preset is None:
            from glscl_lite.model.shipped import load_shipped_glscl, shipped_label

            model, cfg, record = load_shipped_glscl(anno_path=str(self.data_dir), val_videos=self.config().val_videos,
                                                    video_path=str(self.video_file("x").parent),
                                                    frame_cache=str(self.frame_cache) if self.frame_cache else None)
            return model, cfg, shipped_label(record)
        run = self.trained_run()
        if run is not None:
            model, cfg, _ = load_run_model(run, device="cpu")  # inspection: small tensors, CPU
            return model, cfg, run_label(run)
        cfg = self.model_config()
        torch.manual_seed(seed)
        return RetrievalModel(cfg).eval(), cfg, f"random weights, untrained ({cfg.base_encoder})"

    def video_file(self, video_id: str) -> Path:
        """The mp4 of ``video_id`` (``video_dir``, else ``<data_dir>/videos``)."""
        return Path(self.video_dir or Path(self.data_dir) / "videos") / f"{video_id}.mp4"

    def torch_device(self):
        """``device`` (None: the config's) as a ``torch.device``; "auto" is cuda when present."""
        from glscl_lite.utils import resolve_device

        return resolve_device(self.device or self.config().device)

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


LAST_SERIES: Optional[Series] = None
"""The :class:`Series` the last :func:`series` call made (tests read it to check that papermill's
parameters reached the notebook)."""


def series(namespace: dict[str, Any], ensure_data: bool = True) -> Series:
    """Resolve the shared parameters found in ``namespace`` (a notebook passes ``globals()``):
    paths become ``Path``, ``pretrained="random"`` stays as given (the config maps it), and the
    corpus is ensured: real MSR-VTT is never touched; an empty ``data_dir`` gets a synthetic corpus
    (1,000 videos for ``smoke=False`` without a preset -- the tiny model trained longer needs them --
    else 48)."""
    global LAST_SERIES
    missing = [k for k in SERIES_PARAMETERS if k not in namespace]
    if missing:
        raise NameError(f"parameters cell lacks the series parameter(s) {missing}")
    v = {k: namespace[k] for k in SERIES_PARAMETERS}
    for k in ("data_dir", "work_dir", "video_dir", "frame_cache", "run_dir"):
        v[k] = Path(v[k]) if v[k] not in (None, "") else None
    if v["preset"] in ("", "None"):
        v["preset"] = None
    s = Series(**v)
    if ensure_data:
        s.data_dir = ensure_corpus(s.data_dir, smoke=bool(s.smoke) or s.preset is not None)
    LAST_SERIES = s
    return s


def run_label(run_dir: PathLike) -> str:
    """Figure-title label of a finished run: ``trained run NAME (S steps, test t2v R@1 X % vs chance
    Y %)``, prefixed ``CHANCE-LEVEL`` when R@1 is below twice chance -- figures of an untrained or
    barely trained model must say so (a random-weight model: write "random weights" instead)."""
    from glscl_lite import runs

    run_dir = Path(run_dir)
    res = runs.read_results(run_dir)
    if res is None:
        raise FileNotFoundError(f"{runs.results_path(run_dir)}: the run has not finished")
    test = res.get("test", {})
    r1, n = test.get("t2v", {}).get("R1"), test.get("n_videos")
    if r1 is None or not n:
        return f"trained run {run_dir.name} ({res.get('steps', '?')} steps)"
    chance = 100.0 / n
    label = (f"trained run {run_dir.name} ({res.get('steps', '?')} steps, test t2v R@1 {r1:.0f} % vs chance "
             f"{chance:.0f} %)")
    return f"CHANCE-LEVEL {label}" if r1 < 2 * chance else label
