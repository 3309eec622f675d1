"""`hybrid-depth node`: the ROS 2 depth node (the same as `ros2 run hybrid_depth_ros depth_node`).

ROS is imported inside `run` only: the core, and `hybrid-depth --help`, work without ROS.
"""
from __future__ import annotations

import argparse
import signal
from pathlib import Path

from hybrid_depth_ros.cli import import_ros
from hybrid_depth_ros.shipped_files import use_large_images_profile


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'node', help='run the ROS 2 depth node (camera images in, depth and point clouds out)',
        usage='hybrid-depth node [-h] [--weights W] [--params-file F] [--device D] '
              '[--image TOPIC] [--camera-info TOPIC] [-- ROS_ARGS ...]',
        description='Run the ROS 2 node hybrid_depth: subscribes to image (or image/compressed) '
                    'and camera_info, publishes depth/image, depth/camera_info, '
                    'depth/colorized and depth/points. Parameters and topics: the README; '
                    'behaviour: docs/ros_node.md. The options below are '
                    'shortcuts for ROS arguments; anything after -- is passed to ROS as is, '
                    'e.g. -- --ros-args -p cloud_stride:=4.')
    parser.add_argument('--weights', type=Path,
                        help='checkpoint from hybrid-depth train (default: the parameter; '
                             'required: a random network only with -- --ros-args -p '
                             'random_weights:=true)')
    parser.add_argument('--params-file', type=Path, help='ROS parameter YAML file')
    parser.add_argument('--device', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--image', help='remap the image topic (e.g. /camera/image_raw)')
    parser.add_argument('--camera-info', help='remap the camera_info topic')
    parser.add_argument('ros_args', nargs='*', metavar='ROS_ARGS',
                        help='after --: further ROS arguments')
    parser.set_defaults(run=run)


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """The command-line shortcuts as a --ros-args section, followed by the user's own."""
    ros = []
    if args.params_file is not None:
        ros += ['--params-file', str(args.params_file)]
    if args.weights is not None:
        ros += ['-p', f'weights:={args.weights}']
    if args.device is not None:
        ros += ['-p', f'device:={args.device}']
    if args.image is not None:
        ros += ['-r', f'image:={args.image}']
    if args.camera_info is not None:
        ros += ['-r', f'camera_info:={args.camera_info}']
    return (['--ros-args', *ros] if ros else []) + list(args.ros_args)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.runtime.node_config import check_topic_name, parameter_file_values

    if args.params_file is not None:
        parameter_file_values(args.params_file)  # a bad file named now, not by rcl
    # rcl refuses a bad remap too, but as a lexer error that names no rule.
    for option, topic in (('--image', args.image), ('--camera-info', args.camera_info)):
        if topic is not None:
            check_topic_name(topic, option)
    # Camera-sized messages over shared memory (config/fastdds_large_images.xml), unless the
    # user set a profile; read when rclpy creates this process's participant.
    use_large_images_profile()
    node = import_ros('hybrid_depth_ros.node')
    # rclpy handles SIGINT/SIGTERM itself (it shuts the node down cleanly); the command line's
    # own SIGTERM handler is for commands that write files.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return node.main(ros_arguments(args))
