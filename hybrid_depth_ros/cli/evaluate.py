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
                    'recorded bag against its depth topic (valid-GT mask, cap) or, on a street '
                    'recording without depth, by the road at a known camera height. Both are '
                    'reported: the depth as predicted (unscaled: metres for a checkpoint trained '
                    'with measured motion) and median-scaled per image (monocular depth is up '
                    'to scale), with the median scale ratio. A multi-frame checkpoint matches '
                    'each synthetic or bag frame against its keyframe, as the node does: the '
                    'most recent earlier frame with enough image motion (single-frame when '
                    'there is none); how many images had one, and their median keyframe age, is '
                    'reported. On a bag, a constant depth is scored on the same pixels beside '
                    'the checkpoint, the reference that says what an AbsRel is worth there. '
                    'KITTI frames are matched against the previous frame.')
    parser.add_argument('--checkpoint', type=Path, required=True)
    parser.add_argument('--synthetic-seeds', type=int, nargs='+', default=[1000, 1001],
                        help='held-out drive seeds (keep them apart from training seeds)')
    parser.add_argument('--kitti-root', type=Path, help='KITTI raw data root (with --kitti-split)')
    parser.add_argument('--kitti-split', type=Path,
                        help='split file, e.g. the Eigen test_files.txt (Monodepth2 format)')
    parser.add_argument('--bag', type=Path, help='a recorded rosbag2 (MCAP or sqlite3)')
    parser.add_argument('--gt-depth-topic',
                        help='with --bag: depth registered to the image, on the same pixel grid '
                             '(raw or rectified, as the images are): 32FC1 m or 16UC1 mm '
                             'Images, or image_transport compressedDepth; default: the bag\'s '
                             'only depth topic')
    parser.add_argument('--image-topic',
                        help="with --bag: default the bag's only camera image topic (depth "
                             "topics are never the camera)")
    parser.add_argument('--camera-info-topic',
                        help="with --bag: default the image topic's camera_info")
    parser.add_argument('--span', metavar='START:END', default='',
                        help='with --bag: score only this part of the recording, fractions '
                             '(0.67:, the last third) or seconds from its first image (30s:60s); '
                             'the part a `train --span` left out')
    parser.add_argument('--stamp-tolerance', type=float_above(0), metavar='SECONDS',
                        help='with --bag: a depth image is paired with the image nearest in '
                             'stamp, at most this far (default: half the images\' frame '
                             'period)')
    parser.add_argument('--road-camera-height', type=float_above(0), metavar='METRES',
                        help='with --bag: the road check, for street recordings without '
                             'depth: the camera is this high above a flat road and mounted '
                             'level; the median ratio of predicted to flat-road depth over the '
                             'lower middle of each image (1: metric), per image in --json')
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
    from hybrid_depth_core.atomic import check_output_file
    from hybrid_depth_core.recordings.time_span import TimeSpan
    from hybrid_depth_core.errors import UserError
    from hybrid_depth_core.evaluation.bag_evaluation import evaluate_bag
    from hybrid_depth_core.evaluation.drivers import evaluate_kitti, evaluate_synthetic
    from hybrid_depth_core.evaluation.metrics import Protocol
    from hybrid_depth_core.evaluation.road import RoadCheck
    from hybrid_depth_core.runtime.predictor import DepthPredictor

    if (args.kitti_root is None) != (args.kitti_split is None):
        raise UserError('--kitti-root and --kitti-split go together')
    bag_only = {'--gt-depth-topic': args.gt_depth_topic, '--span': args.span,
                '--stamp-tolerance': args.stamp_tolerance,
                '--road-camera-height': args.road_camera_height,
                '--image-topic': args.image_topic, '--camera-info-topic': args.camera_info_topic}
    given = [name for name, value in bag_only.items() if value]
    if args.bag is None and given:
        raise UserError(f'{", ".join(given)} go{"es" * (len(given) == 1)} with --bag')
    try:
        span = TimeSpan(args.span)
    except ValueError as error:
        raise UserError(f'--span: {error}') from None
    if args.bag is not None and args.kitti_root is not None:
        raise UserError('evaluate one dataset at a time: --bag or --kitti-root')
    if args.json is not None:  # found now, not after the whole evaluation
        inputs = (args.checkpoint, args.bag, args.kitti_root, args.kitti_split)
        check_output_file(args.json, '--json', [path for path in inputs if path is not None])
    predictor = DepthPredictor.from_checkpoint(args.checkpoint, device=args.device)
    matching = predictor.multi_frame and not args.single_frame

    def predict(rgb, K, previous=None, turn=None):
        return predictor.predict(rgb, K, previous if matching else None, turn)
    if args.kitti_root is not None:
        result = evaluate_kitti(predict, args.kitti_root, args.kitti_split)
    elif args.bag is not None:
        road = args.road_camera_height and RoadCheck(args.road_camera_height)
        result = evaluate_bag(predict, args.bag, args.gt_depth_topic, args.image_topic,
                              args.camera_info_topic, Protocol(max_depth=args.max_depth),
                              keyframes=matching, allow_partial=args.allow_partial_bags,
                              span=span, tolerance_s=args.stamp_tolerance, road=road or None)
    else:
        result = evaluate_synthetic(predict, args.synthetic_seeds, args.frames,
                                    predictor.width, predictor.height,
                                    Protocol(max_depth=args.max_depth), keyframes=matching)
    if result.get('span'):
        print(result['span'])
    print_matching(result, predictor, matching)
    if 'images' in result:
        print_metrics(result, predictor)
    if 'road' in result:
        print_road(result['road'])
    if result.get('note'):
        print(f'note: {result["note"]}')
    if result.get('skipped'):
        print(f'warning: {result["skipped"]}')
    result['metric_checkpoint'] = predictor.metric
    # previous_frame: whether frames were matched at all (keyframes, or KITTI's previous frame)
    result['previous_frame'] = matching
    if args.json:
        write_json(args.json, result)
    return 0


