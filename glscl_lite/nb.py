"""Helpers shared by the notebooks: get the data, get a trained run -- cached when present.

Every notebook's parameters cell defines ``smoke``, ``data_dir`` (the corpus, MSR-VTT layout) and
``work_dir`` (runs and caches).  ``ensure_corpus`` writes the synthetic corpus when ``data_dir``
is empty; ``ensure_run`` loads a finished run when its folder holds one, else trains it (so a
long GPU run is done once and every later notebook reuses it).
"""
from __future__ import annotations

import json
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
    """The ``smoke`` preset pointed at ``data_dir`` (tiny model, 64-px frame cache inside it).

    With ``smoke=False`` it trains longer (more epochs, eval every epoch) -- still the tiny model,
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
                 frame_cache: Optional[PathLike] = None, max_steps: Optional[int] = None) -> tuple[Config, Path]:
    """Config and run folder of "the trained run" that notebooks 06 and 07 (and 03/04) share.

    ``preset=None``: the tiny CPU config of :func:`smoke_config`, folder ``smoke_run`` (smoke) or
    ``tiny_run``; else the named preset pointed at ``data_dir``, folder ``<preset>_run``.
    ``run_name`` overrides the folder name; ``video_dir`` / ``frame_cache`` point at real videos and
    a frame cache.  ``max_steps`` defaults to 16 when ``smoke`` (keeps CI fast), else the full
    schedule.
    """
    if preset is None:
        cfg = smoke_config(data_dir, smoke)
        name = run_name or ("smoke_run" if smoke else "tiny_run")
    else:
        cfg = load_preset(preset).replace(anno_path=str(data_dir), video_path=str(Path(data_dir) / "videos"))
        name = run_name or f"{preset}_run"
    if video_dir:
        cfg = cfg.replace(video_path=str(video_dir))
    if frame_cache:
        cfg = cfg.replace(frame_cache=str(frame_cache))
    steps = max_steps if max_steps is not None else (16 if smoke else None)
    if steps:  # max_steps and log_every are run-time keys: they do not change the run's settings
        cfg = cfg.replace(max_steps=steps, log_every=2 if smoke else cfg.log_every)
    return cfg, Path(work_dir) / name


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
