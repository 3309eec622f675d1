"""The plane sweep's matching cost: mean over channels of |lookup sampled at (u, v) - current|.

Two implementations with the same values and gradients: PyTorch's grid_sample (any device, any
input needing gradients), and on the CPU a fused C++ kernel (plane_sweep.cpp) with its own
backward pass for the current features, which is what training needs (ManyDepth's lookup
features and swept positions carry no gradient). The kernel is faster because it never
materialises the warped (B, C, D, h, w) volume (docs/benchmarks.md has the figures). It is
compiled on first use, then kept in PyTorch's extension directory (~/.cache/torch_extensions,
or TORCH_EXTENSIONS_DIR) under hybrid_depth/; without a C++ compiler and ninja the PyTorch path
is used, with a warning.

A build happens in a directory of its own and its module is renamed into place, so the cache
only ever holds finished builds: a process killed mid-build leaves nothing another one waits
on (PyTorch's own build lock, a file that outlives its owner, made every later start wait
forever). Processes starting together take turns through a lock the operating system releases
when its holder ends, so one compiles and the others load its result; a wait is said.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import importlib.util
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from hybrid_depth_core.device import cpuinfo_lines
from hybrid_depth_core.errors import one_line

LOG = logging.getLogger(__name__)
DISABLE_VARIABLE = 'HYBRID_DEPTH_NO_CPP'  # =1: always the PyTorch path
SOURCE = Path(__file__).with_name('plane_sweep.cpp')
# Built for this CPU: -march=native is why the module's name holds the CPU's (kernel_name).
CFLAGS = ('-O3', '-march=native', '-fopenmp-simd')
MODULE_SUFFIX = '.so'  # what PyTorch's load() writes (POSIX, as fcntl is)
WAIT_NOTICE_S = 3.0   # a wait for another process's build longer than this is said
WAIT_LIMIT_S = 300.0  # then this process builds its own (a build takes about a minute)
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
        _kernel = _load_or_build(kernel_cache(), kernel_name())
    except Exception as error:  # no compiler, no ninja, no headers: fall back, say why once
        _kernel_error = one_line(error)
        LOG.warning('fused plane-sweep kernel unavailable, using PyTorch (slower on CPU): %s',
                    _kernel_error)
    return _kernel


def kernel_cache() -> Path:
    """The directory of built kernels: hybrid_depth/ in PyTorch's extension directory."""
    from torch.utils.cpp_extension import get_default_build_root

    return Path(os.environ.get('TORCH_EXTENSIONS_DIR') or get_default_build_root(), 'hybrid_depth')


def kernel_name() -> str:
    """The module's name (and its file's): a hash of all the build depends on, so that a home
    directory shared by machines, virtual environments or versions never hands one of them
    another's build: the CPU (model and instruction-set flags on Linux, else the platform),
    the source, the flags, PyTorch and Python."""
    description = platform.machine() + platform.processor() + ''.join(
        cpuinfo_lines(('model name', 'flags', 'Features')))
    digest = hashlib.sha1(description.encode())
    digest.update(SOURCE.read_bytes())
    digest.update(' '.join((*CFLAGS, torch.__version__, sys.implementation.cache_tag)).encode())
    return f'hybrid_depth_plane_sweep_{digest.hexdigest()[:16]}'


def _load_or_build(cache: Path, name: str):
    """The kernel module `name` from `cache`, built there first if it is not."""
    built = cache / f'{name}{MODULE_SUFFIX}'
    missing = not built.exists()
    if not missing:
        try:
            return _import(name, built)
        except ImportError as error:  # damaged on disk: replaced by a new build
            LOG.warning('the built plane-sweep kernel %s cannot be loaded (%s); compiling it '
                        'again', built, one_line(error))
    cache.mkdir(parents=True, exist_ok=True)
    with _build_turn(cache / f'{name}.lock'):
        if missing and built.exists():  # the process this one waited for built it
            return _import(name, built)
        _remove_unfinished_builds(cache, name)
        return _build(name, built)


def _build(name: str, built: Path):
    """Compile in a new directory beside `built` (named after this process and machine), then
    rename the module to `built`: on one file system, so it appears whole or not at all."""
    from torch.utils.cpp_extension import load

    LOG.warning('compiling the fused plane-sweep kernel for this CPU, once (about a minute): '
                '%s', built)
    staging = Path(tempfile.mkdtemp(prefix=f'.{name}.build-{os.getpid()}-{_host()}-',
                                    dir=built.parent))
    try:
        module = load(name, [str(SOURCE)], extra_cflags=list(CFLAGS),
                      build_directory=str(staging), verbose=False)
        # PyTorch renames a module built twice in one process (name_v1): not for the cache.
        if Path(module.__file__).name == built.name:
            os.replace(module.__file__, built)  # the loaded module keeps its open file
        return module
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _import(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def _build_turn(lock: Path):
    """Hold `lock` (an flock: released by the operating system when its holder ends, however
    it ends) while the block builds. Waits for a live holder, saying so after WAIT_NOTICE_S;
    after WAIT_LIMIT_S, or where the file system has no locks, goes ahead without it: each
    build has its own directory and the rename is atomic, so the lock only saves compiling
    twice."""
    handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        start, told, locked = time.monotonic(), False, False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    break  # no locks here (some network file systems): build unlocked
            waited = time.monotonic() - start
            holder = os.pread(handle, 32, 0).decode(errors='replace').strip() or '?'
            if waited > WAIT_LIMIT_S:
                LOG.warning('process %s has been compiling the fused plane-sweep kernel for '
                            'over %.0f s (%s); compiling it here too', holder, waited, lock)
                break
            if not told and waited > WAIT_NOTICE_S:
                LOG.warning('waiting for process %s, which is compiling the fused plane-sweep '
                            'kernel (lock %s, released when that process ends)', holder, lock)
                told = True
            time.sleep(0.2)
        if locked:
            # Who holds it, for the message of a process that waits. The file itself stays:
            # removing it would let a process that opened it earlier lock a file no one sees.
            os.ftruncate(handle, 0)
            os.pwrite(handle, f'{os.getpid()}\n'.encode(), 0)
        yield
    finally:
        os.close(handle)  # releases the lock


def _remove_unfinished_builds(cache: Path, name: str) -> None:
    """Remove the build directories of this machine's processes that ended mid-build (killed,
    or the machine went down); a live process's build, or another machine's, is left alone."""
    for staging in cache.glob(f'.{name}.build-*'):
        pid, _, rest = staging.name.rsplit('.build-', 1)[1].partition('-')
        if pid.isdigit() and rest.rsplit('-', 1)[0] == _host() and not _alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
            LOG.warning('removed the unfinished build of process %s, which ended while '
                        'compiling the fused plane-sweep kernel: %s', pid, staging)


def _host() -> str:
    return platform.node() or 'localhost'


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
