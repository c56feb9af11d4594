"""Counting FLOPs with fvcore -- and the traps that make counts wrong -- plus timing.

General rules, independent of any model; :mod:`glscl_lite.flops` applies them to GLSCL and its heads.

Units, once and for all:

* **MACs** -- multiply-accumulates.  fvcore's ``FlopCountAnalysis`` "counts one fused multiply-add
  as one flop", so what fvcore calls flops are MACs.  Every ``macs`` below is an fvcore count.
* **FLOPs** = 2 x MACs (one multiply + one add), the unit of ``torch.utils.flop_counter`` and of
  spec/glscl.md sections 9 and 13.  Every ``flops`` below is ``2 * macs``.

Counting rules (field notes 3.2):

1. Count in eval mode (no dropout) **with autograd enabled**: under ``no_grad`` an eval-mode
   ``nn.MultiheadAttention`` takes PyTorch's fused fast path (``aten::_native_multi_head_attention``),
   which fvcore does not know, so the projections *and* the attention matmuls vanish (ViT-B/32:
   2.95 instead of 4.41 GMAC).
2. With autograd on, attention runs through ``aten::scaled_dot_product_attention``, which fvcore
   does not count either (-1 %).  :data:`ATTENTION_HANDLES` adds handles for both ops that compute
   the ``Q K^T`` and ``A V`` matmuls (and, for the fused op, the projections) from traced shapes.
3. fvcore parses ``np.einsum_path``'s printed FLOP count, i.e. only 4 significant digits;
   :func:`einsum_macs_jit` replaces it with the exact count for two-operand einsums.
4. Every count is cross-checked with ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs), whose
   registry lacks the CPU SDPA kernel (PyTorch #195460): the missing attention FLOPs are added by
   a custom formula and reported separately (``torch_flops_without_cpu_sdpa``).
"""
from __future__ import annotations

import math
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from glscl_lite.utils import sync as _sync


# ------------------------------------------------------------------------------ fvcore op handles
def _shape(value: Any) -> list[int]:
    from fvcore.nn.jit_handles import get_shape

    return list(get_shape(value))


def sdpa_macs_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``aten::scaled_dot_product_attention(q [...,Lq,E], k [...,Lk,E], v [...,Lk,Ev])``.

    ``Q K^T`` is ``prod(q.shape[:-1]) * Lk * E`` and ``A V`` is ``prod(q.shape[:-1]) * Lk * Ev``
    (causal masks are counted dense, as ``FlopCounterMode`` does).
    """
    q, k, v = _shape(inputs[0]), _shape(inputs[1]), _shape(inputs[2])
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


def native_mha_macs_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of the fused ``aten::_native_multi_head_attention`` (eval + no_grad fast path).

    Inputs: query ``[B,Lq,E]``, key ``[B,Lk,E]``, value, embed_dim, num_heads, ...  Counts the q/k/v
    input projections ``(Lq + 2 Lk) E^2``, the attention matmuls ``2 Lq Lk E`` (summed over heads)
    and the output projection ``Lq E^2``, per batch element.
    """
    q, k = _shape(inputs[0]), _shape(inputs[1])
    batch, lq, e = math.prod(q[:-2]), q[-2], q[-1]
    lk = k[-2]
    return batch * ((lq + 2 * lk) * e * e + 2 * lq * lk * e + lq * e * e)


def einsum_macs_jit(inputs: list[Any], outputs: list[Any]) -> float:
    """Exact MACs of a two-operand einsum: the product of the sizes of all its distinct indices.

    fvcore's own handle parses numpy's printed estimate (4 significant digits); equations with an
    ellipsis or with other than two operands are passed on to it.
    """
    from fvcore.nn.jit_handles import einsum_flop_jit

    equation = inputs[0].toIValue().replace(" ", "")
    shapes = [_shape(v) for v in inputs[1].node().inputs()]
    lhs = equation.split("->")[0].split(",")
    if "." in equation or len(lhs) != 2 or len(shapes) != 2:
        return einsum_flop_jit(inputs, outputs)
    sizes: dict[str, int] = {}
    for letters, shape in zip(lhs, shapes):
        for letter, n in zip(letters, shape):
            sizes[letter] = max(sizes.get(letter, 1), int(n))
    return math.prod(sizes.values())


