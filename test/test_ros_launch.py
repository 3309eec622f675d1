"""launch/depth.launch.py, launch/two_cameras.launch.py and rviz/depth.rviz: every launch
argument reaches a real node parameter, remapping, environment or RViz option; two cameras get
a namespace each; the RViz config shows the node's topics in the camera frame; setup.py
installs them. launch_ros is not installable here, so one test runs the launch
file against stand-ins that record what it builds, and one loads it through launch_ros where
that is importable."""
import importlib.util
import runpy
import sys
import types
from pathlib import Path

import pytest
import setuptools
import yaml

from hybrid_depth_core.synthetic.bag_writer import CAMERA_FRAME
from hybrid_depth_core.runtime import node_config as config

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / 'launch' / 'depth.launch.py'
ARGUMENTS = {'params_file', 'weights', 'device', 'image', 'camera_info', 'rviz', 'fixed_frame',
             'namespace', 'node_name', 'use_sim_time', 'dds_profile'}
TWO_CAMERAS = REPO / 'launch' / 'two_cameras.launch.py'


class Recorded:
    """Stand-in for a launch class: remembers how it was built."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration(Recorded):
    def perform(self, context):
        return context[self.args[0]]


def stand_in_modules():
    modules = {}
    contents = {'launch': ['LaunchDescription'],
                'launch.actions': ['DeclareLaunchArgument', 'OpaqueFunction', 'GroupAction',
                                   'IncludeLaunchDescription'],
                'launch.conditions': ['IfCondition'],
                'launch.launch_description_sources': ['PythonLaunchDescriptionSource'],
                'launch.substitutions': ['PathJoinSubstitution'],
                'launch_ros': [], 'launch_ros.actions': ['Node'],
                'launch_ros.substitutions': ['FindPackageShare']}
    for name, classes in contents.items():
        module = modules[name] = types.ModuleType(name)
        for cls in classes:
            setattr(module, cls, type(cls, (Recorded,), {}))
    modules['launch.substitutions'].LaunchConfiguration = LaunchConfiguration
    modules['launch.substitutions'].EnvironmentVariable = type('EnvironmentVariable',
                                                               (Recorded,), {})
    return modules


class Context(dict):
    """A launch context's configurations that remembers which ones were read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read = set()

    def __getitem__(self, name):
        self.read.add(name)
        return super().__getitem__(name)


def load_launch_file(path=LAUNCH_FILE):
    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configurations(value) -> set[str]:
    """Names of every LaunchConfiguration inside `value` (nested in lists, dicts, actions)."""
    if isinstance(value, LaunchConfiguration):
        return {value.args[0]}
    if isinstance(value, Recorded):
        return configurations(list(value.args) + list(value.kwargs.values()))
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return set().union(*map(configurations, value)) if value else set()
    return set()


def test_launch_file_wiring_against_stand_in_launch_classes(monkeypatch):
    """Read with stand-ins for launch's classes (no ROS here): every launch argument maps to a
    node parameter, a topic remapping or RViz."""
    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    launch = load_launch_file()
    entities = launch.generate_launch_description().args[0]
    declared = {e.args[0]: e.kwargs for e in entities if type(e).__name__ ==
                'DeclareLaunchArgument'}
    assert set(declared) == ARGUMENTS
    assert all(kwargs['description'] for kwargs in declared.values())
    opaque = next(e for e in entities if type(e).__name__ == 'OpaqueFunction')

    context = Context({name: f'<{name}>' for name in declared})
    context.update(use_sim_time='True', rviz='false', namespace='/front/')
    node, = opaque.kwargs['function'](context)
    assert (node.kwargs['package'], node.kwargs['executable']) == ('hybrid_depth_ros',
                                                                   'depth_node')
    assert configurations(node.kwargs['name']) == {'node_name'}
    assert node.kwargs['namespace'] == 'front'
    assert declared['node_name']['default_value'] == config.NODE_NAME
    params_file, overrides = node.kwargs['parameters']
    assert configurations(params_file) == {'params_file'}
    parameter_names = {p.name for p in config.PARAMETERS}
    assert overrides == {**{name: f'<{name}>' for name in launch.PARAMETER_ARGUMENTS},
                         'use_sim_time': True}
    assert set(overrides) - {'use_sim_time'} <= parameter_names
    assert node.kwargs['additional_env'] == {'FASTRTPS_DEFAULT_PROFILES_FILE': '<dds_profile>'}
    # the profile: the user's own if set, else the shipped one
    profile = declared['dds_profile']['default_value']
    assert profile.args[0] == 'FASTRTPS_DEFAULT_PROFILES_FILE'
    assert profile.kwargs['default_value'].args[0][1:] == ['config', 'fastdds_large_images.xml']
    remappings = {source: configurations(target) for source, target in node.kwargs['remappings']}
    assert remappings == {config.IMAGE_TOPIC: {'image'},
                          config.CAMERA_INFO_TOPIC: {'camera_info'}}
    used = configurations(node) | context.read
    # Unset weights/device/use_sim_time do not override what the parameter file says; an empty
    # profile leaves the middleware's own settings.
    node, = opaque.kwargs['function'](Context({**context, 'weights': '', 'device': '',
                                               'use_sim_time': '', 'dds_profile': ''}))
    assert len(node.kwargs['parameters']) == 1
    assert node.kwargs['additional_env'] is None

    # RViz, only when asked for, showing this node's outputs in its namespace
    rviz_context = Context({**context, 'rviz': 'true'})
    node, rviz = opaque.kwargs['function'](rviz_context)
    used |= configurations(rviz) | rviz_context.read
    assert (rviz.kwargs['package'], rviz.kwargs['executable']) == ('rviz2', 'rviz2')
    flag_d, config_path, flag_f, fixed_frame = rviz.kwargs['arguments']
    assert (flag_d, flag_f) == ('-d', '-f') and configurations(fixed_frame) == {'fixed_frame'}
    assert config_path.args[0][1:] == ['rviz', 'depth.rviz']  # share/<package>/rviz/...
    assert dict(rviz.kwargs['remappings']) == {'/depth/colorized': '/front/depth/colorized',
                                               '/depth/points': '/front/depth/points'}
    _, rviz = opaque.kwargs['function'](Context({**context, 'rviz': 'true', 'namespace': ''}))
    assert rviz.kwargs['remappings'] == []
    assert used == ARGUMENTS  # no argument that does nothing
    assert declared['fixed_frame']['default_value'] == CAMERA_FRAME


