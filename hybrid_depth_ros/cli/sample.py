"""`hybrid-depth sample`: write a synthetic drive or room walk with exact depth as a rosbag2."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from hybrid_depth_ros.cli import int_at_least
from hybrid_depth_core.recordings.storage import STORAGES


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'sample', help='write a synthetic drive or room walk with exact depth and poses as a '
                       'rosbag2',
        description='Render a procedural world seen by a moving camera and record it as a '
                    'rosbag2: /camera/image_raw (rgb8) or /camera/image_raw/compressed (JPEG), '
                    '/camera/camera_info, /camera/depth_gt (32FC1 metres, NaN = sky), and the '
                    'motion as a robot records it (--motion). --scene street: a car '
                    'camera driving down a street (KITTI-like: 640x192, 81.5 degrees wide, '
                    '10 Hz, 50 frames); --scene room: a handheld camera walking and looking '
                    'around a furnished room, slowly, turning a lot, with stops (Kinect-like: '
                    '640x480, 62 degrees wide, 30 Hz, 400 frames; no sky).')
    parser.add_argument('out', type=Path, help='bag directory to create (must not exist)')
    parser.add_argument('--scene', choices=('street', 'room'), default='street',
                        help='what to render (default: street)')
    parser.add_argument('--frames', type=int_at_least(1),
                        help='number of frames (default: 50 for the street, 400 for the room)')
    parser.add_argument('--width', type=int_at_least(16),
                        help='image width in pixels (default: 640)')
    parser.add_argument('--height', type=int_at_least(16),
                        help='image height in pixels (default: 192 for the street, 480 for the '
                             'room)')
    parser.add_argument('--seed', type=int_at_least(0), default=0,
                        help='world and trajectory seed; each seed is a different street or '
                             'room (default: 0)')
    parser.add_argument('--storage', choices=STORAGES, default='mcap',
                        help='rosbag2 storage format (default: mcap)')
    parser.add_argument('--compressed', action='store_true',
                        help='record JPEG sensor_msgs/CompressedImage on '
                             '/camera/image_raw/compressed instead of raw rgb8 images')
    parser.add_argument('--jpeg-quality', type=int_at_least(1), default=90,
                        help='JPEG quality 1-100 with --compressed (default: 90)')
    parser.add_argument('--motion', choices=('tf', 'odom', 'none'), default='tf',
                        help='tf (default): /tf world -> base_link, /tf_static base_link -> '
                             'camera_optical_frame and the camera pose on /camera/pose; odom: '
                             '/odom (nav_msgs/Odometry, odom -> base_link) and /tf_static; '
                             'none: no motion topics')
    parser.set_defaults(run=run)


def make_sequence(args: argparse.Namespace):
    """The SyntheticDrive or RoomWalk the arguments ask for; sizes not given are the scene's
    own defaults. A ValueError names a bad value."""
    from hybrid_depth_core.synthetic import (DriveConfig, RoomWalk, RoomWalkConfig,
                                             SyntheticDrive)

    given = {name: getattr(args, name) for name in ('width', 'height', 'frames')
             if getattr(args, name) is not None}
    if args.scene == 'room':
        return RoomWalk(RoomWalkConfig(seed=args.seed, **given))
    return SyntheticDrive(DriveConfig(seed=args.seed, **given))


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.synthetic.bag_writer import write_drive_bag
    from hybrid_depth_core.errors import UserError

    if args.jpeg_quality > 100:
        raise UserError(f'--jpeg-quality must be in [1, 100], got {args.jpeg_quality}')
    try:
        sequence = make_sequence(args)
    except ValueError as error:
        raise UserError(str(error)) from None
    config = sequence.config
    start = time.perf_counter()
    summary = write_drive_bag(sequence, args.out, storage=args.storage,
                              compressed=args.compressed, jpeg_quality=args.jpeg_quality,
                              motion=args.motion)
    seconds = time.perf_counter() - start
    print(f'wrote {summary.path} ({summary.storage}, {summary.size_bytes / 2**20:.1f} MiB): '
          f'{config.frames} frames of {config.width}x{config.height}, {args.scene}, seed '
          f'{config.seed}, in {seconds:.1f} s ({1000 * seconds / config.frames:.0f} ms/frame)')
    for (topic, msgtype), count in summary.messages.items():
        print(f'  {topic:<32} {msgtype:<34} {count} messages')
    return 0