NORM_OPS = ("layer_norm", "batch_norm", "group_norm", "instance_norm")
"""fvcore's names for the normalisation ops it counts (about 5 MACs per element)."""

ATTENTION_HANDLES: dict[str, Callable[[list[Any], list[Any]], Any]] = {
    "aten::scaled_dot_product_attention": sdpa_macs_jit,
    "aten::_native_multi_head_attention": native_mha_macs_jit,
}


# ------------------------------------------------------------------------------------- counting
class _Traced(nn.Module):
    """Wraps ``fn(*tensors)`` as a module for jit tracing; ``modules`` own the parameters used."""

    def __init__(self, fn: Callable[..., Any], modules: Sequence[nn.Module]):
        super().__init__()
        self.fn = fn
        self.parts = nn.ModuleList(modules)

    def forward(self, *args: torch.Tensor):
        out = self.fn(*args)
        if isinstance(out, dict):
            return tuple(out.values())
        return out


class _EvalMode:
    """Eval mode (no dropout) for ``modules`` inside the block, previous modes restored after."""

    def __init__(self, modules: Sequence[nn.Module]):
        self.modules = list(modules)

    def __enter__(self) -> None:
        self.modes = [[m.training for m in mod.modules()] for mod in self.modules]
        for mod in self.modules:
            mod.eval()

    def __exit__(self, *exc: Any) -> None:
        for mod, modes in zip(self.modules, self.modes):
            for m, training in zip(mod.modules(), modes):
                m.training = training


@dataclass
class Count:
    """One call counted by fvcore (``macs``) and by ``FlopCounterMode`` (``torch_*``, FLOPs)."""

    macs: int
    by_operator: dict[str, int]
    unsupported_ops: dict[str, int]
    torch_flops: Optional[int] = None
    """FlopCounterMode FLOPs including the CPU SDPA kernel (custom formula)."""
    torch_cpu_sdpa_flops: Optional[int] = None
    """The part of ``torch_flops`` that FlopCounterMode itself reports as 0 on CPU (#195460)."""

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def norm_macs(self) -> int:
        """What fvcore counts for normalisation layers (FlopCounterMode counts none)."""
        return sum(v for k, v in self.by_operator.items() if k in NORM_OPS)

    def cross_check(self) -> dict[str, Any]:
        """fvcore vs FlopCounterMode on the same call, both in FLOPs.

        ``rel_diff`` compares FlopCounterMode (CPU SDPA added) with fvcore minus normalisation
        layers, the one op family only fvcore counts; it is 0 when both see the same matmuls.
        """
        if self.torch_flops is None:
            return {}
        ref = 2 * (self.macs - self.norm_macs)
        return {"fvcore_flops": self.flops, "fvcore_flops_without_norms": ref, "torch_flops": self.torch_flops,
                "torch_flops_without_cpu_sdpa": self.torch_flops - (self.torch_cpu_sdpa_flops or 0),
                "rel_diff": (self.torch_flops - ref) / ref if ref else float(self.torch_flops != 0)}


def fvcore_count(fn: Callable[..., Any], inputs: Sequence[torch.Tensor], modules: Sequence[nn.Module] = (),
                 *, no_grad: bool = False, attention_handles: bool = True, exact_einsum: bool = True) -> Count:
    """MACs of ``fn(*inputs)`` with fvcore (modules in eval mode, autograd on unless ``no_grad``).

    ``attention_handles=False`` and ``no_grad=True`` reproduce the two classic undercounts.
    """
    wrapper = _Traced(fn, modules)
    grad = torch.no_grad() if no_grad else torch.enable_grad()
    with _EvalMode(modules), grad, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit deprecation (also raised when fvcore is imported), tracer
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(wrapper, tuple(inputs))
        if attention_handles:
            analysis.set_op_handle(**ATTENTION_HANDLES)
        if exact_einsum:
            analysis.set_op_handle("aten::einsum", einsum_macs_jit)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        total = analysis.total()
        by_op = {k: int(v) for k, v in analysis.by_operator().items()}
        unsupported = dict(analysis.unsupported_ops())
    return Count(macs=int(total), by_operator=by_op, unsupported_ops=unsupported)


