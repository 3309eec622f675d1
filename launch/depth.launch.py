"""The depth node, with its parameter file, topic remappings and (optionally) RViz.

    ros2 launch hybrid_depth_ros depth.launch.py weights:=/path/to/last.pt \
        image:=/camera/image_raw camera_info:=/camera/camera_info rviz:=true

`weights`, `device` and `use_sim_time` override the parameter file only when given, so a
params_file that sets them is not clobbered by empty defaults. The image remapping also moves
`image/compressed` (image_transport:=compressed in the parameter file). `namespace` and
`node_name` keep several cameras apart (launch/two_cameras.launch.py includes this file twice);
`use_sim_time` follows a replayed /clock; `dds_profile` is the Fast DDS profile the node runs
with (default: FASTRTPS_DEFAULT_PROFILES_FILE if set, else the shipped
config/fastdds_large_images.xml; empty: the middleware's own settings). RViz (rviz:=true)
follows the node's namespace.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from hybrid_depth_core.runtime.node_config import (CAMERA_INFO_TOPIC, COLORIZED_TOPIC, IMAGE_TOPIC,
                                                   NODE_NAME, POINTS_TOPIC)
from hybrid_depth_ros.shipped_files import PROFILE_VARIABLE

PACKAGE = 'hybrid_depth_ros'
# Launch arguments that set a node parameter when non-empty.
PARAMETER_ARGUMENTS = ('weights', 'device')
# Launch arguments that remap one of the node's input topics (named as the topics are).
REMAPPING_ARGUMENTS = (IMAGE_TOPIC, CAMERA_INFO_TOPIC)


def _nodes(context):
    """The depth node, and RViz (rviz:=true) showing that node's outputs."""
    overrides = {}
    for name in PARAMETER_ARGUMENTS:
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    sim_time = LaunchConfiguration('use_sim_time').perform(context)
    if sim_time:  # else the parameter file's
        overrides['use_sim_time'] = sim_time.lower() in ('true', '1')
    profile = LaunchConfiguration('dds_profile').perform(context)
    namespace = LaunchConfiguration('namespace').perform(context).strip('/')
    parameters = [LaunchConfiguration('params_file')] + ([overrides] if overrides else [])
    nodes = [Node(package=PACKAGE, executable='depth_node', name=LaunchConfiguration('node_name'),
                  namespace=namespace, output='screen', parameters=parameters,
                  remappings=[(name, LaunchConfiguration(name)) for name in REMAPPING_ARGUMENTS],
                  additional_env={PROFILE_VARIABLE: profile} if profile else None)]
    if LaunchConfiguration('rviz').perform(context).lower() in ('true', '1'):
        # rviz/depth.rviz shows the root namespace's outputs: follow the node's namespace
        shown = [f'/{topic}' for topic in (COLORIZED_TOPIC, POINTS_TOPIC)]
        nodes.append(Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                          namespace=namespace,
                          arguments=['-d', PathJoinSubstitution([FindPackageShare(PACKAGE),
                                                                 'rviz', 'depth.rviz']),
                                     '-f', LaunchConfiguration('fixed_frame')],
                          remappings=[(topic, f'/{namespace}{topic}') for topic in shown]
                          if namespace else []))
    return nodes


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
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the node and its outputs (e.g. '
                                          'front: /front/depth/image); one per camera'),
        DeclareLaunchArgument('node_name', default_value=NODE_NAME,
                              description='node name (parameter files match it as '
                                          '/**/hybrid_depth: keep it, or match yours)'),
        DeclareLaunchArgument('use_sim_time', default_value='',
                              description='true: the node follows /clock (a replayed '
                                          'recording), as every node of the system must '
                                          '(overrides params_file when set)'),
        DeclareLaunchArgument('dds_profile',
                              default_value=EnvironmentVariable(
                                  PROFILE_VARIABLE, default_value=PathJoinSubstitution(
                                      [share, 'config', 'fastdds_large_images.xml'])),
                              description='Fast DDS XML profile of the node process (default: '
                                          'yours, if FASTRTPS_DEFAULT_PROFILES_FILE is set, '
                                          'else the shipped one, which fits camera-sized '
                                          'messages into shared memory); empty: the '
                                          'middleware defaults'),
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
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
