"""GLSCL model parts, one module per paper component.

* ``backbone.CLIPBackbone``           -- open_clip CLIP: frame CLS, word tokens, EOT sentence (spec 1)
* ``temporal.TemporalTransformer``    -- seqTransf over frames (spec 1.4)
* ``global_interaction.GlobalInteraction`` -- GIM, parameter-free (spec 2)
* ``local_interaction.LocalInteraction``   -- LIM, shared learnable queries (spec 3)
* ``glscl.GLSCL``                     -- the whole model and its chunked similarity (spec 5)
* ``baselines``                       -- meanP and other heads in the same interface
"""
from glscl_lite.model.backbone import CLIPBackbone, register_configs
from glscl_lite.model.baselines import MeanPHead
from glscl_lite.model.global_interaction import GlobalInteraction
from glscl_lite.model.glscl import GLSCL, GLSCLHead, build_head
from glscl_lite.model.local_interaction import LocalInteraction
from glscl_lite.model.temporal import TemporalTransformer

__all__ = [
    "CLIPBackbone", "GLSCL", "GLSCLHead", "GlobalInteraction", "LocalInteraction", "MeanPHead",
    "TemporalTransformer", "build_head", "register_configs",
]
