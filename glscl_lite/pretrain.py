"""Pretraining the stand-in CLIP: CLIP's own objective on single frames of the synthetic world.

GLSCL starts from OpenAI's CLIP, which cannot be downloaded here.  ``glscl-lite pretrain`` makes the
project's own: an open_clip model trained with open_clip's :class:`~open_clip.loss.ClipLoss`
(symmetric InfoNCE with a learned temperature) on frame-caption pairs from
:mod:`glscl_lite.data.frame_world`, rendered on the fly so that no frame is seen twice.

A pretraining folder (``--out DIR``)::

    settings.json          PretrainSettings + the open_clip model config (what it was built from)
    metrics.jsonl          one line per logged step: loss, logit scale, lr, pairs/s, CPU seconds
    checkpoints/last.pt    model + optimizer + step (atomic); re-running the command resumes exactly
    weights.fp16.pt        the finished model, fp16 state dict (export_weights)
    weights.json           its sha256, settings, steps and the zero-shot results

Determinism: frame ``i`` of step ``s`` is a function of ``(seed, s, i)`` only, so a resumed run
sees the same batches as an uninterrupted one and ends with the same weights (CPU, same threads).
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from glscl_lite import provenance
from glscl_lite.data.frame_world import (FRAME_WORLD_VERSION, SET_ATTRIBUTES, TWIN_ATTRIBUTES, make_frame,
                                         make_minimal_set, max_set_size)
from glscl_lite.data.text import tokenize
from glscl_lite.data.video import images_to_input
from glscl_lite.errors import UserError
from glscl_lite.model.backbone import create_clip
from glscl_lite.model.conv_stem import model_config
from glscl_lite.utils import PathLike, atomic_path, ensure_writable_dir, write_json_atomic

__all__ = ["PretrainSettings", "FrameCaptionBatches", "pretrain", "export_weights", "finish_pretraining",
           "read_log"]


@dataclass(frozen=True)
class PretrainSettings:
    """Everything that determines a pretraining run (recorded in ``settings.json``)."""

    model: str = "glscl-synthetic"
    """open_clip config name (``glscl_lite/model/configs/*.json``)."""
    steps: int = 2500
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 100
    """Linear warm-up steps, then cosine decay to 0 at ``steps``."""
    seed: int = 0
    """Seeds the initialisation and the frame stream (:func:`~glscl_lite.data.frame_world.frame_rng`)."""
    twins: float = 0.5
    """Fraction of each batch made of twin pairs (:func:`~glscl_lite.data.frame_world.make_twins`:
    a frame and a copy with one object's shape or size changed -- hard negatives), or of larger
    minimal sets (``set_size``)."""
    twin_attributes: tuple[str, ...] = TWIN_ATTRIBUTES
    """What a twin may change (drawn uniformly per twin or set): a subset of ``("shape", "size", "position")``
    (:data:`~glscl_lite.data.frame_world.SET_ATTRIBUTES`); default shape and size."""
    set_size: int = 2
    """Frames per minimal set (:func:`~glscl_lite.data.frame_world.make_minimal_set`): 2 makes twins;
    up to 8 over shape alone (one object as up to 8 shapes), up to 3 when size may change."""
    size_twins: float = 0.0
    """Fraction of each batch made of *size* twins, after the minimal sets: a mixed batch, e.g. shape sets
    of 8 (``twins``) plus size twins, so that size keeps its hard negatives while shape gets all of its
    own.  ``twins + size_twins`` is at most 1."""
    partial_captions: float = 0.0
    """Fraction of captions (of single frames, and of whole minimal sets) that say only some words: per
    object a non-empty subset of size, colour and shape, the background half of the time
    (:func:`~glscl_lite.data.frame_world.frame_caption`).  Full captions tie every word to the others;
    partial ones ask a word to mean the same alone, which prompt ensembles rely on."""
    init: Optional[str] = None
    """Start from these stand-in weights (a ``weights.fp16.pt`` of a finished pretraining folder, the
    folder, or ``"shipped"``: the package's stand-in of ``model``) instead of random ones: continued
    pretraining under a new schedule.  Give it another
    ``seed`` than the run it continues, so that it sees new frames.  The weights' sha256 is recorded."""

    def check(self) -> None:
        """Refuse settings that cannot train (before anything is written)."""
        problems = []
        if self.steps < 1:
            problems.append(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 2:
            problems.append(f"batch_size must be >= 2 (a contrastive batch), got {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.twins <= 1.0:
            problems.append(f"twins must be a fraction in [0, 1], got {self.twins}")
        if not 0.0 <= self.size_twins <= 1.0 - self.twins + 1e-9:
            problems.append(f"size_twins must be a fraction in [0, 1 - twins], got {self.size_twins} (twins {self.twins})")
        if not 0.0 <= self.partial_captions <= 1.0:
            problems.append(f"partial_captions must be a fraction in [0, 1], got {self.partial_captions}")
        if not self.twin_attributes or any(a not in SET_ATTRIBUTES for a in self.twin_attributes):
            problems.append(f"twin_attributes must be a non-empty subset of {SET_ATTRIBUTES}, got {self.twin_attributes!r}")
        elif not 2 <= self.set_size <= max_set_size(self.twin_attributes):
            problems.append(f"set_size must be in [2, {max_set_size(self.twin_attributes)}] for twin_attributes "
                            f"{self.twin_attributes!r}, got {self.set_size}")
        if self.init is not None and not _init_path(self.init, self.model).is_file():
            problems.append(f"init: no stand-in weights at {_init_path(self.init, self.model)} "
                            "(a pretraining folder's weights.fp16.pt, or 'shipped' for a model the package ships)")
        if not 0 <= self.warmup < self.steps:
            problems.append(f"warmup must be in [0, steps), got {self.warmup} (steps {self.steps})")
        if problems:
            raise UserError("pretrain: " + "; ".join(problems))


class FrameCaptionBatches(IterableDataset):
    """Batches ``(images uint8 [B,S,S,3], ids [B,L])`` for steps ``start .. stop-1``.

    Step ``s`` holds frames ``s*B .. s*B+B-1`` of the ``train`` stream of ``seed``: first
    ``round(B * twins / set_size)`` minimal sets of ``set_size`` frames, then
    ``round(B * size_twins / 2)`` size twins, then single frames (``partial_captions``: see
    :class:`PretrainSettings`).
    """

    def __init__(self, seed: int, batch_size: int, image_size: int, context_length: int, start: int, stop: int,
                 twins: float = 0.0, twin_attributes: tuple[str, ...] = TWIN_ATTRIBUTES, set_size: int = 2,
                 size_twins: float = 0.0, partial_captions: float = 0.0):
        self.seed, self.batch_size, self.image_size = seed, batch_size, image_size
        self.partial = partial_captions
        self.twin_attributes, self.set_size = tuple(twin_attributes), set_size
        self.context_length, self.start, self.stop = context_length, start, stop
        self.sets = min(int(round(batch_size * twins / set_size)), batch_size // set_size)
        self.size_pairs = min(int(round(batch_size * size_twins / 2)), (batch_size - set_size * self.sets) // 2)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        first, n = step * self.batch_size, self.set_size
        samples = []
        for j in range(self.sets):  # frames first + n*j and the rest of their minimal sets (n = 2: twins)
            samples += make_minimal_set("train", self.seed, first + n * j, self.image_size, self.twin_attributes, n,
                                        self.partial)
        grouped = n * self.sets
        for j in range(self.size_pairs):  # then size twins: frames first + grouped + 2*j and their twins
            samples += make_minimal_set("train", self.seed, first + grouped + 2 * j, self.image_size, ("size",), 2,
                                        self.partial)
        grouped += 2 * self.size_pairs
        samples += [make_frame("train", self.seed, first + i, self.image_size, partial=self.partial)
                    for i in range(grouped, self.batch_size)]
        captions = [s.caption for s in samples]
        ids, _ = tokenize(captions, self.context_length, workers=1)
        return torch.from_numpy(np.stack([s.image for s in samples])), ids, captions

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        shard, shards = (0, 1) if info is None else (info.id, info.num_workers)
        if info is not None:
            torch.set_num_threads(1)  # a rendering worker: leave the cores to the trainer
        # worker k renders steps start+k, start+k+n, ...; the DataLoader takes one batch from each worker
        # in turn, so the trainer sees steps in order, each once, whatever the number of workers
        for step in range(self.start + shard, self.stop, shards):
            images, ids, _ = self.batch(step)
            yield images, ids


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only (not on biases, norms, embeddings or the logit scale), as in CLIP."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim < 2 or "embedding" in name or "logit_scale" in name or name.endswith("class_embedding"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_at(step: int, s: PretrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return 0.5 * s.lr * (1.0 + math.cos(math.pi * progress))


def _init_path(init: PathLike, model: str) -> Path:
    if str(init) == "shipped":  # a portable name in the record (the sha256 in the fingerprint pins the content)
        from glscl_lite.model.standin import shipped_weights

        return shipped_weights(model)
    path = Path(init)
    return path / "weights.fp16.pt" if path.is_dir() else path


def build_model(s: PretrainSettings) -> torch.nn.Module:
    """A freshly initialised model of ``s.model`` (seeded by ``s.seed``), or the ``s.init`` weights
    (refused unless they were made for ``s.model`` on this frame world)."""
    torch.manual_seed(s.seed)
    model = create_clip(s.model, None)
    if s.init is not None:
        from glscl_lite.model.standin import load_into

        load_into(model, _init_path(s.init, s.model), s.model)
    return model


_LATER_FIELDS: dict[str, Any] = {"twin_attributes": list(TWIN_ATTRIBUTES), "init": None, "set_size": 2,
                                  "size_twins": 0.0, "partial_captions": 0.0}
"""Settings added after the first stand-in shipped (as JSON reads them back): recorded only when they
differ from their default, so that folders written before them keep their fingerprint (and resume);
absent from a record means the default (:func:`glscl_lite.provenance.differences`)."""


def _recorded(settings: PretrainSettings) -> dict[str, Any]:
    """``asdict(settings)`` without the later fields left at their defaults (what the fingerprint covers)."""
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}  # as JSON reads back
    return {k: v for k, v in out.items() if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}


def _settings_from(path: Path) -> PretrainSettings:
    data = json.loads(path.read_text())["settings"]
    if "twin_attributes" in data:
        data["twin_attributes"] = tuple(data["twin_attributes"])
    return PretrainSettings(**{f.name: data[f.name] for f in fields(PretrainSettings) if f.name in data})


def read_log(out: PathLike) -> list[dict]:
    """The ``metrics.jsonl`` records of a pretraining folder (a torn last line is skipped)."""
    path = Path(out) / "metrics.jsonl"
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def pretrain(settings: PretrainSettings, out: PathLike, threads: Optional[int] = None, progress: bool = True,
             checkpoint_every: int = 25, log_every: int = 5, max_cpu_seconds: Optional[float] = None,
             workers: int = 1, device: str = "cpu") -> dict[str, Any]:
    """Train (or resume) the stand-in CLIP into ``out``; returns the last log record.

    ``max_cpu_seconds`` stops early (with a checkpoint) once the process has used that much CPU
    time -- the config comparison gives every candidate the same CPU budget.  ``workers`` renders
    frames in that many background processes (0: in this process); on a GPU the rendering is the
    bottleneck, so give it all cores but one.  ``device`` is where the model trains (``cpu``,
    ``cuda``, ``auto``); it is not part of what the run is built from (a run started on a GPU
    resumes on the CPU and vice versa), and every log record names it.  Computation stays fp32.
    """
    import open_clip
    from open_clip.loss import ClipLoss
    from tqdm.auto import tqdm

    settings.check()
    dev = _device(device)
    out = Path(out)
    settings_path, ckpt = out / "settings.json", out / "checkpoints" / "last.pt"
    model = build_model(settings)  # an unknown model name fails here, before anything is written
    model_cfg = model_config(settings.model)  # open_clip's config plus its conv stem
    parts: dict[str, Any] = {"settings": _recorded(settings), "model_config": model_cfg,
                             "frame_world": {"version": FRAME_WORLD_VERSION}}
    if settings.init is not None:  # the weights it continues from, by content (a path alone could change)
        parts["init"] = provenance.file_sha256(_init_path(settings.init, settings.model))
    built_from = provenance.fingerprint(**parts)
    if settings_path.exists():
        rebuild = f"glscl-lite pretrain --out NEW_DIR ... (or delete {out} to start over)"
        recorded = json.loads(settings_path.read_text()).get("provenance")
        provenance.check(recorded, built_from, out, rebuild)  # a later field absent there = its default
    ensure_writable_dir(out)
    if not settings_path.exists():
        write_json_atomic(settings_path, {"settings": _recorded(settings), "model_config": model_cfg,
                                          "provenance": built_from,
                                          "open_clip": open_clip.__version__, "torch": torch.__version__})
    model.to(dev)
    opt = torch.optim.AdamW(_param_groups(model, settings.weight_decay), lr=settings.lr, betas=(0.9, 0.98), eps=1e-6)
    step, cpu_used = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])  # its state moves to the parameters' device
        step, cpu_used = int(state["step"]), float(state.get("cpu_seconds", 0.0))
    log_path = out / "metrics.jsonl"
    kept = [r for r in read_log(out) if r["step"] <= step]
    log_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    if step >= settings.steps or (max_cpu_seconds is not None and cpu_used >= max_cpu_seconds):
        return kept[-1] if kept else {"step": step}

    loss_fn = ClipLoss()
    image_size = model.visual.image_size
    image_size = int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)
    data = FrameCaptionBatches(settings.seed, settings.batch_size, image_size, model.context_length,
                               step, settings.steps, settings.twins, settings.twin_attributes,
                               settings.set_size, settings.size_twins, settings.partial_captions)
    loader = DataLoader(data, batch_size=None, num_workers=workers, pin_memory=dev.type == "cuda",
                        prefetch_factor=4 if workers else None, persistent_workers=False)
    model.train()
    cpu0, wall0, pairs0 = time.process_time(), time.perf_counter(), 0
    record: dict[str, Any] = {}

    def save() -> None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(ckpt) as tmp:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                        "cpu_seconds": cpu_used + time.process_time() - cpu0}, tmp)

    bar = tqdm(total=settings.steps, initial=step, desc="pretrain", disable=not progress, unit="step")
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)  # for this call only: restored below (a caller's later work keeps its own)
    with log_path.open("a") as log, _restore_threads(threads_before):
        for images, ids in loader:
            lr = _lr_at(step, settings)
            for g in opt.param_groups:
                g["lr"] = lr
            images, ids = images.to(dev, non_blocking=True), ids.to(dev, non_blocking=True)
            img = model.encode_image(images_to_input(images), normalize=True)  # uint8 travels, normalised there
            txt = model.encode_text(ids, normalize=True)
            loss = loss_fn(img, txt, model.logit_scale.exp())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))  # CLIP's clamp of the temperature
            step += 1
            pairs0 += len(ids)
            bar.update(1)
            budget_hit = max_cpu_seconds is not None and cpu_used + time.process_time() - cpu0 >= max_cpu_seconds
            if step % log_every == 0 or step == settings.steps or budget_hit:
                wall = time.perf_counter() - wall0
                record = {"step": step, "loss": round(float(loss.detach()), 5),
                          "logit_scale": round(float(model.logit_scale.detach().exp()), 3), "lr": lr,
                          "pairs_per_s": round(pairs0 / max(wall, 1e-9), 2),
                          "cpu_seconds": round(cpu_used + time.process_time() - cpu0, 1), "device": dev.type}
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            if step % checkpoint_every == 0 or step == settings.steps or budget_hit:
                save()
            if budget_hit:
                break
    bar.close()
    return record


def export_weights(out: PathLike, dest: Optional[PathLike] = None, extra: Optional[dict] = None) -> Path:
    """Write the finished model of pretraining folder ``out`` as fp16 ``weights.fp16.pt`` + ``weights.json``.

    ``weights.json`` records the sha256 of the weights file, the settings, the model config, the
    step count, ``extra`` (e.g. zero-shot results) and, for a continued run (``init``), the record of
    the weights it started from (``init_from``, recursively).  Refuses an unfinished run.
    """
    out = Path(out)
    settings = _settings_from(out / "settings.json")
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    if int(state["step"]) < settings.steps:
        raise UserError(f"{out}: pretraining stopped at step {state['step']} of {settings.steps}; "
                        f"run `glscl-lite pretrain --out {out} --steps {settings.steps}` to finish it first")
    dest = Path(dest) if dest is not None else out / "weights.fp16.pt"
    half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    with atomic_path(dest) as tmp:
        torch.save(half, tmp)
    meta = json.loads((out / "settings.json").read_text())
    meta.update({"weights": dest.name, "sha256": provenance.file_sha256(dest)["sha256"], "steps_done": int(state["step"]),
                 "cpu_seconds": round(float(state.get("cpu_seconds", 0.0)), 1)})
    if settings.init is not None:  # the chain of runs these weights continue, so that the record describes all of it
        before = json.loads(_init_path(settings.init, settings.model).with_suffix("").with_suffix(".json").read_text())
        meta["init_from"] = {k: before[k] for k in ("settings", "sha256", "steps_done", "cpu_seconds", "init_from")
                             if k in before}
    meta.update(extra or {})
    write_json_atomic(dest.with_suffix("").with_suffix(".json"), meta)
    return dest


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"pretrain: device {name!r} but CUDA is not available on this machine; use --device cpu (or auto)")
    if not (name == "cpu" or name.startswith("cuda")):
        raise UserError(f"pretrain: device must be cpu, cuda[:N] or auto, got {name!r}")
    return torch.device(name)


@contextlib.contextmanager
def _restore_threads(n: int) -> Iterator[None]:
    try:
        yield
    finally:
        torch.set_num_threads(n)


def finish_pretraining(out: PathLike, frames: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Evaluate a finished pretraining folder (zero-shot on ``frames`` held-out frames) and export it.

    Writes ``zeroshot.json`` and ``weights.fp16.pt`` + ``weights.json`` (the zero-shot report
    included); the evaluation uses the fp16-rounded weights, i.e. exactly what is shipped.
    Returns the report.
    """
    from glscl_lite.model.standin import load_standin
    from glscl_lite.zeroshot import evaluate_clip

    out = Path(out)
    dest = export_weights(out)
    report = evaluate_clip(load_standin(out), n_frames=frames, seed=seed)
    write_json_atomic(out / "zeroshot.json", report)
    export_weights(out, dest, extra={"zeroshot": report})
    return report
