"""`hybrid-depth play BAG`: replay a rosbag2 into ROS 2 at its recorded rate (for running the
node against recordings where `ros2 bag` is not installed). ROS is imported inside `run`."""
from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_depth_ros.cli import float_above, import_ros
from hybrid_depth_ros.shipped_files import use_large_images_profile


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'play', help='replay a rosbag2 into ROS 2 at the recorded rate',
        description='Publish the messages of a rosbag2 (MCAP or sqlite3) at their recorded '
                    'times, on their recorded topics; topics whose message type is not '
                    'installed are skipped. Header stamps are kept as recorded.')
    parser.add_argument('bag', type=Path, help='rosbag2 directory (or file)')
    parser.add_argument('--rate', type=float_above(0), default=1.0,
                        help='speed factor: 2 plays twice as fast (default: 1)')
    parser.add_argument('--loop', action='store_true', help='start over at the end, until Ctrl-C')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC',
                        help='replay only these topics (default: all)')
    parser.add_argument('--delay', type=float_above(0, inclusive=True), default=1.0,
                        help='seconds to wait for subscribers to be discovered before the '
                             'first message (default: 1)')
    parser.add_argument('--allow-partial-bags', action='store_true',
                        help='replay what a damaged or cut-short recording holds before the '
                             'damage, instead of stopping')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import signal

    # A replayed camera publishes camera-sized messages, as a driver does: over shared memory
    # with the segment they need (config/fastdds_large_images.xml), unless the user set one.
    use_large_images_profile()
    replay = import_ros('hybrid_depth_ros.play')
    # Replay writes nothing to clean up: SIGTERM ends it like Ctrl-C, with its summary. SIGINT
    # explicitly too: a shell starting it in the background would have it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    return replay.main(args.bag, rate=args.rate, loop=args.loop, topics=args.topics,
                       delay=args.delay, allow_partial=args.allow_partial_bags)
