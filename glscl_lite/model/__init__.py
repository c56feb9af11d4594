"""GLSCL model parts, one module per paper component.

* ``backbone.CLIPBackbone``           -- open_clip CLIP: frame CLS, word tokens, EOT sentence (spec 1)
* ``temporal.TemporalTransformer``    -- seqTransf over frames (spec 1.4)
* ``global_interaction.GlobalInteraction`` -- GIM, parameter-free (spec 2)
* ``local_interaction.LocalInteraction``   -- LIM, shared learnable queries (spec 3)
* ``head.Head``                       -- what a similarity head is (protocol + base class)
* ``registry.HEADS``                  -- the one place a head is added (``cfg.head`` name -> class)
* ``glscl.GLSCLHead``                 -- the GLSCL head (GIM + LIM, ICL, IDL)
* ``glscl.RetrievalModel``            -- trunk (CLIP + temporal) plus any head; ``GLSCL`` is its old name
* ``baselines``                       -- meanP, X-Pool-like and X-CLIP-like heads in the same interface
* ``glccl``, ``eercf``                -- the related methods' heads (GLCCL, EERCF) on the same trunk

Names are imported on first use (PEP 562), so reading the head registry does not load torch/open_clip.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CLIPBackbone": "backbone", "register_configs": "backbone",
    "MeanPHead": "baselines", "XCLIPLikeHead": "baselines", "XPoolLikeHead": "baselines",
    "EERCFHead": "eercf", "GLCCLHead": "glccl", "GlobalInteraction": "global_interaction",
    "GLSCL": "glscl", "RetrievalModel": "glscl", "GLSCLHead": "glscl",
    "Head": "head", "Side": "head", "build_head": "registry", "HEADS": "registry",
    "LocalInteraction": "local_interaction", "TemporalTransformer": "temporal",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"glscl_lite.model.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'glscl_lite.model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
