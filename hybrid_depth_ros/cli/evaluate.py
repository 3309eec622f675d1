"""`hybrid-depth evaluate`: AbsRel, SqRel, RMSE, RMSE log, d < 1.25^k of a checkpoint."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hybrid_depth_ros.cli import float_above, int_at_least


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'evaluate', help='depth metrics of a checkpoint against ground truth',
        description='Evaluate a checkpoint on held-out synthetic drives (exact GT), or on KITTI '
                    'raw with the Eigen protocol (Velodyne GT, Garg crop, 80 m cap), or on a '
                    'recorded bag against its depth topic (valid-GT mask, cap). Both are '
                    'reported: the depth as predicted (unscaled: metres for a checkpoint trained '
                    'with measured motion) and median-scaled per image (monocular depth is up '
                    'to scale), with the median scale ratio. A multi-frame checkpoint matches '
                    'each synthetic or bag frame against its keyframe, as the node does: the '
                    'most recent earlier frame with enough image motion (single-frame when '
                    'there is none); how many images had one, and their median keyframe age, is '
                    'reported. '
                    'KITTI frames are matched against the previous frame.')
    parser.add_argument('--checkpoint', type=Path, required=True)
    parser.add_argument('--synthetic-seeds', type=int, nargs='+', default=[1000, 1001],
                        help='held-out drive seeds (keep them apart from training seeds)')
    parser.add_argument('--kitti-root', type=Path, help='KITTI raw data root (with --kitti-split)')
    parser.add_argument('--kitti-split', type=Path,
                        help='split file, e.g. the Eigen test_files.txt (Monodepth2 format)')
    parser.add_argument('--bag', type=Path, help='a recorded rosbag2 with a GT depth topic')
    parser.add_argument('--gt-depth-topic',
                        help='with --bag: depth registered to the image (32FC1 m or 16UC1 mm)')
    parser.add_argument('--image-topic', help="with --bag: default the bag's only image topic")
    parser.add_argument('--camera-info-topic',
                        help="with --bag: default the image topic's camera_info")
    parser.add_argument('--allow-partial-bags', action='store_true',
                        help='use what a damaged or cut-short recording holds before the '
                             'damage (said at the end), instead of stopping')
    parser.add_argument('--frames', type=int_at_least(1), default=30, help='frames per drive')
    parser.add_argument('--max-depth', type=float_above(0), default=80.0, help='GT cap in metres')
    parser.add_argument('--single-frame', action='store_true',
                        help='score a multi-frame checkpoint without the previous frame or any '
                             'keyframe (its zero-cost-volume mode), to measure what matching '
                             'adds')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--json', type=Path, help='also write the results to this JSON file')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.errors import UserError
    from hybrid_depth_core.evaluation.drivers import (evaluate_bag, evaluate_kitti,
                                                      evaluate_synthetic)
    from hybrid_depth_core.evaluation.metrics import Protocol, format_table
    from hybrid_depth_core.runtime.predictor import DepthPredictor

    if (args.kitti_root is None) != (args.kitti_split is None):
        raise UserError('--kitti-root and --kitti-split go together')
    if (args.bag is None) != (args.gt_depth_topic is None):
        raise UserError('--bag and --gt-depth-topic go together')
    if args.bag is not None and args.kitti_root is not None:
        raise UserError('evaluate one dataset at a time: --bag or --kitti-root')
    predictor = DepthPredictor.from_checkpoint(args.checkpoint, device=args.device)
    matching = predictor.multi_frame and not args.single_frame

    def predict(rgb, K, previous=None, turn=None):
        return predictor.predict(rgb, K, previous if matching else None, turn)
    if args.kitti_root is not None:
        result = evaluate_kitti(predict, args.kitti_root, args.kitti_split)
    elif args.bag is not None:
        result = evaluate_bag(predict, args.bag, args.gt_depth_topic, args.image_topic,
                              args.camera_info_topic, Protocol(max_depth=args.max_depth),
                              keyframes=matching, allow_partial=args.allow_partial_bags)
    else:
        result = evaluate_synthetic(predict, args.synthetic_seeds, args.frames,
                                    predictor.width, predictor.height,
                                    Protocol(max_depth=args.max_depth), keyframes=matching)
    if predictor.multi_frame and not matching:
        print('multi-frame checkpoint, scored without the previous frame or a keyframe '
              '(--single-frame)')
    elif predictor.multi_frame and 'keyframe_images' in result:
        age = result['keyframe_age_median']
        print(f'multi-frame checkpoint, scored with keyframes: {result["keyframe_images"]} of '
              f'{result["images"]} images matched against one'
              + (f' (median keyframe age {age:g})' if age is not None else '')
              + '; the others single-frame')
    elif predictor.multi_frame:
        print('multi-frame checkpoint, scored with the previous frame')
    print('median-scaled (each image times the ratio of the ground truth\'s and the '
          'prediction\'s medians):')
    print(format_table(result['median_scaled']))
    kind = ('metres: the checkpoint learnt them from measured motion' if predictor.metric
            else 'the checkpoint is relative, trained without measured motion')
    print(f'unscaled (the depth as predicted; {kind}):')
    print(format_table(result['unscaled']))
    print(f'{result["images"]} images; median scale ratio {result["scale_median"]:.3f} '
          f'(std/median {result["scale_std_over_median"]:.3f})')
    if result.get('skipped'):
        print(f'warning: {result["skipped"]}')
    result['metric_checkpoint'] = predictor.metric
    # previous_frame: whether frames were matched at all (keyframes, or KITTI's previous frame)
    result['previous_frame'] = matching
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0
