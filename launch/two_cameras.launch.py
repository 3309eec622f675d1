"""Two cameras, a depth node for each, kept apart by namespace: depth.launch.py included
twice, once under /front and once under /rear, with the same model and parameter file.

    ros2 launch hybrid_depth_ros two_cameras.launch.py weights:=/path/to/last.pt \
        front_image:=/front/image_raw front_camera_info:=/front/camera_info \
        rear_image:=/rear/image_raw rear_camera_info:=/rear/camera_info

gives /front/hybrid_depth publishing /front/depth/image, /front/depth/points, ... and
/rear/hybrid_depth publishing /rear/depth/...; each publishes its own /diagnostics status.
Copy it for other cameras or other models (a `weights` per include).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'hybrid_depth_ros'
CAMERAS = ('front', 'rear')
SHARED = ('weights', 'params_file', 'use_sim_time')  # passed on to both includes


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument('weights', description='checkpoint from hybrid-depth train'),
        DeclareLaunchArgument(
            'params_file', default_value=PathJoinSubstitution([share, 'config',
                                                               'depth_node.yaml']),
            description='parameter YAML of both nodes'),
        DeclareLaunchArgument('use_sim_time', default_value='',
                              description='true: the nodes follow /clock (default: the '
                                          'parameter file\'s)'),
    ]
    groups = []
    for camera in CAMERAS:
        arguments += [
            DeclareLaunchArgument(f'{camera}_image', default_value=f'/{camera}/image_raw',
                                  description=f'the {camera} camera\'s image topic'),
            DeclareLaunchArgument(f'{camera}_camera_info',
                                  default_value=f'/{camera}/camera_info',
                                  description=f'the {camera} camera\'s camera_info topic')]
        forwarded = {name: LaunchConfiguration(name) for name in SHARED}
        forwarded.update(namespace=camera, image=LaunchConfiguration(f'{camera}_image'),
                         camera_info=LaunchConfiguration(f'{camera}_camera_info'))
        # scoped: the include's own launch configurations stay inside its group
        groups.append(GroupAction([IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch',
                                                                'depth.launch.py'])),
            launch_arguments=forwarded.items())], scoped=True))
    return LaunchDescription(arguments + groups)