def print_matching(result: dict, predictor, matching: bool) -> None:
    if predictor.multi_frame and not matching:
        print('multi-frame checkpoint, scored without the previous frame or a keyframe '
              '(--single-frame)')
    elif predictor.multi_frame and 'keyframe_images' in result:
        age = result['keyframe_age_median']
        print(f'multi-frame checkpoint, scored with keyframes: {result["keyframe_images"]} of '
              f'{result["images"]} images matched against one'
              + (f' (median keyframe age {age:g})' if age is not None else '')
              + '; the others single-frame')
    elif predictor.multi_frame and 'images' in result:
        print('multi-frame checkpoint, scored with the previous frame')
    elif predictor.multi_frame and 'road' in result:
        print(f'multi-frame checkpoint, run with keyframes: {result["road"]["keyframe_images"]} '
              f'of {result["road"]["images"]} images matched against one')


def print_metrics(result: dict, predictor) -> None:
    from hybrid_depth_core.evaluation.metrics import format_table

    if 'pairing' in result:
        print(f'ground truth: {result["pairing"]["text"]}')
    print('median-scaled (each image times the ratio of the ground truth\'s and the '
          'prediction\'s medians):')
    print(format_table(result['median_scaled']))
    kind = ('metres: the checkpoint learnt them from measured motion' if predictor.metric
            else 'the checkpoint is relative, trained without measured motion')
    print(f'unscaled (the depth as predicted; {kind}):')
    print(format_table(result['unscaled']))
    print(f'{result["images"]} images; median scale ratio {result["scale_median"]:.3f} '
          f'(std/median {result["scale_std_over_median"]:.3f})')
    if 'constant' in result:
        constant = result['constant']
        print(f'for reference, a constant depth on the same pixels: AbsRel '
              f'{constant["median_scaled"]["abs_rel"]:.3f} median-scaled, '
              f'{constant["unscaled"]["abs_rel"]:.3f} unscaled at {constant["depth"]:.2f} m '
              f'(d<1.25 {constant["median_scaled"]["a1"]:.3f} and '
              f'{constant["unscaled"]["a1"]:.3f}); below it is depth learnt, above it is not')


def print_road(road: dict) -> None:
    print(f'road check ({road["camera_height"]:g} m above a flat road, lower middle of the '
          f'image): predicted / flat-road depth, median {road["median"]:.3f} over '
          f'{road["images"]} images (10-90%: {road["p10"]:.3f}-{road["p90"]:.3f}; 1 is '
          f'metric)')


def write_json(path: Path, result: dict) -> None:
    from hybrid_depth_core.atomic import new_file
    from hybrid_depth_core.errors import UserError

    try:
        with new_file(path) as file:
            file.write(json.dumps(result, indent=2).encode())
    except OSError as error:  # checked at the start, but a disk can fill or go away since
        raise UserError(f'--json {path}: cannot write it ({error.strerror or error}); the '
                        f'results are printed above') from None
