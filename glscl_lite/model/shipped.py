"""A trained GLSCL shipped with the package: the stand-in CLIP plus a head trained on top of it.

Notebooks 03, 04, 07 and 11 look *inside* a trained model (GIM weights, LIM attention, top-5
results, hubness).  A head trained for a few CPU seconds shows nothing, so the package ships one
trained properly: the default cell (seed 0) of the gallery on the presets' stand-in
(``docs/results/gallery-partial``; :mod:`glscl_lite.gallery`) -- the shipped stand-in CLIP
``glscl-synthetic-hybrid`` (``pretrained="synthetic"``, frozen) and the GLSCL head, temporal
transformer and logit scale trained on the 10,000-video synthetic corpus (test t2v R@1 16.9 % on
1,000 videos; the same head reached 10.7 % on the hybrid stand-in shipped before stop 24 and 6.1 % on
the plain ``glscl-synthetic``).  The record names its stand-in (``settings.base_encoder``) and its sha256.

Only the trained parameters are stored (fp16, ``glscl-synthetic-hybrid-head.fp16.pt``, under 1 MB)
with a JSON record: the run's settings, its test metrics, the command that made it, the sha256 of
the file and the sha256 of the stand-in CLIP it was trained on.  Loading refuses a file whose sha256
differs from the record, and a package whose stand-in CLIP is not the one the head was trained on.

``python -m glscl_lite.model.shipped --run RUN_DIR`` exports a finished run (frozen stand-in) as the
shipped head.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional, Sequence

from glscl_lite.errors import UserError
from glscl_lite.model.standin import SYNTHETIC, WEIGHTS_DIR, shipped_record
from glscl_lite.utils import PathLike

__all__ = ["SHIPPED_HEAD", "head_record", "export_head", "load_shipped_glscl", "shipped_label", "training_overlap"]

SHIPPED_HEAD = WEIGHTS_DIR / "glscl-synthetic-hybrid-head.fp16.pt"
"""The trained head's weights; its record is the same name with ``.json``."""

_BACKBONE = "backbone."
_LOGIT_SCALE = "backbone.clip.logit_scale"
# settings that only say where the run's data lived or how it ran: not part of the shipped model
_NOT_RECORDED = ("anno_path", "video_path", "frame_cache", "feature_cache", "device", "workers")


def _record_path(weights: Path) -> Path:
    return weights.with_suffix("").with_suffix(".json")


def head_record(weights: Optional[PathLike] = None) -> dict[str, Any]:
    """The JSON record of a head file (default: the shipped one); a clear error when either is missing."""
    path = Path(weights) if weights is not None else SHIPPED_HEAD
    record = _record_path(path)
    for p in (path, record):
        if not p.is_file():
            raise UserError(f"{p}: the trained GLSCL head is missing; reinstall glscl-lite, or export one with "
                            "`python -m glscl_lite.model.shipped --run RUN_DIR`")
    return json.loads(record.read_text())


def _trained(name: str) -> bool:
    """Is parameter/buffer ``name`` part of what a frozen-backbone run trains (head, temporal, logit scale)?"""
    return not name.startswith(_BACKBONE) or name == _LOGIT_SCALE


def _generator(anno_path: str) -> Optional[dict[str, Any]]:
    """``info.generator`` of a synthetic corpus's ``MSRVTT_data.json`` (None for real MSR-VTT)."""
    path = Path(anno_path) / "MSRVTT_data.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("info", {}).get("generator")


_SAME_WORLD = ("name", "version", "seed", "size", "fps")


def training_overlap(record: dict[str, Any], anno_path: PathLike) -> list[str]:
    """Test videos of the corpus at ``anno_path`` whose video ids the head of ``record`` trained on.

    The generator draws video ``i``'s scene from ``(seed, i)`` alone (a hard-negative copy aside),
    so two synthetic corpora of one seed, size and fps share scenes by video id: a seed-0 corpus's
    test videos are mostly scenes the shipped head (trained on the seed-0 10,000-video corpus) has
    seen.  Empty for another seed, another generator version or real MSR-VTT.
    """
    import csv

    from glscl_lite.data import synthetic as syn

    mine, theirs = record.get("corpus_generator"), _generator(str(anno_path))
    if not mine or not theirs or any(mine.get(k) != theirs.get(k) for k in _SAME_WORLD):
        return []
    trained = set(syn._split_plan(int(mine["n_videos"]), int(mine["seed"]))["9k"])
    test_csv = Path(anno_path) / "MSRVTT_JSFUSION_test.csv"
    with test_csv.open(newline="") as f:
        ids = sorted({row["video_id"] for row in csv.DictReader(f)}, key=lambda v: int(v[len("video"):]))
    return [v for v in ids if int(v[len("video"):]) in trained]


