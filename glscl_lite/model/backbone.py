"""The CLIP backbone: an open_clip model chosen by name, with the token outputs GLSCL needs.

spec/glscl.md section 1.2-1.3.  Outputs (not L2-normalised):

* ``encode_text(ids [B,L], mask [B,L]) -> (sentence [B,D], words [B,L,D])``: every position goes
  through ``ln_final`` and ``text_projection``; the sentence feature is the EOT position
  (``argmax`` of the ids, EOT = 49407 is the largest id).  Attention mask: the official
  causal AND key-padding mask by default (``text_mask="official"``), plain CLIP causal masking
  with ``text_mask="clip"``.
* ``encode_frames(images [N,3,S,S]) -> cls [N,D]`` (``ln_post`` + ``proj`` on the class token),
  optionally with the patch tokens ``[N,P,D]`` (same ``ln_post`` + ``proj`` on every token).

The patch-embedding convolution is frozen, as in the official code.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from glscl_lite.errors import OfflineError, UserError

CONFIG_DIR = Path(__file__).parent / "configs"
TINY = "glscl-tiny"
_registered = False


class _RandomInitNotice(logging.Filter):
    """Drops open_clip's "No pretrained weights loaded for model ... Model initialized randomly."

    open_clip logs it on the root logger whenever ``pretrained`` is None.  Here that is always the
    caller's choice (random CPU and speed-measurement models; the ``synthetic`` stand-in loads its
    weights right after), so the warning only alarmed readers (issue 13: five times in notebook 08).
    Every other open_clip message, e.g. about partially loaded weights, still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No pretrained weights loaded for model")


def register_configs() -> None:
    """Register the project's open_clip JSON configs (``glscl-tiny``) once, and silence open_clip's
    random-initialisation notice (see :class:`_RandomInitNotice`)."""
    global _registered
    if not _registered:
        from glscl_lite.model.conv_stem import add_config_dir

        add_config_dir(CONFIG_DIR)  # open_clip's add_model_config, plus the configs' conv stems
        logging.getLogger().addFilter(_RandomInitNotice())
        _registered = True


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the model hub answers (False at once when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def weights_cached(name: str, tag: str) -> bool:
    """Whether open_clip's ``pretrained=tag`` weights for ``name`` are in the local cache (no download)."""
    from open_clip import pretrained as ocp

    cfg = ocp.get_pretrained_cfg(name, tag)
    if not cfg:
        return False
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache

            repo, fname = os.path.split(hub)
            for f in ([fname] if fname else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]):
                if isinstance(try_to_load_from_cache(repo.rstrip("/"), f), str):
                    return True
        except Exception:  # huggingface_hub missing or cache layout unknown: let open_clip try
            return True
    url = cfg.get("url", "")
    if url:
        cached = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if cached.exists():
            return True
    return False


OFFLINE_HELP = (
    "pretrained={tag!r} weights for {name!r} are not in the local cache and the model hub cannot be "
    "reached. On a connected machine run\n"
    "    python -c \"import open_clip; open_clip.create_model('{name}', pretrained='{tag}')\"\n"
    "(weights go to ~/.cache/huggingface and are found offline afterwards), or download OpenAI's "
    "ViT-B-32.pt and pass its path: --set pretrained=/path/to/ViT-B-32.pt.  "
    "For offline experiments use --set pretrained=None (random weights)."
)


