"""Inference speed (`hybrid-depth bench`): per-frame latency of each network and precision on
one device, and how close each comes to the device's measured matrix-multiply rate.

A frame is what the node runs per image (DepthPredictor.step): single-frame = encoder +
decoder; multi-frame = one streamed step (pose network, encoder of the new frame only, cost
volume against the previous frame's kept features, decoder). Weights are random: time does
not depend on them. Inputs are consecutive frames of a synthetic drive, so that the pose and
the cost volume's sampling look like a real stream's.
"""
from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from hybrid_depth_core.device import cpuinfo_lines
from hybrid_depth_core.networks import build_depth_model, build_pose_model
from hybrid_depth_core.networks.complexity import profile_models
from hybrid_depth_core.runtime.predictor import DepthPredictor, StreamFrame

PRECISIONS = {'cpu': ('fp32', 'bf16'), 'cuda': ('fp32', 'fp16', 'bf16')}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
HELD_OUT_SEEDS = (1000, 1001, 1002)  # the learning benchmark's (training uses 1-16)
MODELS = ('hybrid single-frame', 'hybrid multi-frame', 'resnet18 single-frame',
          'resnet18 multi-frame')
LAYOUTS = {'nchw': torch.contiguous_format, 'channels_last': torch.channels_last}
COMPILE_FRAMES = 2  # untimed frames that compile a model's graphs (first frame, then a step)


@dataclass
class Timing:
    model: str                # e.g. 'hybrid multi-frame'
    precision: str
    median_ms: float
    p90_ms: float
    frames_per_second: float  # 1000 / mean latency, batch 1
    gmacs: float              # multiply-adds per frame (networks/complexity.py)
    limit_ratio: float        # time x matmul GFLOP/s / (2 x MACs): 1 = as fast as matmul
    compiled: bool = False    # torch.compile (DepthPredictor(compile=True))
    warmup_s: float = 0.0     # the untimed first frames, compiling included


def matmul_gflops(device: torch.device, precision: str, size: int = 2048,
                  seconds: float = 1.0) -> float:
    """The device's dense matrix-multiply rate in `precision`, GFLOP/s (2 size^3 per call)."""
    a = torch.rand(size, size, device=device, dtype=DTYPES[precision])
    b = torch.rand(size, size, device=device, dtype=DTYPES[precision])
    for _ in range(2):
        a @ b
    _synchronize(device)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        calls += 1
        _synchronize(device)
    return 2 * size ** 3 * calls / (time.perf_counter() - started) / 1e9


def time_model(name: str, device: torch.device, precision: str, width: int, height: int,
               frames: list[np.ndarray], K: np.ndarray, warmup: int, repeats: int,
               memory_format: torch.memory_format | None = None,
               pose_downsample: int = 1, compile: bool = False) -> tuple[np.ndarray, float]:
    """Milliseconds per frame of `repeats` consecutive frames after `warmup` frames, in the
    predictor's memory format for the device unless `memory_format` is given, and the seconds
    the warm-up took. `compile` adds two untimed frames, which compile the single-frame and the
    multi-frame graphs."""
    arch, kind = name.split()
    multi_frame = kind == 'multi-frame'
    torch.manual_seed(0)
    predictor = DepthPredictor(build_depth_model(arch, multi_frame=multi_frame),
                               build_pose_model(downsample=pose_downsample) if multi_frame
                               else None, (width, height),
                               device, precision, memory_format=memory_format,
                               compile=compile)
    images = [predictor.to_tensor(rgb) for rgb in frames]
    K_model = torch.from_numpy(K).float().unsqueeze(0).to(device)
    warmup += COMPILE_FRAMES if compile else 0
    previous, times = None, []
    for index in range(warmup + repeats):
        image = images[index % len(images)]
        _synchronize(device)
        started = time.perf_counter()
        _, features = predictor.step(image, K_model, previous)
        _synchronize(device)
        times.append(1000 * (time.perf_counter() - started))
        previous = StreamFrame(image, features, (height, width)) if multi_frame else None
    return np.array(times[warmup:]), sum(times[:warmup]) / 1000


