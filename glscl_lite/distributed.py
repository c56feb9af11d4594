"""Optional multi-process training (``torchrun``); everything here is a no-op in one process.

``all_gather_with_grad`` reproduces the official ``AllGather`` (spec 7.4): every rank receives the
whole global batch, and gradient flows back only into the rank's own slice (no all-reduce inside
the gather).  Each rank then computes the full-batch loss, and DDP averages parameter gradients.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device_type: str) -> Optional[int]:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1).

    Returns the local rank, or None for a plain single-process run.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return int(os.environ.get("LOCAL_RANK", "0")) if dist.is_initialized() else None
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local)
    return local


def all_gather_with_grad(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Concatenate each tensor over ranks along dim 0; the local slice keeps its autograd graph."""
    if not is_distributed():
        return tensors
    out = []
    r, n = dist.get_rank(), dist.get_world_size()
    for t in tensors:
        parts = [torch.empty_like(t) for _ in range(n)]
        dist.all_gather(parts, t.detach().contiguous())
        parts[r] = t
        out.append(torch.cat(parts, dim=0))
    return tuple(out)

