"""GLSCL model parts, one module per paper component.

* ``backbone.CLIPBackbone``           -- open_clip CLIP: frame CLS, word tokens, EOT sentence (spec 1)
* ``temporal.TemporalTransformer``    -- seqTransf over frames (spec 1.4)
* ``global_interaction.GlobalInteraction`` -- GIM, parameter-free (spec 2)
* ``local_interaction.LocalInteraction``   -- LIM, shared learnable queries (spec 3)
* ``glscl.GLSCL``                     -- the whole model and its chunked similarity (spec 5)
* ``baselines``                       -- meanP, X-Pool-like and X-CLIP-like heads in the same interface
* ``glccl``, ``eercf``                -- the related methods' heads (GLCCL, EERCF) on the same trunk
"""
from glscl_lite.model.backbone import CLIPBackbone, register_configs
from glscl_lite.model.baselines import MeanPHead, XCLIPLikeHead, XPoolLikeHead
from glscl_lite.model.eercf import EERCFHead
from glscl_lite.model.glccl import GLCCLHead
from glscl_lite.model.global_interaction import GlobalInteraction
from glscl_lite.model.glscl import GLSCL, GLSCLHead, build_head
from glscl_lite.model.local_interaction import LocalInteraction
from glscl_lite.model.temporal import TemporalTransformer

__all__ = [
    "CLIPBackbone", "EERCFHead", "GLCCLHead", "GLSCL", "GLSCLHead", "GlobalInteraction", "LocalInteraction",
    "MeanPHead", "TemporalTransformer", "XCLIPLikeHead", "XPoolLikeHead", "build_head", "register_configs",
]
