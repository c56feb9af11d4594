"""The stand-in CLIP shipped with the package: ``pretrained="synthetic"``.

OpenAI's CLIP weights cannot be downloaded here, so the project pretrains its own small CLIP on
frames of the synthetic world (``glscl-lite pretrain``, :mod:`glscl_lite.pretrain`) and ships the
result in ``glscl_lite/model/weights/``: an fp16 state dict and a JSON record of what made it
(settings, model config, steps, sha256, zero-shot accuracy).  Loading needs no network; a missing
file or one whose sha256 differs from the record is refused by name.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from glscl_lite.errors import UserError
from glscl_lite.utils import PathLike

__all__ = ["SYNTHETIC", "WEIGHTS_DIR", "shipped_record", "standin_files", "load_standin", "load_into", "load_weights"]

SYNTHETIC = "synthetic"
"""The ``pretrained`` tag of the shipped stand-in."""
WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED = WEIGHTS_DIR / "glscl-synthetic.fp16.pt"


def standin_files(weights: Optional[PathLike] = None) -> tuple[Path, Path]:
    """(weights file, JSON record) for the shipped stand-in (None), a pretraining folder or a ``.pt`` file."""
    path = SHIPPED if weights is None else Path(weights)
    if path.is_dir():
        path = path / "weights.fp16.pt"
    record = path.with_suffix("").with_suffix(".json")
    if not path.is_file():
        hint = ("the package's stand-in CLIP weights are missing: reinstall glscl-lite, or make them with "
                "`glscl-lite pretrain --out DIR` and pass --weights DIR" if weights is None else
                "run `glscl-lite pretrain --out DIR` to make a pretraining folder (it ends with weights.fp16.pt)")
        raise UserError(f"{path}: stand-in CLIP weights not found; {hint}")
    if not record.is_file():
        raise UserError(f"{record}: the record of {path.name} (model, settings, sha256) is missing; "
                        "export the weights again with `glscl-lite pretrain --out DIR`")
    return path, record


def shipped_record(weights: Optional[PathLike] = None) -> dict[str, Any]:
    """The JSON record of a stand-in (default: the shipped one)."""
    return json.loads(standin_files(weights)[1].read_text())


def _register(record: dict[str, Any]) -> str:
    """Make the record's model config known to open_clip (a folder may use a config the package lacks)."""
    import open_clip

    name = record["settings"]["model"]
    if name not in open_clip.list_models():
        open_clip.factory._MODEL_CONFIGS[name] = record["model_config"]
    elif open_clip.get_model_config(name) != record["model_config"]:
        raise UserError(f"weights were made for model config {name!r} as recorded, but open_clip's {name!r} "
                        "differs (vision/text sizes); use the package version that shipped them")
    return name


def load_into(model, weights: Optional[PathLike] = None, name: Optional[str] = None):
    """Load stand-in weights into an open_clip ``model`` built from config ``name`` (checked)."""
    path, _ = standin_files(weights)
    record = shipped_record(weights)
    made_for = record["settings"]["model"]
    from glscl_lite import provenance
    from glscl_lite.data.frame_world import FRAME_WORLD_VERSION

    provenance.check(record.get("provenance"), {"frame_world": {"version": FRAME_WORLD_VERSION}}, path,
                     "glscl-lite pretrain --out DIR (the frames and captions of this package differ from "
                     "the ones these weights learned from)")
    if name is not None and name != made_for:
        raise UserError(f"pretrained='synthetic' is the stand-in CLIP for base_encoder={made_for!r}; "
                        f"got base_encoder={name!r} (set base_encoder={made_for}, or pretrained=None for random weights)")
    return load_weights(model, path, expected_sha256=record["sha256"], model_name=made_for)


def load_weights(model, path: PathLike, expected_sha256: Optional[str] = None, model_name: Optional[str] = None):
    """Load an fp16 weights file (from :func:`export_weights`) into ``model`` as fp32.

    With ``expected_sha256`` a file whose hash differs is refused (named, with both hashes).
    """
    import torch

    from glscl_lite.provenance import file_sha256

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: stand-in CLIP weights not found; make them with `glscl-lite pretrain --out DIR` "
                        "and `glscl-lite pretrain --out DIR --export`")
    if expected_sha256 is not None:
        got = file_sha256(path)["sha256"]
        if got != expected_sha256:
            raise UserError(f"{path}: sha256 {got[:16]}... differs from the recorded {expected_sha256[:16]}...; "
                            "the file is damaged or was replaced -- reinstall the package or re-export it")
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    wrong = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    missing = sorted(set(own) - set(state))
    if wrong or missing:
        detail = (f"shapes differ for {wrong[:3]}" if wrong else f"missing {missing[:3]}")
        raise UserError(f"{path}: these weights are not of model {model_name or type(model).__name__} ({detail})")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model


def load_standin(weights: Optional[PathLike] = None):
    """A ready open_clip model with the stand-in's weights (default: the shipped ones), eval mode."""
    import open_clip

    name = _register(shipped_record(weights))
    model = open_clip.create_model(name, pretrained=None)
    load_into(model, weights, name)
    return model.eval()
