"""End-to-end CLIP warm start for corpora without pretrained CLIP weights.

:func:`ensure_pretrained_clip` trains a base config end to end (CLIP included) for a number of steps
on the training split and exports the best checkpoint's CLIP (:func:`export_clip_weights`, with a
provenance record beside it) so that frozen-feature ablations start from weights the head can use.
Ablation grids call it (``glscl-lite ablate --pretrain-steps N``, notebook 08).

Not to be confused with :mod:`glscl_lite.pretrain`, which trains the frame-level stand-in CLIP of
the synthetic world (``pretrained="synthetic"``).
"""
from __future__ import annotations

import json
from pathlib import Path

from glscl_lite.config import Config
from glscl_lite.errors import UserError
from glscl_lite.utils import PathLike, atomic_path, write_json_atomic


def export_clip_weights(run_dir: PathLike, path: PathLike, which: str = "best") -> Path:
    """Save the CLIP part of a run's checkpoint as an open_clip state dict, usable as
    ``pretrained=<path>`` (open_clip loads a local checkpoint file)."""
    import torch

    from glscl_lite import runs

    ckpt, state = runs.load_checkpoint(run_dir, which)
    prefix = "backbone.clip."
    weights = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    path = Path(path)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(weights, tmp)
    write_json_atomic(weights_record(path), {"provenance": _weights_fingerprint(ckpt)})
    return path


def weights_record(path: PathLike) -> Path:
    """The provenance record beside exported weights: ``<path>.json``."""
    return Path(f"{path}.json")


def _weights_fingerprint(ckpt: Path) -> dict:
    from glscl_lite import provenance

    return provenance.fingerprint(checkpoint=provenance.file_sha256(ckpt))


def check_exported_weights(path: PathLike, run_dir: PathLike, which: str = "best") -> None:
    """Refuse weights exported from another checkpoint than ``run_dir``'s ``which`` now is."""
    from glscl_lite import provenance, runs

    record = weights_record(path)
    recorded = json.loads(record.read_text()).get("provenance") if record.is_file() else None
    provenance.check(recorded, _weights_fingerprint(runs.checkpoint_path(run_dir, which)), path,
                     f"warmstart.export_clip_weights({str(run_dir)!r}, {str(path)!r})")


def ensure_pretrained_clip(base: Config, out: PathLike, steps: int, progress: bool = True) -> Path:
    """CLIP weights from ``steps`` steps of end-to-end training of ``base`` (no feature cache,
    CLIP trained) in ``out``, exported to ``out/clip.pt``; reused when finished, resumed when
    interrupted (or given more steps).

    The synthetic corpus has no pretrained CLIP: a frozen *random* CLIP gives features that the
    head can barely use, so feature-cache ablations on it stay at chance.  This stands in for
    the OpenAI weights: the run trains on the training split only (validation is carved from it,
    the test videos are never seen), and the best-validation checkpoint's CLIP is exported.
    """
    from glscl_lite import runs
    from glscl_lite.provenance import ProvenanceError
    from glscl_lite.train import train

    out = Path(out)
    weights = out / "clip.pt"
    cfg = base.replace(feature_cache=None, freeze_backbone=False, max_steps=steps)
    done = runs.finished(out, cfg)  # raises if out holds a run of other settings; None if of another length
    finished_steps = (runs.read_results(out) or {}).get("steps", 0)
    if finished_steps > steps:
        raise UserError(f"{out}: holds a pretraining run of {finished_steps} steps, not {steps}; "
                        "use the same number of steps or a new --out folder")
    if done is None or done["steps"] < steps:  # new, interrupted, or extended to more steps
        train(cfg, (), out, progress=progress)
        return export_clip_weights(out, weights)
    if weights.is_file():
        try:
            check_exported_weights(weights, out)
            return weights
        except ProvenanceError:  # exported from an earlier best.pt: export the current one
            pass
    return export_clip_weights(out, weights)
