"""`hybrid-depth demo`: the whole system on the bundled sample drive (the README's main job)."""
from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_depth_ros.cli import float_above, import_ros, int_at_least


def shipped(relative: str) -> Path:
    """A file the package ships, found from wherever it is installed: the source tree (or an
    editable install), or the `share/hybrid_depth_ros/` of a pip or colcon install prefix.
    Unfound: `relative` itself, so that the error names it."""
    for directory in Path(__file__).resolve().parents:
        for candidate in (directory / relative,
                          directory / 'share' / 'hybrid_depth_ros' / relative):
            if candidate.is_file():
                return candidate
    return Path(relative)


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
                        help='sample drive seed (default 0; the model trained on 1-16)')
    parser.add_argument('--rate', type=float_above(0), default=1.0,
                        help='replay speed, 1 = recorded rate (10 Hz)')
    parser.add_argument('--device', help="auto, cpu, cuda or cuda:N (default: the parameter "
                                         "file's device, else auto)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.errors import UserError

    if args.out.exists():
        raise UserError(f'{args.out} already exists; remove it or choose another --out')
    args.weights = args.weights or shipped(DEFAULT_WEIGHTS)
    args.params_file = args.params_file or shipped(DEFAULT_PARAMS)
    if not args.params_file.is_file():
        raise UserError(f'parameter file {args.params_file} does not exist')
    demo = import_ros('hybrid_depth_ros.demo')
    metrics = demo.run_demo(demo.DemoConfig(
        out=args.out, weights=args.weights, params_file=args.params_file, frames=args.frames,
        seed=args.seed, rate=args.rate, device=args.device))
    depth, scaled = metrics['metric_depth'], metrics['median_scaled']
    latency = metrics['latency_image_to_depth']
    print(f'\nwrote {args.out}/: montage.png, metrics.json, sample_drive/, node_output/')
    print(f'depth on the unseen drive ({metrics["frames_with_depth"]} of '
          f'{metrics["frames_published"]} frames, {metrics["frames_dropped"]} dropped):')
    print(f'  metric (depth_scale from the params file): AbsRel {depth["abs_rel"]:.3f}, RMSE '
          f'{depth["rmse"]:.2f} m, d<1.25 {depth["a1"]:.3f}')
    print(f'  median-scaled per image: AbsRel {scaled["abs_rel"]:.3f}, d<1.25 {scaled["a1"]:.3f}')
    if latency:
        print(f'  image -> depth latency over ROS 2: median {latency["median_ms"]:.0f} ms, '
              f'p90 {latency["p90_ms"]:.0f} ms')
    return 0
