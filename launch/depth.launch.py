"""The depth node, with its parameter file, topic remappings and (optionally) RViz.

    ros2 launch hybrid_depth_ros depth.launch.py weights:=/path/to/last.pt \
        image:=/camera/image_raw camera_info:=/camera/camera_info rviz:=true

`weights` and `device` override the parameter file only when given, so a params_file that sets
them is not clobbered by empty defaults. The image remapping also moves `image/compressed`
(image_transport:=compressed in the parameter file).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from hybrid_depth_core.runtime.node_config import CAMERA_INFO_TOPIC, IMAGE_TOPIC, NODE_NAME

PACKAGE = 'hybrid_depth_ros'
# Launch arguments that set a node parameter when non-empty.
PARAMETER_ARGUMENTS = ('weights', 'device')
# Launch arguments that remap one of the node's input topics (named as the topics are).
REMAPPING_ARGUMENTS = (IMAGE_TOPIC, CAMERA_INFO_TOPIC)


def _depth_node(context):
    overrides = {}
    for name in PARAMETER_ARGUMENTS:
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    parameters = [LaunchConfiguration('params_file')] + ([overrides] if overrides else [])
    return [Node(package=PACKAGE, executable='depth_node', name=NODE_NAME, output='screen',
                 parameters=parameters,
                 remappings=[(name, LaunchConfiguration(name)) for name in REMAPPING_ARGUMENTS])]


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            'params_file', default_value=PathJoinSubstitution([share, 'config',
                                                               'depth_node.yaml']),
            description='parameter YAML of the node (/**/hybrid_depth: ros__parameters:)'),
        DeclareLaunchArgument('weights', default_value='',
                              description='checkpoint from hybrid-depth train (overrides '
                                          'params_file when set)'),
        DeclareLaunchArgument('device', default_value='',
                              description='auto, cpu, cuda or cuda:N (overrides params_file '
                                          'when set)'),
        DeclareLaunchArgument('image', default_value='/camera/image_raw',
                              description='camera image topic (sensor_msgs/Image; its '
                                          '/compressed sibling with image_transport compressed)'),
        DeclareLaunchArgument('camera_info', default_value='/camera/camera_info',
                              description='camera_info topic of that image'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='also start RViz with rviz/depth.rviz'),
        DeclareLaunchArgument('fixed_frame', default_value='camera_optical_frame',
                              description="RViz fixed frame: the camera's optical frame "
                                          '(header.frame_id of the images)'),
    ]
    rviz = Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                arguments=['-d', PathJoinSubstitution([share, 'rviz', 'depth.rviz']),
                           '-f', LaunchConfiguration('fixed_frame')],
                condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription(arguments + [OpaqueFunction(function=_depth_node), rviz])
