"""`hybrid-depth bench`: inference latency of every network and precision on one device."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hybrid_depth_ros.cli import add_network_size, int_at_least, network_size


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'bench', help='inference latency and throughput, against the FLOP limit',
        description='Per-frame latency (median and p90 after warm-up, batch 1) of the hybrid '
                    'and resnet18 networks, single-frame and streamed multi-frame, in every '
                    'precision the device offers (CPU: fp32, bf16; CUDA: fp32, fp16, bf16), '
                    "with the device's matrix-multiply rate measured in the same run and each "
                    "model's ratio to its FLOP limit (time x GFLOP/s / (2 x MACs)).")
    parser.add_argument('--device', default='cpu', help='cpu (default) or cuda[:N]')
    add_network_size(parser)
    parser.add_argument('--repeats', type=int_at_least(3), default=20,
                        help='timed frames per model and precision (default: 20)')
    parser.add_argument('--warmup', type=int_at_least(1), default=3,
                        help='untimed frames first (default: 3)')
    parser.add_argument('--precision', action='append', choices=('fp32', 'bf16', 'fp16'),
                        help="only this precision (repeatable; default: all the device's)")
    # choices: networks.pose.POSE_DOWNSAMPLING, written out so that --help needs no torch
    parser.add_argument('--pose-downsample', type=int, choices=(1, 2, 4), default=1,
                        help="multi-frame models' pose network sees frames average-pooled by "
                             'this factor (model.pose_downsample; default: 1, as ManyDepth)')
    parser.add_argument('--checkpoint', type=Path,
                        help='also evaluate this trained checkpoint in every precision on '
                             'held-out synthetic drives: AbsRel and largest difference from '
                             'fp32')
    parser.add_argument('--compile', action='store_true',
                        help='also time the hybrid models under torch.compile (about a minute '
                             'of compiling each on a CPU), and with --checkpoint evaluate the '
                             'compiled networks too')
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.device import pick_device
    from hybrid_depth_core.errors import UserError
    from hybrid_depth_core.networks.checkpoint import load_checkpoint
    from hybrid_depth_core.deploy.benchmark import (PRECISIONS, benchmark, format_report,
                                                    precision_accuracy)

    width, height = network_size(args)
    device = pick_device(args.device)
    if args.checkpoint is not None:  # a bad path is named now, not after minutes of timing
        load_checkpoint(args.checkpoint)
    unsupported = set(args.precision or ()) - set(PRECISIONS[device.type])
    if unsupported:
        raise UserError(f'precision {sorted(unsupported)} is not available on {device.type}; '
                        f'choose from {PRECISIONS[device.type]}')
    result = benchmark(device, width, height, args.warmup, args.repeats,
                       precisions=tuple(args.precision) if args.precision else None,
                       progress=not args.json, pose_downsample=args.pose_downsample,
                       compile=args.compile)
    if args.checkpoint is not None:
        result['accuracy'] = precision_accuracy(args.checkpoint, device,
                                                tuple(args.precision or PRECISIONS[device.type]),
                                                progress=not args.json, compile=args.compile)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
