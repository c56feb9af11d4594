"""The two ways an offline GPU box keeps CLIP weights, built here from a random ViT-B/32 in the right
key layout (no network), and loaded through ``glscl_lite.model.backbone``:

* OpenAI's own file, as ``~/.cache/clip/ViT-B-32.pt`` holds it (a TorchScript archive of fp16
  tensors in OpenAI's key layout, plus ``input_resolution`` / ``context_length`` / ``vocab_size``),
  or the same weights as a plain state dict, passed as ``pretrained=PATH``;
* open_clip's Hugging Face cache (``$HF_HOME/hub/models--timm--vit_base_patch32_clip_224.openai``)
  pre-populated on disk, used by ``pretrained="openai"`` with ``HF_HUB_OFFLINE=1``.

Both must give a QuickGELU model holding exactly the file's weights; a file of another architecture,
or OpenAI weights for a GELU model, is refused with a message that says so.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

# OpenAI's checkpoint files are TorchScript archives: writing one (here) and reading one (the loader)
# goes through torch.jit, which torch 2.14 marks deprecated -- expected, not a problem of this code.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*is deprecated:FutureWarning")

from glscl_lite.errors import UserError  # noqa: E402 -- after the marker that explains the warnings
from glscl_lite.model.backbone import CLIPBackbone  # noqa: E402

NAME = "ViT-B-32-quickgelu"
HF_REPO = "timm/vit_base_patch32_clip_224.openai"  # open_clip's hf_hub entry for ("ViT-B-32-quickgelu", "openai")


class _Node(nn.Module):
    """An empty module: a tree of them holds tensors under OpenAI's dotted names."""


def openai_torchscript(state_dict: dict[str, torch.Tensor], path: Path) -> Path:
    """Write ``state_dict`` as OpenAI ships CLIP: TorchScript, fp16 floats, three integer entries."""
    root = _Node()
    for key, value in state_dict.items():
        *parents, leaf = key.split(".")
        mod = root
        for p in parents:
            if not isinstance(getattr(mod, p, None), nn.Module):
                mod.add_module(p, _Node())
            mod = getattr(mod, p)
        if value.is_floating_point():
            mod.register_parameter(leaf, nn.Parameter(value.half(), requires_grad=False))
        else:
            mod.register_buffer(leaf, value)
    for key, value in (("input_resolution", 224), ("context_length", 77), ("vocab_size", 49408)):
        root.register_buffer(key, torch.tensor(value))
    torch.jit.save(torch.jit.script(root), str(path))
    return path


def activations(model: nn.Module) -> set[str]:
    return {type(m).__name__ for m in model.modules() if type(m).__name__ in ("QuickGELU", "GELU")}


@pytest.fixture(scope="module")
def random_b32() -> dict[str, torch.Tensor]:
    """State dict of a randomly initialised ViT-B-32-quickgelu (open_clip's keys = OpenAI's keys)."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model(NAME, pretrained=None)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def openai_file(random_b32, tmp_path_factory) -> Path:
    return openai_torchscript(random_b32, tmp_path_factory.mktemp("clip") / "ViT-B-32.pt")


def assert_holds(bb: CLIPBackbone, state: dict[str, torch.Tensor], half: bool) -> None:
    own = bb.clip.state_dict()
    for key in ("visual.conv1.weight", "visual.proj", "token_embedding.weight", "text_projection",
                "transformer.resblocks.11.mlp.c_fc.weight", "logit_scale"):
        want = state[key].half().float() if half else state[key]
        assert torch.equal(own[key], want), key
    assert own["visual.proj"].dtype == torch.float32
    assert activations(bb.clip) == {"QuickGELU"}, "OpenAI weights need QuickGELU everywhere"


@pytest.mark.slow
def test_openai_torchscript_file_as_pretrained_path(openai_file, random_b32):
    bb = CLIPBackbone(NAME, pretrained=str(openai_file))
    assert_holds(bb, random_b32, half=True)
    with torch.no_grad():  # and it runs
        sentence, words = bb.encode_text(torch.tensor([[49406, 320, 1929, 49407]]), torch.ones(1, 4))
    assert sentence.shape == (1, 512) and torch.isfinite(sentence).all()


@pytest.mark.slow
def test_plain_state_dict_file_as_pretrained_path(random_b32, tmp_path):
    path = tmp_path / "vit_b32_state_dict.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in random_b32.items()}}, path)  # a trainer's wrapper
    assert_holds(CLIPBackbone(NAME, pretrained=str(path)), random_b32, half=False)


@pytest.mark.slow
def test_openai_file_for_a_gelu_model_is_refused(openai_file):
    with pytest.raises(UserError, match="QuickGELU.*quickgelu"):
        CLIPBackbone("ViT-B-32", pretrained=str(openai_file))


@pytest.mark.slow
def test_file_of_another_architecture_is_refused(tmp_path):
    import open_clip

    from glscl_lite.model.backbone import register_configs

    register_configs()
    path = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("glscl-tiny", pretrained=None).state_dict(), path)
    with pytest.raises(UserError, match=r"not a ViT-B-32-quickgelu checkpoint \(\d+ tensor\(s\) of another shape"):
        CLIPBackbone(NAME, pretrained=str(path))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read a CLIP checkpoint"):
        CLIPBackbone(NAME, pretrained=str(tmp_path / "junk.pt"))


@pytest.mark.slow
def test_huggingface_cache_layout_offline(random_b32, tmp_path):
    """open_clip's ``pretrained="openai"`` resolves to the HF hub repo; with the file in the cache
    layout under ``HF_HOME`` and ``HF_HUB_OFFLINE=1`` it loads without any network.  Runs in a
    subprocess: huggingface_hub reads ``HF_HOME`` / ``HF_HUB_OFFLINE`` when it is imported."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / f"models--{HF_REPO.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    weights = snapshot / "open_clip_pytorch_model.bin"
    torch.save(random_b32, weights)
    script = textwrap.dedent(f"""
        import json, torch
        from glscl_lite.model.backbone import CLIPBackbone, weights_cached, hub_reachable
        assert not hub_reachable()
        assert weights_cached({NAME!r}, "openai")
        bb = CLIPBackbone({NAME!r}, pretrained="openai")
        sd = torch.load({str(weights)!r}, weights_only=True)
        own = bb.clip.state_dict()
        print(json.dumps({{"same": all(torch.equal(own[k], sd[k]) for k in sd),
                          "acts": sorted({{type(m).__name__ for m in bb.clip.modules()
                                          if type(m).__name__ in ("QuickGELU", "GELU")}})}}))
    """)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"same": True, "acts": ["QuickGELU"]}
