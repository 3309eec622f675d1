"""The plane sweep's matching cost: mean over channels of |lookup sampled at (u, v) - current|.

Two implementations with the same values: PyTorch's grid_sample (autograd, any device), and on
the CPU without autograd a fused C++ kernel (plane_sweep.cpp), 8-13x faster at 640x192
because it never materialises the warped (B, C, D, h, w) volume (docs/benchmarks.md). The
kernel is compiled on first use (about 30 s on 2 cores, then cached by PyTorch in
~/.cache/torch_extensions); without a C++ compiler and ninja the PyTorch path is used, with a
warning.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
from pathlib import Path

import torch
import torch.nn.functional as F

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
    needs_grad = torch.is_grad_enabled() and any(
        tensor.requires_grad for tensor in (current, lookup, u, v))
    tracing = torch.compiler.is_compiling() or _is_exporting()
    if current.device.type == 'cpu' and not needs_grad and not tracing:
        kernel = fused_kernel()
        if kernel is not None:
            return fused_cost(kernel, current, lookup, u, v)
    return torch_cost(current, lookup, u, v)


def fused_cost(kernel, current, lookup, u, v) -> torch.Tensor:
    batch, _, height, width = current.shape
    cost = kernel.plane_sweep_cost(current.permute(0, 2, 3, 1).contiguous(),
                                   lookup.permute(0, 2, 3, 1).contiguous(),
                                   u.contiguous(), v.contiguous())
    return cost.view(batch, -1, height, width)


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
        _kernel_error = ' '.join(str(error).split())[:300]
        LOG.warning('fused plane-sweep kernel unavailable, using PyTorch (slower on CPU): %s',
                    _kernel_error)
    return _kernel


def _is_exporting() -> bool:
    is_exporting = getattr(torch.compiler, 'is_exporting', None)  # PyTorch >= 2.7
    return is_exporting is not None and is_exporting()


def _cpu_tag() -> str:
    """Short hash of the CPU's model and instruction-set flags (Linux), else of the platform."""
    description = platform.machine() + platform.processor()
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            description += ''.join(line for line in cpuinfo
                                   if line.startswith(('model name', 'flags', 'Features')))
    except OSError:
        pass
    return hashlib.sha1(description.encode()).hexdigest()[:10]