def random_clip(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """A randomly initialised open_clip model of config ``name``, with its conv stem if it has one
    (:mod:`glscl_lite.model.conv_stem`).  Every model without downloaded weights is built here."""
    import open_clip

    from glscl_lite.model.conv_stem import apply_stem

    register_configs()
    return apply_stem(open_clip.create_model(name, pretrained=None, device=device), name)


def create_clip(name: str, pretrained: Optional[str], device: str | torch.device = "cpu") -> nn.Module:
    """Build an open_clip CLIP model; fail fast with a helpful message when weights are unreachable."""
    import open_clip

    register_configs()
    if name not in open_clip.list_models():
        raise UserError(f"unknown open_clip model {name!r}; e.g. ViT-B-32-quickgelu, ViT-B-16-quickgelu, {TINY}")
    if pretrained and Path(pretrained).expanduser().is_file():  # a local file: OpenAI's .pt or a state dict
        model = random_clip(name)
        return load_weights_file(model, Path(pretrained).expanduser(), name).to(device)
    if name.startswith("ViT-B-32") and "quickgelu" not in name and pretrained == "openai":
        # field notes 3.4: open_clip 3.x builds nn.GELU for 'ViT-B-32' + openai and only warns.
        raise UserError("use 'ViT-B-32-quickgelu' with pretrained='openai': plain 'ViT-B-32' builds GELU, "
                        "but the OpenAI weights were trained with QuickGELU")
    if pretrained == "synthetic":  # the project's own stand-in, shipped in the package (no network)
        from glscl_lite.model.standin import load_into

        return load_into(random_clip(name, device), None, name)
    if pretrained and not Path(pretrained).exists():
        if not weights_cached(name, pretrained) and not hub_reachable():
            raise OfflineError(OFFLINE_HELP.format(name=name, tag=pretrained))
    if not pretrained:
        return random_clip(name, device)
    try:
        model = open_clip.create_model(name, pretrained=pretrained, device=device)
    except RuntimeError as exc:
        if "Failed to download" in str(exc):
            raise OfflineError(OFFLINE_HELP.format(name=name, tag=pretrained)) from None
        raise
    return model


def _is_torchscript(path: Path) -> bool:
    """OpenAI's ``~/.cache/clip/*.pt`` files are TorchScript archives (a zip with ``constants.pkl``)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def read_weights_file(path: str | Path) -> tuple[dict, bool]:
    """``(state_dict, openai_format)`` of a CLIP checkpoint file: an OpenAI TorchScript archive (as
    kept in ``~/.cache/clip``; its ``input_resolution`` / ``context_length`` / ``vocab_size`` entries
    dropped), or a plain state dict in OpenAI's / open_clip's key layout (``.pt``/``.bin``, optionally
    under ``"state_dict"`` with ``module.`` prefixes, or ``.safetensors``)."""
    path = Path(path)
    if _is_torchscript(path):
        sd = dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        for k in ("input_resolution", "context_length", "vocab_size"):
            sd.pop(k, None)
        return sd, True
    from open_clip.factory import load_state_dict

    try:
        sd = load_state_dict(str(path), device="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{path}: cannot read a CLIP checkpoint ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path}: not a state dict of tensors")
    return dict(sd), "input_resolution" in sd


def load_weights_file(model: nn.Module, path: str | Path, name: str) -> nn.Module:
    """Load CLIP weights from a local file into ``model`` (built as ``name``), checking first that
    the file is a checkpoint of that architecture (clear error naming the mismatching tensors) and
    that OpenAI weights go into a QuickGELU model."""
    sd, openai_format = read_weights_file(path)
    for k in ("input_resolution", "context_length", "vocab_size"):
        sd.pop(k, None)
    quick = any(type(m).__name__ == "QuickGELU" for m in model.modules())
    if openai_format and not quick:
        raise UserError(f"{path} holds OpenAI CLIP weights (trained with QuickGELU) but {name!r} builds GELU; "
                        f"use the '-quickgelu' model name (e.g. 'ViT-B-32-quickgelu')")
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {list(sd[k].shape)} in the file, {list(own[k].shape)} in {name}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} tensor(s) of another shape, e.g. {shapes[0]}")
        if missing:
            parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
        raise UserError(f"{path}: not a {name} checkpoint ({'; '.join(parts)})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)
    return model


def official_text_attention_mask(mask: torch.Tensor, num_heads: int, dtype: torch.dtype) -> torch.Tensor:
    """Causal AND key-padding additive mask, ``[B*heads, L, L]`` (spec 1.2, step 2).

    Query i may attend key j iff j <= i and mask[b, j] = 1.  A padded query position attends all
    real tokens but not itself.  Rows are ordered batch-major (``repeat_interleave``), the layout
    ``nn.MultiheadAttention`` expects.
    """
    B, L = mask.shape
    causal = torch.ones(L, L, dtype=torch.bool, device=mask.device).tril()
    allowed = causal.unsqueeze(0) & (mask > 0).unsqueeze(1)  # [B, L(query), L(key)]
    add = torch.zeros(B, L, L, dtype=dtype, device=mask.device)
    add.masked_fill_(~allowed, float("-inf"))
    return add.repeat_interleave(num_heads, dim=0)


class CLIPBackbone(nn.Module):
    """open_clip CLIP with GLSCL's outputs (frame CLS, all word tokens, EOT sentence feature).

    Args:
        name: open_clip model name, e.g. ``ViT-B-32-quickgelu`` or ``glscl-tiny``.
        pretrained: open_clip tag (``openai``), a checkpoint path, or None for random weights.
        text_mask: ``official`` (causal + key padding) or ``clip`` (causal only).
    """

    def __init__(self, name: str = "ViT-B-32-quickgelu", pretrained: Optional[str] = "openai",
                 text_mask: str = "official"):
        super().__init__()
        if text_mask not in ("official", "clip"):
            raise ValueError(f"text_mask must be 'official' or 'clip', got {text_mask!r}")
        self.name = name
        self.text_mask = text_mask
        self.clip = create_clip(name, pretrained)
        self.clip.visual.conv1.requires_grad_(False)  # frozen patch embedding (official); a conv stem is one
        self.clip.attn_mask = None  # built per batch below

    # -- sizes -------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return int(self.clip.text_projection.shape[1])

    @property
    def text_width(self) -> int:
        return int(self.clip.transformer.width)

    @property
    def text_heads(self) -> int:
        return int(self.clip.transformer.resblocks[0].attn.num_heads)

    @property
    def image_size(self) -> int:
        size = self.clip.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def context_length(self) -> int:
        return int(self.clip.context_length)

    # -- text --------------------------------------------------------------------------------
    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids/mask ``[B,L]`` -> (sentence ``[B,D]``, words ``[B,L,D]``)."""
        c = self.clip
        B, L = ids.shape
        if L > c.positional_embedding.shape[0]:
            raise ValueError(f"max_words {L} exceeds the text context length {c.positional_embedding.shape[0]}")
        x = c.token_embedding(ids) + c.positional_embedding[:L]
        if self.text_mask == "official":
            attn = official_text_attention_mask(mask, self.text_heads, x.dtype)
        else:
            attn = torch.full((L, L), float("-inf"), device=ids.device, dtype=x.dtype).triu(1)
        x = c.transformer(x, attn_mask=attn)
        h = c.ln_final(x)
        proj = c.text_projection  # every position goes through the projection, spec 1.2 step 3
        words = proj(h) if isinstance(proj, nn.Linear) else h @ proj
        sentence = words[torch.arange(B, device=ids.device), ids.argmax(dim=-1)]
        return sentence, words

    # -- frames ------------------------------------------------------------------------------
    def encode_frames(self, images: torch.Tensor, return_patches: bool = False):
        """images ``[N,3,S,S]`` (CLIP-normalised) -> cls ``[N,D]`` (and patches ``[N,P,D]``)."""
        v = self.clip.visual
        x = v._embeds(images)
        x = v.transformer(x)
        if return_patches:
            tokens = v.ln_post(x) @ v.proj
            return tokens[:, 0], tokens[:, 1:]
        return v.ln_post(x[:, 0]) @ v.proj  # LayerNorm is per token: same as ln_post on all, keep CLS

    def encode_video(self, video: torch.Tensor, return_patches: bool = False):
        """video ``[B,T,3,S,S]`` -> frame features ``[B,T,D]`` (and patches ``[B,T,P,D]``)."""
        B, T = video.shape[:2]
        out = self.encode_frames(video.flatten(0, 1), return_patches=return_patches)
        if return_patches:
            cls, patches = out
            return cls.view(B, T, -1), patches.view(B, T, patches.shape[1], -1)
        return out.view(B, T, -1)

    def text_block_state(self, n: int) -> list[dict[str, torch.Tensor]]:
        """State dicts of CLIP text blocks 0..n-1 (the temporal transformer starts from them)."""
        blocks = self.clip.transformer.resblocks
        if n > len(blocks):
            raise UserError(f"temporal transformer wants {n} blocks but the CLIP text tower has {len(blocks)}")
        return [{k: v.detach().clone() for k, v in blocks[i].state_dict().items()} for i in range(n)]
