"""The one place a similarity head is added: ``HEADS`` maps a ``cfg.head`` name to its class.

Adding a head is one new file (a :class:`~glscl_lite.model.head.Head` subclass) plus one line here.
Entries are classes or ``"module:Class"`` strings (imported on first use, so reading the names --
config validation, the CLI's choices -- stays cheap).  Everything that lists or dispatches on heads
reads this dict: the config's ``head`` choices, :func:`build_head`, the search index
(``indexable`` heads), the FLOPs profile (``paper_comparison`` heads first) and ``search --rerank``.
The order is the order of tables and figures.
"""
from __future__ import annotations

import importlib
from typing import Any, Union

# This module imports nothing of the package at load time: glscl_lite.config reads the head names
# from it while validating, and the head classes (which import the config) load on first use.

HEADS: dict[str, Union[str, type]] = {
    "glscl": "glscl_lite.model.glscl:GLSCLHead",
    "meanp": "glscl_lite.model.baselines:MeanPHead",
    "xpool_like": "glscl_lite.model.baselines:XPoolLikeHead",
    "xclip_like": "glscl_lite.model.baselines:XCLIPLikeHead",
    "glccl": "glscl_lite.model.glccl:GLCCLHead",
    "eercf": "glscl_lite.model.eercf:EERCFHead",
}


def head_names() -> tuple[str, ...]:
    """Every registered head name, in table order."""
    return tuple(HEADS)


def head_class(name: str) -> type:
    """The :class:`~glscl_lite.model.head.Head` subclass registered as ``name`` (imported on first use)."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; available: {', '.join(HEADS)}")
    entry = HEADS[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry


def build_head(cfg: Any, dim: int) -> Any:
    """The similarity head (a :class:`~glscl_lite.model.head.Head`) named by ``cfg.head`` of a Config."""
    return head_class(cfg.head)(cfg, dim)


def needs_patches(cfg: Any) -> bool:
    """Whether the head ``cfg`` names scores patch tokens (a feature cache must then store them)."""
    return head_class(cfg.head).needs_patches(cfg)


def indexable_heads() -> tuple[str, ...]:
    """Heads a search index can hold (they offer stage-1 vectors)."""
    return tuple(n for n in HEADS if head_class(n).indexable)


def paper_heads() -> tuple[str, ...]:
    """Heads of the paper's efficiency comparison (Table I)."""
    return tuple(n for n in HEADS if head_class(n).paper_comparison)


def related_heads() -> tuple[str, ...]:
    """The other registered heads (related methods and additions)."""
    return tuple(n for n in HEADS if not head_class(n).paper_comparison)