def benchmark(device: torch.device, width: int = 640, height: int = 192, warmup: int = 3,
              repeats: int = 20, models: tuple[str, ...] = MODELS,
              precisions: tuple[str, ...] | None = None, progress: bool = True,
              pose_downsample: int = 1, compile: bool = False) -> dict:
    """Every model x precision on `device`: {'machine', 'matmul_gflops', 'timings', ...}.
    Multi-frame models run their pose network on frames average-pooled by `pose_downsample`
    (DepthModelConfig.pose_downsample). `compile`: the hybrid models (the paper's) are timed
    under torch.compile too (compiling each first, which is slow on a CPU)."""
    from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive

    precisions = precisions or PRECISIONS[device.type]
    # One frame per step (warm-up included): every step's previous frame is the one before it.
    count = warmup + COMPILE_FRAMES + repeats
    drive = SyntheticDrive(DriveConfig(width=width, height=height, frames=count, seed=1000))
    frames = [drive.render(index).rgb for index in range(count)]
    gflops = {precision: matmul_gflops(device, precision) for precision in precisions}
    gmacs = {row.model: row.frame_gmacs
             for row in profile_models(width, height, pose_downsample)}
    timings = []
    runs = [(model, precision, False) for model in models for precision in precisions]
    if compile:
        runs += [(model, precision, True) for model in models if model.startswith('hybrid')
                 for precision in precisions]
    for model, precision, compiled in tqdm(runs, desc='bench', unit='run',
                                           disable=not progress):
        ms, warmup_s = time_model(model, device, precision, width, height, frames,
                                  drive.camera.K, warmup, repeats,
                                  pose_downsample=pose_downsample, compile=compiled)
        median = float(np.median(ms))
        timings.append(Timing(
            model=model, precision=precision, median_ms=median,
            p90_ms=float(np.percentile(ms, 90)), frames_per_second=1000 / float(ms.mean()),
            gmacs=gmacs[model],
            limit_ratio=median / 1000 * gflops[precision] / (2 * gmacs[model]),
            compiled=compiled, warmup_s=warmup_s))
    # The layout decision (DepthPredictor's default per device), measured on the paper's model.
    layouts = {precision: {name: float(np.median(time_model(
        'hybrid single-frame', device, precision, width, height, frames, drive.camera.K,
        warmup, repeats, memory_format)[0])) for name, memory_format in LAYOUTS.items()}
        for precision in precisions}
    return {'machine': machine(device), 'width': width, 'height': height,
            'pose_downsample': pose_downsample, 'matmul_gflops': gflops,
            'timings': [asdict(timing) for timing in timings], 'layout_ms': layouts,
            'matching_ms': matching_timings(device, width, height, drive.camera.K, repeats)}


