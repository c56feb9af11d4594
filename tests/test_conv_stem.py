"""The convolutional stem of the stand-in's ViT: same token grid as the patch embedding, frozen with it,
recorded with the model config, and refused when it cannot give that grid."""
from __future__ import annotations

import copy
import json

import open_clip
import pytest
import torch

from glscl_lite.errors import UserError
from glscl_lite.model.backbone import CONFIG_DIR, CLIPBackbone, random_clip, register_configs
from glscl_lite.model.conv_stem import STEM_KEY, ConvStem, add_config, check_spec, model_config

PLAIN = "glscl-tiny"


def _stem_config() -> dict:
    cfg = json.loads((CONFIG_DIR / f"{PLAIN}.json").read_text())
    cfg[STEM_KEY] = [[8, 2], [16, 2], [16, 4]]          # strides 2*2*4 = the tiny model's 16-px patches
    return cfg


def test_stem_gives_the_patch_embeddings_token_grid_and_patch_tokens():
    add_config("test-stem-tiny", _stem_config())
    torch.manual_seed(0)
    model = random_clip("test-stem-tiny")
    assert isinstance(model.visual.conv1, ConvStem)
    x = torch.randn(2, 3, 64, 64)
    plain = random_clip(PLAIN).visual.conv1(x)
    assert model.visual.conv1(x).shape == plain.shape == (2, model.visual.conv1[-1].out_channels, 4, 4)
    backbone = CLIPBackbone("test-stem-tiny", None)
    cls, patches = backbone.encode_frames(x, return_patches=True)
    assert cls.shape == (2, backbone.embed_dim) and patches.shape == (2, 16, backbone.embed_dim)
    assert not any(p.requires_grad for p in backbone.clip.visual.conv1.parameters())  # the frozen patch embedding
    assert all(p.requires_grad for p in backbone.clip.visual.transformer.parameters())


def test_model_config_carries_the_stem_open_clip_does_not_see_it():
    add_config("test-stem-tiny", _stem_config())
    assert model_config("test-stem-tiny")[STEM_KEY] == [[8, 2], [16, 2], [16, 4]]
    assert STEM_KEY not in open_clip.get_model_config("test-stem-tiny")      # open_clip builds the rest
    assert STEM_KEY not in model_config(PLAIN)
    register_configs()
    assert STEM_KEY in model_config("glscl-synthetic-hybrid") and STEM_KEY not in model_config("glscl-synthetic")
    plain = copy.deepcopy(_stem_config())
    del plain[STEM_KEY]
    add_config("test-stem-tiny", plain)                                      # re-registered without: gone
    assert not isinstance(random_clip("test-stem-tiny").visual.conv1, ConvStem)


@pytest.mark.parametrize("spec, message", [
    ([[8, 2], [16, 2]], "multiply to 4, but the patch size is 16"),
    ([[8, 2, 1]], "list of \\[channels, stride\\] pairs"),
    ([], "list of \\[channels, stride\\] pairs"),
    ([[8, 0]], "list of \\[channels, stride\\] pairs"),
])
def test_a_stem_that_cannot_give_the_grid_is_refused(spec, message):
    with pytest.raises(UserError, match=message):
        check_spec(spec, 16)
    cfg = _stem_config()
    cfg[STEM_KEY] = spec
    with pytest.raises(UserError, match="test-bad-stem: conv_stem"):
        add_config("test-bad-stem", cfg)
