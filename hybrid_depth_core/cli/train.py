"""`hybrid-depth train`: self-supervised training (no depth labels)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'train', help='train depth + pose networks without depth labels',
        description='Train the depth network (hybrid or resnet18, single- or multi-frame), the '
                    'pose network and, for multi-frame, the single-frame teacher, ManyDepth-'
                    'style. The final checkpoint is OUT/last.pt; TensorBoard logs go to '
                    'OUT/tensorboard. Multi-GPU / multi-node: launch with torchrun.')
    parser.add_argument('--config', type=Path, help='YAML training config (config/train_*.yaml)')
    parser.add_argument('--out', type=Path, required=True, help='output directory')
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument('--max-steps', type=int, help='stop after this many steps')
    budget.add_argument('--minutes', type=float, help='stop after this much wall time')
    parser.add_argument('--resume', action='store_true',
                        help='continue OUT/last.pt exactly (same step, same learning rate)')
    parser.add_argument('--device', default='auto', help='auto (default), cpu or cuda[:N]')
    parser.add_argument('overrides', nargs='*', metavar='KEY=VALUE',
                        help='config overrides, e.g. model.arch=resnet18 batch_size=6')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.training.config import load_config
    from hybrid_depth_core.training.trainer import train

    config = load_config(args.config, args.overrides)
    path = train(config, args.out, max_steps=args.max_steps, minutes=args.minutes,
                 resume=args.resume, device=args.device)
    print(f'checkpoint: {path}')
    return 0
