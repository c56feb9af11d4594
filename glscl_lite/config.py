"""Every hyperparameter in one dataclass, plus named presets.

Keys keep the official GLSCL flag names where one exists (``temp``, ``alpha``, ``beta``,
``query_number``, ``cross_att_layer``, ``query_share``, ``cross_att_share``, ``loss2_weight``,
``coef_lr`` ...; spec/glscl.md section 11).  Presets live as small JSON files in
``glscl_lite/configs/`` (``paper``, ``paper-readme``, ``smoke``, ...): a preset only lists the
keys it changes from the dataclass defaults.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Optional, Union, get_args, get_origin, get_type_hints

from glscl_lite.errors import UserError

PRESET_DIR = Path(__file__).parent / "configs"


class ConfigError(UserError, ValueError):
    """A configuration that cannot be used: unknown key, wrong type, unknown preset."""


@dataclass
class Config:
    # ---- data (spec section 6) -------------------------------------------------------------
    anno_path: str = "data/synthetic"
    """Folder with MSRVTT_data.json and the split CSVs."""
    video_path: str = "data/synthetic/videos"
    """Folder with <video_id>.mp4."""
    train_csv: str = "MSRVTT_train.9k.csv"
    """Training video list (relative to anno_path unless absolute)."""
    val_csv: Optional[str] = None
    """Validation captions (JSFUSION format). None: carve ``val_videos`` videos out of train_csv."""
    val_videos: int = 500
    """Videos held out of the training list for model selection when val_csv is None."""
    test_csv: str = "MSRVTT_JSFUSION_test.csv"
    frame_cache: Optional[str] = None
    """Folder of a frame cache (``glscl-lite cache frames``); None decodes videos on the fly."""
    feature_cache: Optional[str] = None
    """Folder of a feature cache (``glscl-lite cache features``); trains the head only."""
    max_words: int = 32
    max_frames: int = 12
    video_framerate: int = 1
    augment: bool = True
    """Video-consistent RandAugment rand-m7-n4-mstd0.5-inc1 on training clips (official)."""
    workers: int = 4

    # ---- model (spec sections 1-3) ---------------------------------------------------------
    head: str = "glscl"
    """Similarity head: glscl | meanp | xpool_like | xclip_like | glccl | eercf (``glscl_lite.model.registry.HEADS``)."""
    base_encoder: str = "ViT-B-32-quickgelu"
    """open_clip model name (``glscl-tiny`` is the registered CPU config)."""
    pretrained: Optional[str] = "openai"
    """open_clip pretrained tag, a local checkpoint path, or None for random weights."""
    text_mask: str = "official"
    """official: causal AND key-padding mask in the text tower; clip: plain causal mask."""
    agg_module: str = "seqTransf"
    """Temporal module over frame features: seqTransf (official) | None (raw CLIP frames)."""
    num_hidden_layers: int = 4
    """Temporal transformer depth (initialised from CLIP text blocks 0..n-1)."""
    temp: float = 3.0
    """GIM softmax temperature tau_g."""
    query_number: int = 8
    """K learnable queries of the LIM."""
    cross_att_layer: int = 3
    """N_L decoder layers of the LIM."""
    lim_heads: int = 8
    lim_ffn_dim: int = 2048
    lim_dropout: float = 0.1
    query_share: bool = True
    cross_att_share: bool = True
    lim_mask_padding: bool = False
    """False (official, S5): queries attend padded words and frames. True: key-padding masks."""
    loss2_weight: float = 0.5
    """lambda: weight of the local score Sim2 in Sim1 + lambda*Sim2."""

    # ---- losses (spec section 4) -----------------------------------------------------------
    icl: bool = True
    """Inter-consistency loss (code name Intra_Consistency, S2)."""
    idl: bool = True
    """Intra-diversity loss (code name Inter_Diversity, S2)."""
    alpha: float = 1e-4
    beta: float = 0.005
    icl_normalizer: str = "official"
    """official: c_k = sum_b cos / K (S3); batch: sum_b cos / B."""
    idl_modalities: str = "video"
    """video (official) | both (paper wording: visual and textual queries)."""

    # ---- optimisation (spec section 7) -----------------------------------------------------
    optimizer: str = "bertadam"
    """bertadam (official: no bias correction, per-tensor clipping) | adamw."""
    lr: float = 1e-4
    coef_lr: float = 1e-3
    """CLIP parameters train at lr * coef_lr."""
    weight_decay: float = 0.2
    warmup_proportion: float = 0.1
    max_grad_norm: float = 1.0
    epochs: int = 5
    schedule_epochs: Optional[int] = 5
    """Cosine schedule length in epochs; official hard-codes 5 (S11). None: follow ``epochs``."""
    batch_size: int = 128
    batch_size_val: int = 128
    max_steps: Optional[int] = None
    """Stop after this many optimiser steps (smoke runs)."""
    eval_every: int = 150
    """Validation every N steps (official: 3*n_display = 150) and at each epoch end; 0 = epochs only."""
    patience: int = 0
    """Stop after this many validations in a row without a better validation score (early stopping;
    the best checkpoint is then the one evaluated); 0 = train the whole schedule (official)."""
    log_every: int = 10
    seed: int = 42
    freeze_backbone: bool = False
    """Keep CLIP fixed (close in effect to the official fp16 weights at lr 1e-7, S1)."""

    # ---- runtime ---------------------------------------------------------------------------
    device: str = "auto"
    """auto | cpu | cuda | cuda:N"""
    precision: str = "auto"
    """auto (fp32 on CPU, bf16 autocast on GPU) | fp32 | bf16."""
    compile: bool = False
    dsl: bool = False
    """Also report dual-softmax (DSL) re-ranked metrics at evaluation (beside raw ones)."""
    eval_chunk: int = 1000
    """Rows/columns per block when building a similarity matrix."""
    checkpoint_every: int = 0
    """Save a resumable checkpoint every N steps (0: at evaluations and epoch ends only)."""

    # ---- related methods: GLCCL and EERCF heads (spec/glccl_eercf.md sections 3-4) ----------
    glccl_temp: float = 5.0
    """GLCCL: GLIM softmax temperature on raw (un-normalised) dot products (released code: 5)."""
    glccl_frame_mask: bool = False
    """GLCCL: False (released) lets padded frames take GLIM weight; True: softmax over valid frames."""
    glccl_csc_weight: float = 0.5
    """GLCCL: weight of the CSC loss (README commands 0.5, preset ``glccl``; argparse default 0.1,
    preset ``glccl-argparse``)."""
    eercf_topk: int = 50
    """EERCF: candidates per query that stage 2 reranks (released ``--rerantopk 50``)."""
    eercf_patches: bool = True
    """EERCF: use the weak patch score (needs patch tokens; a feature cache built with head=eercf
    stores them).  False: the frame-only variant (spec 6.2)."""

    # -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Config":
        return apply_overrides(self, changes)

    def resolve(self, path: Optional[str]) -> Optional[Path]:
        """Path of an annotation file: absolute, or relative to ``anno_path``."""
        if path is None:
            return None
        p = Path(path)
        return p if p.is_absolute() else Path(self.anno_path) / p


def config_keys() -> list[str]:
    return [f.name for f in fields(Config)]


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` (possibly a string from ``--set``) to the field's type."""
    origin = get_origin(annotation)
    if origin is Union:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(name, value, args[0])
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected a boolean, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    return value


