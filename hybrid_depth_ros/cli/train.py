"""`hybrid-depth train`: self-supervised training (no depth labels)."""
from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_depth_ros.cli import float_above, int_at_least


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'train', help='train depth + pose networks without depth labels',
        description='Train the depth network (hybrid or resnet18, single- or multi-frame), the '
                    'pose network and, for multi-frame, the single-frame teacher, ManyDepth-'
                    'style. With no config it trains the measured default recipe, at an input '
                    'size that follows the images\' aspect ratio (about 192x64 pixels on a CPU, '
                    '640x192 on a GPU) and a frame stride chosen from the image motion. The '
                    'warm-up, learning-rate step and freeze happen at fixed fractions of the run '
                    '(--max-steps, --minutes, or the config\'s epochs). The final checkpoint is '
                    'OUT/last.pt, the one with the lowest held-out photometric loss OUT/best.pt; '
                    'TensorBoard logs go to OUT/tensorboard. Where the data holds the camera\'s '
                    'motion (a bag\'s /tf, odometry or pose topic; synthetic drives), depth is '
                    'learnt in metres and the checkpoint says so. Multi-GPU / multi-node: launch '
                    'with torchrun.')
    parser.add_argument('--config', type=Path, help='YAML training config (config/train_*.yaml)')
    parser.add_argument('--out', type=Path, required=True, help='output directory')
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument('--max-steps', type=int_at_least(1),
                        help='train this many steps (the schedule spans them)')
    budget.add_argument('--minutes', type=float_above(0),
                        help='train this long (the schedule spans it; with --resume, the '
                             'minutes already trained count)')
    parser.add_argument('--resume', action='store_true',
                        help='continue OUT/last.pt exactly (same step, same learning rate)')
    parser.add_argument('--init', type=Path, metavar='CHECKPOINT',
                        help='start from the networks of this training checkpoint (another '
                             'run\'s last.pt or best.pt, the same model: settings) with a new '
                             'schedule: fine-tuning, e.g. on your own bags')
    parser.add_argument('--device', default='auto', help='auto (default), cpu or cuda[:N]')
    bags = parser.add_argument_group('training from recorded bags (sets data.source=bag)')
    bags.add_argument('--bag', type=Path, action='append', default=[],
                      help='a rosbag2 directory or file (sqlite3 or MCAP); repeat for more')
    bags.add_argument('--image-topic', help="default: the bag's only camera image topic (depth "
                                            "topics are never the camera)")
    bags.add_argument('--camera-info-topic', help="default: the image topic's camera_info")
    bags.add_argument('--intrinsics', type=Path,
                      help='intrinsics YAML for bags without camera_info')
    bags.add_argument('--allow-partial-bags', action='store_true',
                      help='train on the part of a damaged bag that could be read')
    bags.add_argument('--span', metavar='START:END',
                      help='train on this part of each bag only: fractions of the recording '
                           '(:0.67, the first two thirds) or seconds from its first image '
                           '(10s:60s); leaves the rest for evaluate --span (data.span)')
    motion = parser.add_argument_group(
        'metric scale from the camera\'s measured motion (the velocity loss, loss.velocity)')
    motion.add_argument('--no-motion', action='store_true',
                        help='ignore every motion source: depth is then only up to scale')
    motion.add_argument('--motion-topic',
                        help='bag: the motion topic to use (tf2_msgs/TFMessage, nav_msgs/'
                             'Odometry, geometry_msgs/PoseStamped or PoseWithCovarianceStamped); '
                             'default: the first that works of /tf, odometry and a pose topic, '
                             'reported per bag; a bag where the topic fails stops the run')
    motion.add_argument('--motion-frame',
                        help='bag: the fixed frame of the TF chain to the camera (e.g. odom, map, '
                             'world; default: odom when the chain passes through it, else the '
                             'root of the camera\'s TF tree)')
    parser.add_argument('--frame-stride', type=int_at_least(1),
                        help='train on frames (t-s, t, t+s): data.frame_stride (default: the '
                             'smallest stride whose median parallax reaches 0.4%% of the '
                             'image width, up to 10; printed at the start)')
    parser.add_argument('overrides', nargs='*', metavar='KEY=VALUE',
                        help='config overrides, e.g. model.arch=resnet18 batch_size=6')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.errors import UserError
    from hybrid_depth_core.training.config import load_config
    from hybrid_depth_core.training.trainer import train

    config = load_config(args.config, args.overrides)
    if args.frame_stride is not None:
        config = with_data(config, frame_stride=args.frame_stride)
    if args.no_motion and (args.motion_topic or args.motion_frame):
        raise UserError('--no-motion ignores motion: it does not go with --motion-topic or '
                        '--motion-frame')
    motion = {'motion': False if args.no_motion else None, 'motion_topic': args.motion_topic,
              'motion_frame': args.motion_frame}
    if any(value is not None for value in motion.values()):
        config = with_data(config, **{k: v for k, v in motion.items() if v is not None})
    if args.bag:
        config = with_bags(config, args)
    if args.span is not None:  # for --bag, or for the bags a config names
        if config.data.source != 'bag':
            raise UserError(f'--span takes a part of each recorded bag; data.source is '
                            f'{config.data.source} (give --bag)')
        config = with_data(config, span=args.span)
    path = train(config, args.out, max_steps=args.max_steps, minutes=args.minutes,
                 resume=args.resume, device=args.device, init=args.init)
    print(f'checkpoint: {path}')
    return 0


def with_bags(config, args: argparse.Namespace):
    """The config with data.source=bag and the bag options of the command line."""
    chosen = {'image_topic': args.image_topic, 'camera_info_topic': args.camera_info_topic,
              'intrinsics': args.intrinsics and str(args.intrinsics),
              'allow_partial_bags': args.allow_partial_bags or None}
    return with_data(config, source='bag', bags=tuple(str(bag) for bag in args.bag),
                     **{k: v for k, v in chosen.items() if v is not None})


def with_data(config, **fields):
    """The config with these data.* fields replaced (and checked)."""
    import dataclasses

    from hybrid_depth_core.errors import UserError

    try:
        data = dataclasses.replace(config.data, **fields)
    except ValueError as error:
        raise UserError(str(error)) from None
    return dataclasses.replace(config, data=data)
