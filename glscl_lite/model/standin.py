"""The stand-in CLIP shipped with the package: ``pretrained="synthetic"``.

OpenAI's CLIP weights cannot be downloaded here, so the project pretrains its own small CLIP on
frames of the synthetic world (``glscl-lite pretrain``, :mod:`glscl_lite.pretrain`) and ships the
result in ``glscl_lite/model/weights/``: per model config ``NAME``, an fp16 state dict
``NAME.fp16.pt`` and a JSON record ``NAME.json`` of what made it (settings, model config, steps,
sha256, zero-shot accuracy) -- like open_clip's (model, pretrained tag) pairs, ``pretrained="synthetic"``
means "the shipped stand-in weights of this ``base_encoder``".  Loading needs no network; a missing
file or one whose sha256 differs from the record is refused by name.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from glscl_lite.errors import UserError
from glscl_lite.utils import PathLike

__all__ = ["SYNTHETIC", "WEIGHTS_DIR", "DEFAULT_MODEL", "shipped_weights", "shipped_models", "shipped_record",
           "standin_files", "load_standin", "load_into", "load_weights"]

SYNTHETIC = "synthetic"
"""The ``pretrained`` tag of the shipped stand-in."""
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "glscl-synthetic-hybrid"
"""The model config of the stand-in that the presets use (``base_encoder``): the convolutional-stem ViT
whose shipped weights meet the zero-shot goals (stop 24; the plain ``glscl-synthetic`` ships too)."""


def shipped_weights(model: Optional[str] = None) -> Path:
    """Where the package keeps the stand-in weights of model config ``model`` (default :data:`DEFAULT_MODEL`)."""
    return WEIGHTS_DIR / f"{model or DEFAULT_MODEL}.fp16.pt"


SHIPPED = shipped_weights()


def shipped_models() -> list[str]:
    """Model configs with stand-in weights in the package (their records name them)."""
    names = []
    for path in sorted(WEIGHTS_DIR.glob("*.fp16.pt")):
        record = path.with_suffix("").with_suffix(".json")
        if record.is_file() and json.loads(record.read_text()).get("settings", {}).get("model") == path.name[:-len(".fp16.pt")]:
            names.append(path.name[:-len(".fp16.pt")])
    return names


def standin_files(weights: Optional[PathLike] = None, model: Optional[str] = None) -> tuple[Path, Path]:
    """(weights file, JSON record) of a pretraining folder or a ``.pt`` file, else of the package's
    stand-in for model config ``model`` (default :data:`DEFAULT_MODEL`)."""
    path = shipped_weights(model) if weights is None else Path(weights)
    if path.is_dir():
        path = path / "weights.fp16.pt"
    record = path.with_suffix("").with_suffix(".json")
    if not path.is_file():
        if weights is None and model is not None and model not in shipped_models():
            raise UserError(f"pretrained='synthetic': the package ships no stand-in weights for base_encoder={model!r} "
                            f"(it ships them for {', '.join(shipped_models()) or 'none'}); pretrain some with "
                            f"`glscl-lite pretrain --model {model} --out DIR`, or use pretrained=None for random weights")
        hint = ("the package's stand-in CLIP weights are missing: reinstall glscl-lite, or make them with "
                "`glscl-lite pretrain --out DIR` and pass --weights DIR" if weights is None else
                "run `glscl-lite pretrain --out DIR` to make a pretraining folder (it ends with weights.fp16.pt)")
        raise UserError(f"{path}: stand-in CLIP weights not found; {hint}")
    if not record.is_file():
        raise UserError(f"{record}: the record of {path.name} (model, settings, sha256) is missing; "
                        "export the weights again with `glscl-lite pretrain --out DIR`")
    return path, record


def shipped_record(weights: Optional[PathLike] = None, model: Optional[str] = None) -> dict[str, Any]:
    """The JSON record of a stand-in (default: the shipped one of ``model``)."""
    return json.loads(standin_files(weights, model)[1].read_text())


def _register(record: dict[str, Any]) -> str:
    """Make the record's model config known to open_clip (a folder may use a config the package lacks)."""
    import open_clip

    from glscl_lite.model.backbone import register_configs
    from glscl_lite.model.conv_stem import add_config, model_config

    register_configs()
    name = record["settings"]["model"]
    if name not in open_clip.list_models():
        add_config(name, record["model_config"])
    elif model_config(name) != record["model_config"]:
        raise UserError(f"weights were made for model config {name!r} as recorded, but open_clip's {name!r} "
                        "differs (vision/text sizes); use the package version that shipped them")
    return name


def load_into(model, weights: Optional[PathLike] = None, name: Optional[str] = None):
    """Load stand-in weights into an open_clip ``model`` built from config ``name`` (checked); without
    ``weights``, the package's stand-in of ``name``."""
    path, record_path = standin_files(weights, name if weights is None else None)
    record = json.loads(record_path.read_text())
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


def load_standin(weights: Optional[PathLike] = None, model: Optional[str] = None):
    """A ready open_clip model with the stand-in's weights (default: the package's for ``model``), eval mode."""
    from glscl_lite.model.backbone import random_clip

    path, _ = standin_files(weights, model)
    name = _register(shipped_record(path))
    clip = random_clip(name)
    load_into(clip, path, name)
    return clip.eval()