_CHOICES = {
    "text_mask": ("official", "clip"),
    "icl_normalizer": ("official", "batch"),
    "idl_modalities": ("video", "both"),
    "optimizer": ("bertadam", "adamw"),
    "precision": ("auto", "fp32", "bf16"),
    "agg_module": ("seqTransf", "None"),
}


def _choices(key: str) -> tuple[str, ...]:
    """Allowed values of a choice key; ``head`` reads the head registry (:mod:`glscl_lite.model.registry`)."""
    if key == "head":
        from glscl_lite.model.registry import head_names

        return head_names()
    return _CHOICES[key]


CHOICE_KEYS = (*_CHOICES, "head")


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return a copy of ``cfg`` with ``overrides`` applied; unknown keys raise ConfigError."""
    hints = get_type_hints(Config)
    valid = config_keys()
    data = cfg.to_dict()
    for key, value in overrides.items():
        if key not in hints:
            raise ConfigError(
                f"unknown config key {key!r}; valid keys: {', '.join(valid)}"
            )
        data[key] = _coerce(key, value, hints[key])
        if key in CHOICE_KEYS and data[key] not in _choices(key):
            raise ConfigError(f"{key}: {data[key]!r} is not one of {', '.join(_choices(key))}")
    out = Config(**data)
    validate(out)
    return out


# (key, lowest allowed value, whether the lowest is allowed) -- every other number only has to be finite
_RANGES: dict[str, tuple[float, bool]] = {
    "val_videos": (1, True), "max_words": (3, True), "max_frames": (1, True), "video_framerate": (1, True),
    "workers": (0, True), "num_hidden_layers": (0, True), "temp": (0, False), "query_number": (1, True),
    "cross_att_layer": (1, True), "lim_heads": (1, True), "lim_ffn_dim": (1, True), "lim_dropout": (0, True),
    "loss2_weight": (0, True), "alpha": (0, True), "beta": (0, True), "lr": (0, False), "coef_lr": (0, True),
    "weight_decay": (0, True), "warmup_proportion": (0, True), "max_grad_norm": (0, False), "epochs": (1, True),
    "schedule_epochs": (1, True), "batch_size": (2, True), "batch_size_val": (1, True), "max_steps": (1, True),
    "eval_every": (0, True), "patience": (0, True), "log_every": (1, True), "eval_chunk": (1, True), "checkpoint_every": (0, True),
    "glccl_temp": (0, False), "glccl_csc_weight": (0, True), "eercf_topk": (1, True),
}
_BELOW_ONE = ("lim_dropout", "warmup_proportion")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
_HINTS = {"batch_size": "the contrastive loss needs negatives", "val_videos": "model selection needs a validation split",
          "epochs": "a run that trains zero steps is an error", "max_steps": "None for no cap; 0 steps is an error",
          "temp": "a softmax temperature", "lr": "the learning rate"}


def validate(cfg: Config) -> None:
    """Every setting in one place: types, ranges, finiteness, choices.  ConfigError names the key,
    the value and what is allowed.  (Device availability: :func:`check_runnable`.)"""
    hints = get_type_hints(Config)
    for f in fields(Config):
        value, ann = getattr(cfg, f.name), hints[f.name]
        optional = get_origin(ann) is Union and type(None) in get_args(ann)
        base = [a for a in get_args(ann) if a is not type(None)][0] if optional else ann
        if value is None:
            if not optional:
                raise ConfigError(f"{f.name}: must be set (got None)")
            continue
        ok = (isinstance(value, bool) if base is bool else
              isinstance(value, int) and not isinstance(value, bool) if base is int else
              isinstance(value, (int, float)) and not isinstance(value, bool) if base is float else
              isinstance(value, str) if base is str else True)
        if not ok:
            raise ConfigError(f"{f.name}: expected {getattr(base, '__name__', base)}, got {value!r}")
        if base in (int, float):
            if not math.isfinite(value):
                raise ConfigError(f"{f.name}: must be a finite number, got {value!r}")
            if f.name in _RANGES and not (f.name == "val_videos" and cfg.val_csv):
                low, inclusive = _RANGES[f.name]
                if value < low or (value == low and not inclusive):
                    why = f" ({_HINTS[f.name]})" if f.name in _HINTS else ""
                    raise ConfigError(f"{f.name}: must be {'>=' if inclusive else '>'} {low:g}, got {value!r}{why}")
            if f.name in _BELOW_ONE and value >= 1:
                raise ConfigError(f"{f.name}: must be < 1, got {value!r}")
    for key in CHOICE_KEYS:
        choices = _choices(key)
        if getattr(cfg, key) not in choices:
            raise ConfigError(f"{key}: {getattr(cfg, key)!r} is not one of {', '.join(choices)}")
    if not _DEVICE.match(cfg.device):
        raise ConfigError(f"device: {cfg.device!r} is not one of auto, cpu, cuda, cuda:N")


def check_runnable(cfg: Config) -> None:
    """:func:`validate` plus what depends on this machine (the device); called before a run
    folder or cache is touched."""
    validate(cfg)
    if cfg.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device: {cfg.device!r} but CUDA is not available on this machine; "
                              "use --set device=cpu (or auto)")
        index = int(cfg.device.split(":")[1]) if ":" in cfg.device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device: {cfg.device!r} but this machine has {torch.cuda.device_count()} "
                              "CUDA device(s)")


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> Config:
    path = PRESET_DIR / f"{name}.json"
    if not path.exists():
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(list_presets())}")
    return load_config_file(path)


def load_config_file(path: Union[str, Path]) -> Config:
    """A JSON file of overrides on the defaults (a run's config.json is such a file too).

    A file may name a base preset with ``"preset": NAME``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of config keys")
    data = {k: v for k, v in data.items() if not k.startswith("_")}  # "_comment" keys
    base = Config()
    if "preset" in data:
        base = load_preset(data.pop("preset"))
    try:
        return apply_overrides(base, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_config(name_or_path: str, overrides: Iterable[str] = ()) -> Config:
    """``--config FILE|PRESET`` plus ``--set key=value`` strings."""
    p = Path(name_or_path)
    cfg = load_config_file(p) if p.suffix == ".json" or p.exists() else load_preset(name_or_path)
    return apply_overrides(cfg, parse_sets(overrides))


def resolve_config(config: Union[str, Path, Config], overrides: Iterable[str] = ()) -> Config:
    """The one way a config is resolved: a :class:`Config` (copied), a preset name or a JSON file,
    with ``--set key=value`` strings applied on top (unknown keys and bad values raise ConfigError)."""
    if isinstance(config, Config):
        return apply_overrides(config, parse_sets(overrides))
    return load_config(str(config), overrides)


def parse_sets(items: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


# ------------------------------------------------------------------------------- key categories
# keys that never change a run's result
NEUTRAL_KEYS = frozenset({"device", "workers", "log_every", "eval_chunk", "batch_size_val", "checkpoint_every", "dsl"})
# run-length keys: a finished run may be extended (or re-ended) in the same folder
LENGTH_KEYS = frozenset({"max_steps", "epochs"})
# keys that may differ when resuming a run
RUNTIME_KEYS = NEUTRAL_KEYS | LENGTH_KEYS
# keys that define the network's shapes (a checkpoint from another setting cannot load)
MODEL_KEYS = ("base_encoder", "head", "agg_module", "num_hidden_layers", "query_number", "cross_att_layer",
              "lim_heads", "lim_ffn_dim", "query_share", "cross_att_share")
# keys a feature cache's CLIP outputs depend on (a cache built with other values is refused)
FEATURE_CACHE_KEYS = ("base_encoder", "pretrained", "text_mask", "max_words", "max_frames", "video_framerate")