def export_head(run_dir: PathLike, dest: Optional[PathLike] = None, command: str = "", trained_by: str = "") -> Path:
    """Write the trained parameters of finished run ``run_dir`` (best checkpoint) as fp16 + record.

    The run must have trained on the shipped stand-in, frozen (``pretrained="synthetic"``,
    ``freeze_backbone`` or a feature cache): then the head alone, with the stand-in, is the model.
    """
    import torch

    from glscl_lite import provenance, runs
    from glscl_lite.evaluate import load_run_model
    from glscl_lite.utils import atomic_path, write_json_atomic

    run_dir = Path(run_dir)
    results = runs.read_results(run_dir)
    if results is None:
        raise UserError(f"{run_dir}: holds no finished run; train it first")
    cfg = runs.run_config(run_dir)
    if cfg.pretrained != SYNTHETIC or not (cfg.freeze_backbone or cfg.feature_cache):
        raise UserError(f"{run_dir}: only a run on the frozen stand-in CLIP (pretrained='synthetic', frozen or "
                        f"feature-cached) can be shipped as a head; this one has pretrained={cfg.pretrained!r}, "
                        f"freeze_backbone={cfg.freeze_backbone}")
    model, _, _ = load_run_model(run_dir, device="cpu")
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()
             if _trained(k)}
    dest = Path(dest) if dest is not None else SHIPPED_HEAD
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        torch.save(state, tmp)
    settings = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_RECORDED}
    record = {
        "weights": dest.name,
        "sha256": provenance.file_sha256(dest)["sha256"],
        "standin_sha256": shipped_record(model=cfg.base_encoder)["sha256"],
        "settings": settings,
        "source_run": str(run_dir),
        "corpus": cfg.anno_path,
        # the synthetic generator's settings (seed, size): every corpus of that seed shares scenes by video id
        "corpus_generator": _generator(cfg.anno_path),
        "command": command,
        "trained_by": trained_by,
        "steps": results.get("steps"),
        "best_step": results.get("best_step"),
        "test": results.get("test"),
        "parameters": int(sum(v.numel() for v in state.values())),
    }
    write_json_atomic(_record_path(dest), record)
    return dest


def load_shipped_glscl(weights: Optional[PathLike] = None, **overrides: Any):
    """``(model, cfg, record)``: the shipped stand-in CLIP with the trained head loaded, in eval mode, CPU.

    ``overrides`` change settings of the returned config (e.g. ``anno_path``, ``val_videos`` for a
    smaller corpus; default ``device="cpu"``, ``workers=0``); a setting
    that changes the network (:data:`glscl_lite.config.MODEL_KEYS`) is refused.
    """
    import torch

    from glscl_lite import provenance
    from glscl_lite.config import MODEL_KEYS, Config
    from glscl_lite.model.glscl import RetrievalModel

    path = Path(weights) if weights is not None else SHIPPED_HEAD
    record = head_record(path)
    standin = shipped_record(model=record["settings"]["base_encoder"])["sha256"]
    if record["standin_sha256"] != standin:
        raise UserError(f"{path}: this head was trained on the stand-in CLIP with sha256 "
                        f"{record['standin_sha256'][:12]}..., but the package ships {standin[:12]}...; "
                        "train and export a head on this stand-in (see docs/results/gallery/README.md)")
    changed = sorted(set(overrides) & set(MODEL_KEYS))
    if changed:
        raise UserError(f"the shipped GLSCL has fixed network settings; cannot override {changed}")
    cfg = Config(**record["settings"]).replace(**{"device": "cpu", "workers": 0, **overrides})
    got = provenance.file_sha256(path)["sha256"]
    if got != record["sha256"]:
        raise UserError(f"{path}: sha256 {got[:12]}... differs from its record ({record['sha256'][:12]}...); "
                        "the file is damaged or was replaced: reinstall glscl-lite or export it again")
    model = RetrievalModel(cfg)
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if _trained(k)]
    if missing or unexpected:
        raise UserError(f"{path}: does not fit the model of its record (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")
    return model.eval(), cfg, record


def shipped_label(record: dict[str, Any]) -> str:
    """Figure-title label of the shipped model, with its test R@1 against chance."""
    test = record.get("test") or {}
    r1, n = (test.get("t2v") or {}).get("R1"), test.get("n_videos")
    score = f", test t2v R@1 {r1:.1f} % vs chance {100 / n:.1f} % on {n:,} videos" if r1 is not None and n else ""
    return f"shipped trained GLSCL (stand-in CLIP + head, {record.get('steps', '?')} steps{score})"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glscl_lite.model.shipped",
                                     description="export a finished frozen-stand-in run as the shipped GLSCL head")
    parser.add_argument("--run", required=True, help="finished run folder (e.g. runs/gallery/runs/default_s0)")
    parser.add_argument("--out", default=None, help=f"weights file (default: {SHIPPED_HEAD})")
    parser.add_argument("--trained-by", default="", help="the command that trained the run (recorded)")
    args = parser.parse_args(argv)
    command = "python -m glscl_lite.model.shipped --run " + args.run + (f" --out {args.out}" if args.out else "")
    dest = export_head(args.run, args.out, command=command, trained_by=args.trained_by)
    print(json.dumps(head_record(dest), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
