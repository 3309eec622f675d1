"""`hybrid-depth infer`: depth for every frame of a recorded bag, written to a new bag."""
from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_depth_ros.cli import float_above, int_at_least
from hybrid_depth_core.recordings.storage import STORAGES


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'infer', help='run a checkpoint over a rosbag2 and write a new bag with depth',
        description='Run the depth node\'s pipeline offline: every image of BAG (raw or '
                    'compressed, rectified with its camera_info) through the checkpoint. OUT is '
                    'a new bag with the input\'s image and camera_info messages plus '
                    'depth/image (32FC1 metres), depth/camera_info and depth/points, stamped '
                    'like their images, '
                    'under the image topic\'s namespace. A multi-frame checkpoint matches each '
                    'image against its keyframe, as the node does: the most recent earlier frame '
                    'with enough image motion, so a slow camera still gives the cost volume a '
                    'baseline; frames without one (the first, a camera standing still) run '
                    'single-frame. The input bag is only read; OUT is written under a temporary '
                    'name and appears only when complete.')
    parser.add_argument('--checkpoint', type=Path, required=True)
    parser.add_argument('--bag', type=Path, required=True,
                        help='input rosbag2 (directory or file)')
    parser.add_argument('--out', type=Path, required=True, help='output bag directory (new)')
    parser.add_argument('--image-topic', help="default: the bag's only image topic")
    parser.add_argument('--camera-info-topic', help="default: the image topic's camera_info")
    parser.add_argument('--namespace',
                        help="namespace of the output topics, a valid ROS 2 name such as "
                             "/robot1/front (default: the image topic's)")
    parser.add_argument('--no-points', action='store_true', help='do not write point clouds')
    parser.add_argument('--cloud-stride', type=int_at_least(1), default=1,
                        help='keep every n-th pixel of every n-th row in points')
    parser.add_argument('--depth-scale', type=float_above(0), default=1.0,
                        help='factor applied to the network depth: 1 (default) for a metric '
                             'checkpoint (trained with measured motion); a relative one needs '
                             'its scale')
    parser.add_argument('--fallback-fov', type=float_above(0, inclusive=True), default=0.0,
                        help='horizontal FOV (degrees) for bags without camera_info')
    parser.add_argument('--single-frame', action='store_true',
                        help='never match against an earlier frame (keyframe), even with a '
                             'multi-frame checkpoint')
    parser.add_argument('--storage', choices=STORAGES, default='mcap')
    parser.add_argument('--allow-partial-bags', action='store_true',
                        help='use what a damaged or cut-short recording holds before the '
                             'damage (said at the end), instead of stopping')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--precision', choices=('fp32', 'bf16', 'fp16'), default='fp32')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.runtime.bag_inference import infer_bag
    from hybrid_depth_core.runtime.node_config import NodeConfig, fully_qualified_namespace
    from hybrid_depth_core.runtime.predictor import scale_warning
    from hybrid_depth_core.runtime.loader import load_predictor

    if args.namespace is not None:  # before the checkpoint loads: a typo fails at once
        fully_qualified_namespace(args.namespace, '--namespace')
    config = NodeConfig.from_values(dict(
        weights=str(args.checkpoint), device=args.device, precision=args.precision,
        depth_scale=args.depth_scale, cloud_stride=args.cloud_stride,
        publish_points=not args.no_points, single_frame=args.single_frame,
        fallback_fov=args.fallback_fov))
    predictor = load_predictor(config)
    warning = scale_warning(predictor, config.weights)
    if warning:
        print(f'warning: {warning}')
    summary = infer_bag(predictor, args.bag, args.out, config, args.image_topic,
                        args.camera_info_topic, args.namespace, args.storage,
                        allow_partial=args.allow_partial_bags)
    print(f'wrote {summary.out}: {summary.frames} frames ({summary.multi_frame_frames} '
          f'multi-frame, matched against a keyframe); '
          + ', '.join(f'{topic} {count}' for topic, count in sorted(summary.messages.items())))
    if summary.skipped:
        print(f'warning: {summary.skipped}')
    return 0