def _cpu_sdpa_flops(query_shape: Sequence[int], key_shape: Sequence[int], value_shape: Sequence[int],
                    *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of ``aten._scaled_dot_product_flash_attention_for_cpu``: ``2 * (Q K^T + A V)`` MACs."""
    return 2 * math.prod(query_shape[:-1]) * key_shape[-2] * (query_shape[-1] + value_shape[-1])


def torch_flop_count(fn: Callable[..., Any], inputs: Sequence[torch.Tensor],
                     modules: Sequence[nn.Module] = ()) -> tuple[int, int]:
    """``(flops, cpu_sdpa_flops)`` of ``fn(*inputs)`` by ``FlopCounterMode`` (eval, autograd on).

    The CPU flash-attention kernel is missing from PyTorch's registry; it is added here with
    :func:`_cpu_sdpa_flops` and its share returned separately.
    """
    from torch.utils.flop_counter import FlopCounterMode

    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    mapping = {cpu_sdpa: _cpu_sdpa_flops} if cpu_sdpa is not None else {}
    with _EvalMode(modules), torch.enable_grad():
        counter = FlopCounterMode(display=False, custom_mapping=mapping)
        with counter:
            fn(*inputs)
    counts = counter.get_flop_counts().get("Global", {})
    return int(counter.get_total_flops()), int(counts.get(cpu_sdpa, 0)) if cpu_sdpa is not None else 0


def count(fn: Callable[..., Any], inputs: Sequence[torch.Tensor], modules: Sequence[nn.Module] = (),
          cross_check: bool = True) -> Count:
    """fvcore MACs (eval, autograd on, attention handles, exact einsum) + the FlopCounterMode check."""
    c = fvcore_count(fn, inputs, modules)
    if cross_check:
        c.torch_flops, c.torch_cpu_sdpa_flops = torch_flop_count(fn, inputs, modules)
    return c


def counting_modes(fn: Callable[..., Any], inputs: Sequence[torch.Tensor],
                   modules: Sequence[nn.Module] = ()) -> dict[str, int]:
    """MACs of one call under the four combinations of grad mode x attention handles.

    Shows the no_grad fast-path trap and the missing SDPA handle numerically.
    """
    out = {}
    for no_grad in (True, False):
        for handles in (False, True):
            name = f"{'no_grad' if no_grad else 'autograd'}, {'with' if handles else 'without'} attention handles"
            out[name] = fvcore_count(fn, inputs, modules, no_grad=no_grad, attention_handles=handles).macs
    return out


def fit_pair_costs(costs: dict[tuple[int, int], int]) -> dict[str, int]:
    """Solve ``cost(Bt,Bv) = constant + Bt*per_text + Bv*per_video + Bt*Bv*per_pair`` from the counts
    at (1,1), (2,1), (1,2), (2,2) texts x videos."""
    c11, c21, c12, c22 = costs[(1, 1)], costs[(2, 1)], costs[(1, 2)], costs[(2, 2)]
    per_pair = c22 - c21 - c12 + c11
    per_text = c21 - c11 - per_pair
    per_video = c12 - c11 - per_pair
    return {"per_pair": per_pair, "per_text": per_text, "per_video": per_video,
            "constant": c11 - per_text - per_video - per_pair}


# ---------------------------------------------------------------------------------------- timing
def time_call(fn: Callable[..., Any], inputs: Sequence[torch.Tensor], repeats: int = 5,
              warmup: int = 1) -> dict[str, float]:
    """Median ``wall_s`` and process ``cpu_s`` of ``fn(*inputs)`` under ``torch.inference_mode``.

    On a shared CPU, ``cpu_s`` (all threads of this process) is the steadier number.
    """
    device = inputs[0].device if inputs else torch.device("cpu")
    wall, cpu = [], []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            fn(*inputs)
            _sync(device)
            if i >= warmup:
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}


class torch_threads:
    """Run a block with ``n`` intra-op threads (None: leave torch's setting), restored after."""

    def __init__(self, n: Optional[int]):
        self.n = n

    def __enter__(self) -> None:
        self.old = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.old)
