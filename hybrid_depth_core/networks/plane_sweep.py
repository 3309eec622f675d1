"""The plane sweep's matching cost: mean over channels of |lookup sampled at (u, v) - current|.

Two implementations with the same values and gradients: PyTorch's grid_sample (any device, any
input needing gradients), and on the CPU a fused C++ kernel (plane_sweep.cpp) with its own
backward pass for the current features, which is what training needs (ManyDepth's lookup
features and swept positions carry no gradient). The kernel is faster because it never
materialises the warped (B, C, D, h, w) volume (docs/benchmarks.md has the figures). It is
compiled on first use (then cached by PyTorch in ~/.cache/torch_extensions); without a C++
compiler and ninja the PyTorch path is used, with a warning.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
from pathlib import Path

import torch
import torch.nn.functional as F

from hybrid_depth_core.device import cpuinfo_lines
from hybrid_depth_core.errors import one_line

LOG = logging.getLogger(__name__)
DISABLE_VARIABLE = 'HYBRID_DEPTH_NO_CPP'  # =1: always the PyTorch path
BIN_CHUNK = 16  # PyTorch path: hypotheses per grid_sample call
_kernel = None
_kernel_error: str | None = None


def matching_cost(current: torch.Tensor, lookup: torch.Tensor, u: torch.Tensor,
                  v: torch.Tensor) -> torch.Tensor:
    """current, lookup (B, C, h, w) float32; u, v (B, D, h*w) pixel coordinates of each pixel
    in the lookup image under each hypothesis -> cost (B, D, h, w). Positions outside the
    lookup image sample zeros (the caller masks them)."""
    only_current_needs_grad = not (torch.is_grad_enabled() and any(
        tensor.requires_grad for tensor in (lookup, u, v)))
    exporting = torch.compiler.is_exporting()  # ONNX: the graph needs the PyTorch ops
    if current.device.type == 'cpu' and only_current_needs_grad and not exporting:
        cost = _fused_cost_if_built(current, lookup, u, v)
        if cost is not None:
            return cost
    return torch_cost(current, lookup, u, v)


@torch.compiler.disable  # a torch.compile'd model calls the kernel eagerly (a graph break)
def _fused_cost_if_built(current, lookup, u, v) -> torch.Tensor | None:
    kernel = fused_kernel()
    return None if kernel is None else fused_cost(kernel, current, lookup, u, v)


def fused_cost(kernel, current, lookup, u, v) -> torch.Tensor:
    """The C++ kernel's cost, differentiable with respect to `current` only."""
    batch, _, height, width = current.shape
    cost = _FusedCost.apply(kernel, current, lookup.detach(), u.detach(), v.detach())
    return cost.view(batch, -1, height, width)


class _FusedCost(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kernel, current, lookup, u, v):
        # Channels last: the kernel's inner loops run over the channels of one pixel.
        current, lookup = (x.permute(0, 2, 3, 1).contiguous() for x in (current, lookup))
        u, v = u.contiguous(), v.contiguous()
        ctx.kernel = kernel
        ctx.save_for_backward(current, lookup, u, v)
        return kernel.plane_sweep_cost(current, lookup, u, v)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_cost):
        current, lookup, u, v = ctx.saved_tensors
        grad = ctx.kernel.plane_sweep_cost_backward(grad_cost.contiguous(), current, lookup,
                                                    u, v)
        return None, grad.permute(0, 3, 1, 2), None, None, None


def torch_cost(current, lookup, u, v) -> torch.Tensor:
    batch, channels, height, width = current.shape
    costs = []
    # Chunks of hypotheses bound memory (the warped volume is C x chunk x h x w per image);
    # each chunk is one grid_sample call over a (B, chunk*h, w) grid.
    for u_chunk, v_chunk in zip(u.split(BIN_CHUNK, 1), v.split(BIN_CHUNK, 1)):
        bins = u_chunk.shape[1]
        sample_at = torch.stack([2 * u_chunk / (width - 1) - 1,
                                 2 * v_chunk / (height - 1) - 1], -1)
        warped = F.grid_sample(lookup, sample_at.view(batch, bins * height, width, 2),
                               mode='bilinear', padding_mode='zeros', align_corners=True)
        costs.append((warped.view(batch, channels, bins, height, width)
                      - current.unsqueeze(2)).abs().mean(1))
    return torch.cat(costs, 1)


def fused_kernel():
    """The compiled C++ module, or None (disabled, or it could not be built: reason logged)."""
    global _kernel, _kernel_error
    if _kernel is not None or _kernel_error is not None:
        return _kernel
    if os.environ.get(DISABLE_VARIABLE) == '1':
        _kernel_error = f'{DISABLE_VARIABLE}=1'
        return None
    try:
        from torch.utils.cpp_extension import load
        # Built for this CPU (-march=native), so the build is named after the CPU: a home
        # directory shared by machines must not hand one CPU's build to another.
        _kernel = load(f'hybrid_depth_plane_sweep_{_cpu_tag()}',
                       [str(Path(__file__).with_name('plane_sweep.cpp'))],
                       extra_cflags=['-O3', '-march=native', '-fopenmp-simd'], verbose=False)
    except Exception as error:  # no compiler, no ninja, no headers: fall back, say why once
        _kernel_error = one_line(error)
        LOG.warning('fused plane-sweep kernel unavailable, using PyTorch (slower on CPU): %s',
                    _kernel_error)
    return _kernel


def _cpu_tag() -> str:
    """Short hash of the CPU's model and instruction-set flags (Linux), else of the platform."""
    description = platform.machine() + platform.processor() + ''.join(
        cpuinfo_lines(('model name', 'flags', 'Features')))
    return hashlib.sha1(description.encode()).hexdigest()[:10]
