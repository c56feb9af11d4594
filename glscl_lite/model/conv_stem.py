"""A convolutional stem for the stand-in's ViT: early convolutions in place of the patchify conv.

A ViT cuts the image into ``p x p`` patches with one strided convolution (``visual.conv1``,
kernel = stride = ``p``) and must learn every spatial pattern inside a patch from data.  CLIP's
ViTs had 400 M image-text pairs for that; the stand-in has a CPU hour.  Measured on the synthetic
frames (``benchmarks/vision_shape_probe.py``, supervised shape and size heads, 150 trainer
CPU-seconds each, ``docs/results/pretrain/vision_probe.json``): the plain 2-layer ViT reads shape at
18.4 % after 19,200 frames and 23.4 % after 46,208 (chance 12.5 %); the same ViT behind a stack of
3x3 convolutions at 27.0 % after 16,384 frames, per frame the faster learner; a plain CNN at 53.6 %
after 19,200.  This is the "hybrid" ViT of
Dosovitskiy et al. (2021) and the convolutional stem of Xiao et al., "Early Convolutions Help
Transformers See Better" (2021).

The stem keeps the ViT's token grid: its strides multiply to the patch size, so ``[N,3,S,S] ->
[N,width,S/p,S/p]`` exactly like ``conv1``; class token, positional embedding, transformer,
``ln_post``/``proj`` and the patch tokens EERCF scores are unchanged.  It replaces ``visual.conv1``
(same attribute), so "the patch embedding is frozen" (official code) freezes the whole stem.

Configuration: a model JSON in ``glscl_lite/model/configs`` may carry ``"conv_stem": [[c1, s1],
[c2, s2], ...]`` beside open_clip's keys: 3x3 convolutions with ``c`` output channels and stride
``s``, each followed by GELU, then a 3x3 stride-1 convolution to the transformer width.  open_clip
does not know the key, so :func:`add_config` keeps it here and gives open_clip the rest;
:func:`model_config` returns both (what a weights record stores).
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

from torch import nn

from glscl_lite.errors import UserError

__all__ = ["STEM_KEY", "ConvStem", "add_config", "add_config_dir", "model_config", "apply_stem"]

STEM_KEY = "conv_stem"
_STEMS: dict[str, list[list[int]]] = {}


class ConvStem(nn.Sequential):
    """3x3 convolutions (GELU between) whose strides multiply to ``patch_size``; ``[N,3,S,S] -> [N,width,S/p,S/p]``."""

    def __init__(self, spec: Sequence[Sequence[int]], width: int, patch_size: int):
        check_spec(spec, patch_size)
        layers: list[nn.Module] = []
        c_in = 3
        for c_out, stride in spec:
            layers += [nn.Conv2d(c_in, int(c_out), 3, int(stride), 1), nn.GELU()]
            c_in = int(c_out)
        layers.append(nn.Conv2d(c_in, width, 3, 1, 1))
        super().__init__(*layers)


def check_spec(spec: Any, patch_size: int, where: str = "conv_stem") -> None:
    """Refuse a stem that is not a list of ``[channels, stride]`` pairs with strides multiplying to ``patch_size``."""
    ok = isinstance(spec, (list, tuple)) and spec and all(
        isinstance(layer, (list, tuple)) and len(layer) == 2 and all(isinstance(v, int) and v >= 1 for v in layer)
        for layer in spec)
    if not ok:
        raise UserError(f"{where}: expected a list of [channels, stride] pairs of positive integers, got {spec!r}")
    strides = math.prod(int(s) for _, s in spec)
    if strides != patch_size:
        raise UserError(f"{where}: the strides multiply to {strides}, but the patch size is {patch_size}: "
                        "the stem must give the same token grid as the patch embedding")


def add_config(name: str, cfg: dict[str, Any]) -> None:
    """Make model config ``cfg`` known to open_clip as ``name`` (its ``conv_stem``, if any, kept here)."""
    from open_clip.factory import _MODEL_CONFIGS

    cfg = copy.deepcopy(cfg)
    stem = cfg.pop(STEM_KEY, None)
    if stem is not None:
        check_spec(stem, int(cfg["vision_cfg"]["patch_size"]), f"{name}: {STEM_KEY}")
        _STEMS[name] = [list(layer) for layer in stem]
    else:
        _STEMS.pop(name, None)
    _MODEL_CONFIGS[name] = cfg


def add_config_dir(folder: Path) -> None:
    """Register every model JSON of ``folder`` (open_clip's ``add_model_config``, stems understood)."""
    for path in sorted(Path(folder).glob("*.json")):
        cfg = json.loads(path.read_text())
        if all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
            add_config(path.stem, cfg)


def model_config(name: str) -> Optional[dict[str, Any]]:
    """open_clip's config of ``name`` plus its ``conv_stem`` (None for an unknown name)."""
    import open_clip

    cfg = open_clip.get_model_config(name)
    if cfg is not None and name in _STEMS:
        cfg[STEM_KEY] = copy.deepcopy(_STEMS[name])
    return cfg


def apply_stem(model: nn.Module, name: str) -> nn.Module:
    """Replace ``model.visual.conv1`` by the stem of config ``name`` (no-op without one); returns ``model``."""
    spec = _STEMS.get(name)
    if spec is None:
        return model
    conv1 = model.visual.conv1
    if not isinstance(conv1, nn.Conv2d):  # already a stem
        return model
    model.visual.conv1 = ConvStem(spec, conv1.out_channels, conv1.kernel_size[0]).to(conv1.weight.device)
    return model
