"""`hybrid-depth demo`: the whole system on the bundled sample drive (the README's main job)."""
from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_depth_ros.cli import float_above, import_ros, int_at_least
from hybrid_depth_ros.shipped_files import shipped


# The shipped model and the node parameters that go with it (models/README.md).
DEFAULT_WEIGHTS = 'models/hybrid_synthetic.pt'
DEFAULT_PARAMS = 'config/demo.yaml'


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'demo', help='run the depth node on the sample drive over ROS 2 and report',
        description='Record the sample drive (a synthetic drive the shipped model never saw) '
                    'as a rosbag2, start the depth node as its own process, replay the drive '
                    'into it over ROS 2 topics at the recorded rate, record what it publishes, '
                    'and write OUT: sample_drive/ (the input bag), node_output/ (the node\'s '
                    'messages), metrics.json (AbsRel etc. against ground truth, latency, '
                    'dropped frames) and montage.png (input | depth | ground truth | point '
                    'cloud). OUT must not exist; it appears complete or not at all.')
    parser.add_argument('--out', type=Path, default=Path('out/demo'),
                        help='output directory (new; default: out/demo)')
    parser.add_argument('--weights', type=Path,
                        help=f'model (default: the shipped {DEFAULT_WEIGHTS})')
    parser.add_argument('--params-file', type=Path,
                        help=f'node parameters (default: the shipped {DEFAULT_PARAMS})')
    parser.add_argument('--frames', type=int_at_least(3), default=50,
                        help='frames of the sample drive (default 50, at 10 Hz)')
    parser.add_argument('--seed', type=int_at_least(0), default=0,
                        help='sample drive seed (default 0; the shipped model trained on '
                             'streets 1-40)')
    parser.add_argument('--rate', type=float_above(0), default=1.0,
                        help='replay speed, 1 = recorded rate (10 Hz)')
    parser.add_argument('--device', help="auto, cpu, cuda or cuda:N (default: the parameter "
                                         "file's device, else auto)")
    parser.add_argument('--no-second-camera', action='store_true',
                        help='skip the second camera (the same drive seen 640x480, 62 degrees '
                             'wide, through the same node and model)')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.errors import UserError
    from hybrid_depth_core.runtime.node_config import parameter_file_values

    if args.out.exists():
        raise UserError(f'{args.out} already exists; remove it or choose another --out')
    args.weights = args.weights or shipped(DEFAULT_WEIGHTS)
    args.params_file = args.params_file or shipped(DEFAULT_PARAMS)
    parameter_file_values(args.params_file)  # a bad file named now, before the drive is made
    demo = import_ros('hybrid_depth_ros.demo')
    metrics = demo.run_demo(demo.DemoConfig(
        out=args.out, weights=args.weights, params_file=args.params_file, frames=args.frames,
        seed=args.seed, rate=args.rate, device=args.device,
        **({'second_camera': None} if args.no_second_camera else {})))
    print(f'\nwrote {args.out}/: montage.png, metrics.json, sample_drive/, node_output/'
          + (', second_camera/' if 'second_camera' in metrics else ''))
    if metrics['depth_scale'] == 1.0:
        print('no scale fitted: the depth is the network\'s own metres (depth_scale 1)')
    else:
        print(f'depth times depth_scale {metrics["depth_scale"]:g} from the params file (a '
              f'fitted scale, not the network\'s own metres)')
    _summary('the unseen drive', metrics)
    if 'second_camera' in metrics:
        second = metrics['second_camera']
        width, height = second['sample_drive']['size']
        _summary(f'the same drive seen by a second camera ({width}x{height}, '
                 f'{second["sample_drive"]["hfov_deg"]:g} degrees wide)', second)
    return 0


def _summary(what: str, metrics: dict) -> None:
    depth, scaled = metrics['metric_depth'], metrics['median_scaled']
    latency = metrics['latency_image_to_depth']
    width, height = metrics['model_input']
    reached = metrics['frames_reached_node']
    print(f'depth on {what} ({metrics["frames_with_depth"]} of {metrics["frames_published"]} '
          f'frames; network input {width}x{height}):')
    if reached is not None:
        print(f'  {reached} of {metrics["frames_published"]} images reached the node; it '
              f'skipped {metrics["frames_skipped_by_node"]} because a newer one came while it '
              f'was busy')
    print(f'  metric: AbsRel {depth["abs_rel"]:.3f}, RMSE {depth["rmse"]:.2f} m, d<1.25 '
          f'{depth["a1"]:.3f}; scale ratio to the truth {metrics["scale_ratio_median"]:.3f}; '
          f'depth on {100 * metrics["depth_coverage"]:.1f}% of the pixels with ground truth')
    print(f'  median-scaled per image: AbsRel {scaled["abs_rel"]:.3f}, d<1.25 {scaled["a1"]:.3f}')
    if latency:
        print(f'  image -> depth latency over ROS 2: median {latency["median_ms"]:.0f} ms, '
              f'p90 {latency["p90_ms"]:.0f} ms')