def test_two_cameras_include_the_depth_launch_file_once_per_namespace(monkeypatch):
    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    launch = load_launch_file(TWO_CAMERAS)
    entities = launch.generate_launch_description().args[0]
    declared = {e.args[0] for e in entities if type(e).__name__ == 'DeclareLaunchArgument'}
    groups = [e for e in entities if type(e).__name__ == 'GroupAction']
    assert len(groups) == 2 and all(g.kwargs['scoped'] for g in groups)
    namespaces = []
    for group, camera in zip(groups, launch.CAMERAS):
        include, = group.args[0]
        source, = include.args
        assert source.args[0].args[0][1:] == ['launch', 'depth.launch.py']
        forwarded = dict(include.kwargs['launch_arguments'])
        namespaces.append(forwarded['namespace'])
        assert configurations(forwarded['image']) == {f'{camera}_image'}
        assert configurations(forwarded['camera_info']) == {f'{camera}_camera_info'}
        assert set(forwarded) - {'namespace', 'image', 'camera_info'} == set(launch.SHARED)
        assert set(launch.SHARED) <= ARGUMENTS and {f'{camera}_image'} <= declared
    assert namespaces == ['front', 'rear']


def test_launch_file_loads_through_launch_ros():
    pytest.importorskip('launch_ros', reason='launch_ros is not installed (no ROS install)')
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    description = load_launch_file().generate_launch_description()
    arguments = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert {a.name for a in arguments} == ARGUMENTS
    context = LaunchContext()
    for argument in arguments:
        context.launch_configurations[argument.name] = 'x'
    node, = next(e for e in description.entities if isinstance(e, OpaqueFunction)).execute(
        context)
    assert (node.node_package, node.node_executable) == ('hybrid_depth_ros', 'depth_node')


def test_rviz_config_shows_the_node_outputs_in_the_camera_frame():
    rviz = yaml.safe_load((REPO / 'rviz' / 'depth.rviz').read_text())
    manager = rviz['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == CAMERA_FRAME
    displays = {d['Class']: d for d in manager['Displays']}
    image = displays['rviz_default_plugins/Image']
    cloud = displays['rviz_default_plugins/PointCloud2']
    assert image['Topic']['Value'] == '/' + config.COLORIZED_TOPIC
    assert cloud['Topic']['Value'] == '/' + config.POINTS_TOPIC
    assert cloud['Color Transformer'] == 'RGB8'  # the cloud's packed rgb field
    # The node publishes reliably by default; RViz must ask for what it gets.
    from rclpy.qos import ReliabilityPolicy
    from hybrid_depth_ros.node import output_qos
    assert image['Topic']['Reliability Policy'] == cloud['Topic']['Reliability Policy'] == \
        'Reliable' and output_qos().reliability == ReliabilityPolicy.RELIABLE


def test_setup_installs_the_node_launch_rviz_and_parameter_files(monkeypatch):
    monkeypatch.chdir(REPO)  # setup.py globs relative paths
    arguments = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kwargs: arguments.update(kwargs))
    runpy.run_path(str(REPO / 'setup.py'))
    installed = dict(arguments['data_files'])
    share = 'share/hybrid_depth_ros'
    assert sorted(installed[f'{share}/launch']) == ['launch/depth.launch.py',
                                                    'launch/two_cameras.launch.py']
    assert installed[f'{share}/rviz'] == ['rviz/depth.rviz']
    assert {'config/depth_node.yaml', 'config/fastdds_large_images.xml'} <= set(
        installed[f'{share}/config'])
    assert 'depth_node = hybrid_depth_ros.node:main' in \
        arguments['entry_points']['console_scripts']