def matching_timings(device: torch.device, width: int, height: int, K: np.ndarray,
                     repeats: int) -> dict[str, float]:
    """Median ms of the cost volume's matching at 1/4 of width x height (64 channels, 96
    hypotheses, a 0.5 m forward motion): the PyTorch path, and the fused CPU kernel; each
    also forward + backward for the current features, as a training step runs it."""
    from hybrid_depth_core.geometry import scale_intrinsics
    from hybrid_depth_core.networks import plane_sweep
    from hybrid_depth_core.networks.cost_volume import sweep_coordinates

    generator = torch.Generator().manual_seed(0)
    current, lookup = (torch.rand(1, 64, height // 4, width // 4, generator=generator)
                       .to(device) for _ in range(2))
    K_quarter = scale_intrinsics(torch.from_numpy(K).float(), 0.25, 0.25)[None].to(device)
    T = torch.eye(4, device=device)[None].clone()
    T[0, 2, 3] = -0.5
    u, v, _ = sweep_coordinates(K_quarter, T, torch.linspace(0.5, 80, 96, device=device),
                                height // 4, width // 4)
    costs = {'pytorch': lambda features: plane_sweep.torch_cost(features, lookup, u, v)}
    kernel = plane_sweep.fused_kernel() if device.type == 'cpu' else None
    if kernel is not None:
        costs['fused'] = lambda features: plane_sweep.fused_cost(kernel, features, lookup, u, v)
    trainable = current.clone().requires_grad_()
    paths = {}
    for name, cost in costs.items():
        paths[name] = lambda cost=cost: cost(current)
        paths[f'{name} forward + backward'] = lambda cost=cost: cost(trainable).sum().backward()
    result = {}
    for name, run in paths.items():
        times = []
        for index in range(repeats + 2):
            _synchronize(device)
            started = time.perf_counter()
            run()
            _synchronize(device)
            times.append(1000 * (time.perf_counter() - started))
        result[name] = float(np.median(times[2:]))
    return result


def precision_accuracy(checkpoint, device: torch.device, precisions: tuple[str, ...],
                       seeds: tuple[int, ...] = HELD_OUT_SEEDS, frames: int = 30,
                       progress: bool = True, compile: bool = False) -> dict:
    """Per precision (and compiled, with `compile`: 'bf16 compiled'), a trained checkpoint's
    held-out AbsRel (median-scaled, as the learning benchmark evaluates) and its largest
    relative depth difference from eager fp32 over all frames."""
    from hybrid_depth_core.evaluation.drivers import evaluate_synthetic

    variants = [(precision, False) for precision in
                ('fp32',) + tuple(p for p in precisions if p != 'fp32')]
    variants += [(precision, True) for precision, _ in variants] if compile else []
    results, reference = {}, None
    for precision, compiled in variants:
        predictor = DepthPredictor.from_checkpoint(checkpoint, str(device), precision,
                                                   compile=compiled)
        depths = []

        def predict(rgb, K, previous, turn):
            depths.append(predictor.predict(rgb, K, previous, turn))
            return depths[-1]
        metrics = evaluate_synthetic(predict, seeds, frames, predictor.width, predictor.height,
                                     progress=progress)
        reference = depths if reference is None else reference
        results[precision + (' compiled' if compiled else '')] = {
            'abs_rel': metrics['abs_rel'],
            'max_relative_difference_from_fp32': float(max(
                np.max(np.abs(depth / truth - 1)) for depth, truth in zip(depths, reference)))}
    return {'checkpoint': str(checkpoint), 'seeds': list(seeds), 'frames': frames,
            'precisions': results}


def machine(device: torch.device) -> dict:
    described = {'device': str(device), 'torch': torch.__version__,
                 'python': platform.python_version(), 'threads': torch.get_num_threads()}
    if device.type == 'cuda':
        described['gpu'] = torch.cuda.get_device_name(device)
    described['cpu'] = cpu_name()
    return described


def format_report(result: dict) -> str:
    lines = [f'{result["width"]}x{result["height"]}, batch 1, pose network on frames pooled by '
             f'{result["pose_downsample"]}, {result["machine"]}',
             'matmul GFLOP/s: ' + ', '.join(f'{precision} {rate:.0f}' for precision, rate
                                            in result['matmul_gflops'].items()),
             f'{"model":<22} {"precision":>9} {"compiled":>8} {"median ms":>10} {"p90 ms":>8} '
             f'{"frames/s":>9} {"GMACs":>7} {"x limit":>8}']
    for row in result['timings']:
        lines.append(f'{row["model"]:<22} {row["precision"]:>9} '
                     f'{"yes" if row["compiled"] else "no":>8} {row["median_ms"]:>10.1f} '
                     f'{row["p90_ms"]:>8.1f} {row["frames_per_second"]:>9.1f} '
                     f'{row["gmacs"]:>7.2f} {row["limit_ratio"]:>8.2f}')
    compiled = [row for row in result['timings'] if row['compiled']]
    if compiled:
        lines.append('warm-up with compiling: ' + ', '.join(
            f'{row["model"]} {row["precision"]} {row["warmup_s"]:.0f} s' for row in compiled))
    for precision, by_layout in result.get('layout_ms', {}).items():
        lines.append(f'hybrid single-frame {precision} by memory layout: ' + ', '.join(
            f'{name} {ms:.1f} ms' for name, ms in by_layout.items()))
    matching = result.get('matching_ms', {})
    lines.append('cost volume matching (1/4 size, 96 hypotheses): ' + ', '.join(
        f'{name} {ms:.1f} ms' for name, ms in matching.items()))
    accuracy = result.get('accuracy')
    if accuracy:
        lines.append(f'{accuracy["checkpoint"]} on held-out drives {accuracy["seeds"]}:')
        for precision, row in accuracy['precisions'].items():
            lines.append(f'  {precision}: AbsRel {row["abs_rel"]:.4f}, largest depth difference '
                         f'from fp32 {100 * row["max_relative_difference_from_fp32"]:.2f}%')
    by_key = {(row['model'], row['precision'], row['compiled']): row['median_ms']
              for row in result['timings']}
    for arch in ('hybrid', 'resnet18'):
        for compiled, mode in ((False, ''), (True, ', compiled')):
            single, multi = by_key.get((f'{arch} single-frame', 'fp32', compiled)), \
                by_key.get((f'{arch} multi-frame', 'fp32', compiled))
            if single and multi:
                lines.append(f'{arch}: multi-frame / single-frame (fp32{mode}) = '
                             f'{multi / single:.2f}')
            for precision in ('bf16', 'fp16'):
                faster = by_key.get((f'{arch} single-frame', precision, compiled))
                if single and faster:
                    lines.append(f'{arch} single-frame{mode}: fp32 / {precision} time = '
                                 f'{single / faster:.2f}')
    return '\n'.join(lines)


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform module says."""
    for line in cpuinfo_lines(('model name',)):
        return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()
