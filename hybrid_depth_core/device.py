"""Device and precision choice, in one place for training and inference: CUDA when present,
else CPU; bf16 autocast on CUDA."""
from __future__ import annotations

import os
import re
from contextlib import nullcontext

import torch

from hybrid_depth_core.errors import UserError

PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')


def pick_device(name: str = 'auto') -> torch.device:
    """'auto' = CUDA if available (this process's LOCAL_RANK under torchrun), else CPU."""
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    if re.fullmatch(r'cuda(:\d+)?', name):
        if not torch.cuda.is_available():
            raise UserError(f'device {name!r}: no CUDA device is available')
        device = torch.device(name)
        if device.index is None:
            device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)))
        if device.index >= torch.cuda.device_count():
            raise UserError(f'device {name!r}: this machine has {torch.cuda.device_count()} '
                            f'CUDA device(s)')
        torch.cuda.set_device(device)
        return device
    if name != 'cpu':
        raise UserError(f'device must be auto, cpu or cuda[:N], got {name!r}')
    return torch.device('cpu')


def autocast(device: torch.device, precision: str = 'auto'):
    """Autocast context for `precision`. 'auto': bf16 on CUDA, fp32 on CPU: training in bf16 on
    CPU ran no faster here and collapsed to max_depth where fp32 kept learning
    (docs/benchmarks.md). Geometry and losses should cast network outputs back to fp32."""
    if precision not in PRECISIONS:
        raise UserError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision == 'auto':
        precision = 'bf16' if device.type == 'cuda' else 'fp32'
    if precision == 'fp32':
        return nullcontext()
    if precision == 'fp16' and device.type != 'cuda':
        raise UserError('fp16 autocast needs a CUDA device; use bf16 on CPU')
    dtype = torch.bfloat16 if precision == 'bf16' else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def cpuinfo_lines(prefixes: tuple[str, ...]) -> list[str]:
    """The lines of /proc/cpuinfo starting with one of `prefixes` ([] where there is none)."""
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            return [line for line in cpuinfo if line.startswith(prefixes)]
    except OSError:
        return []
