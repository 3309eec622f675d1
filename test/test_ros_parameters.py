"""The node's parameters agree everywhere: what the node declares (with descriptions, ranges,
read-only), config/depth_node.yaml, and the tables in the README. A YAML file in the
installed format really reaches the node's config."""
import re
from pathlib import Path

import pytest
import rclpy
import yaml
from rcl_interfaces.msg import ParameterType
from rclpy.context import Context

from hybrid_depth_core.errors import UserError
from hybrid_depth_core.runtime.node_config import NODE_NAME, PARAMETERS, NodeConfig
from hybrid_depth_ros.node import declare_parameters

REPO = Path(__file__).resolve().parents[1]
YAML_FILE = REPO / 'config' / 'depth_node.yaml'
YAML_KEY = f'/**/{NODE_NAME}'  # any namespace
TYPES = {bool: ('bool', ParameterType.PARAMETER_BOOL),
         int: ('int', ParameterType.PARAMETER_INTEGER),
         float: ('double', ParameterType.PARAMETER_DOUBLE),
         str: ('string', ParameterType.PARAMETER_STRING)}


def declared(arguments):
    """Declare the parameters on a fresh node started with these ROS arguments; (config,
    {name: descriptor})."""
    context = Context()
    rclpy.init(args=['test', '--ros-args', *arguments], context=context)
    try:
        node = rclpy.create_node(NODE_NAME, context=context)
        config = declare_parameters(node)
        names = [p.name for p in PARAMETERS]
        return config, dict(zip(names, node.describe_parameters(names)))
    finally:
        rclpy.try_shutdown(context=context)


def test_declared_parameters_have_descriptions_types_ranges_and_are_read_only():
    config, descriptors = declared([])
    assert config == NodeConfig()
    for param in PARAMETERS:
        descriptor = descriptors[param.name]
        assert descriptor.description == param.description and descriptor.read_only
        assert descriptor.type == TYPES[type(param.default)][1]
        ranges = list(descriptor.floating_point_range) + list(descriptor.integer_range)
        if param.minimum is None:
            assert not ranges
        else:
            assert (ranges[0].from_value, ranges[0].to_value) == (param.minimum, param.maximum)
        if param.choices:
            assert descriptor.additional_constraints == f'one of: {", ".join(param.choices)}'


def test_parameter_file_values_reach_a_namespaced_node(tmp_path):
    data = yaml.safe_load(YAML_FILE.read_text())
    data[YAML_KEY]['ros__parameters'].update(cloud_stride=4, device='cpu', max_depth=40.0)
    changed = tmp_path / 'params.yaml'
    changed.write_text(yaml.safe_dump(data))
    # Namespaced, as on a robot: the file's key must still match the node.
    config, _ = declared(['--params-file', str(changed), '-r', '__ns:=/camera'])
    assert (config.cloud_stride, config.device, config.max_depth) == (4, 'cpu', 40.0)


@pytest.mark.parametrize('arguments, problem', [
    (['-p', 'min_depth:=1'], 'min_depth must be a double'),
    (['-p', 'cloud_stride:=0'], 'cloud_stride: .*out of range'),
    (['-p', 'precision:=fp8'], 'must be one of fp32, bf16, fp16'),
    (['-p', 'num_threads:=300'], 'num_threads: .*out of range'),
])
def test_bad_values_are_one_line_user_errors(arguments, problem):
    with pytest.raises(UserError, match=problem):
        declared(arguments)


def test_yaml_defaults_are_the_declared_defaults():
    data = yaml.safe_load(YAML_FILE.read_text())
    assert list(data) == [YAML_KEY]
    values = data[YAML_KEY]['ros__parameters']
    assert list(values.items()) == [(p.name, p.default) for p in PARAMETERS]
    assert all(type(values[p.name]) is type(p.default) for p in PARAMETERS)


def docs_table():
    text = (REPO / 'README.md').read_text()
    section = text.split('\n### Parameters\n', 1)[1].split('\n#', 1)[0]
    rows = [line for line in section.splitlines() if line.startswith('| `')]
    return [[cell.strip() for cell in row.strip('|').split('|')] for row in rows]


def test_readme_parameter_table_matches_the_declared_parameters():
    rows = docs_table()
    assert [row[0].strip('`') for row in rows] == [p.name for p in PARAMETERS]
    for (name, kind, default, value_range, description), param in zip(rows, PARAMETERS):
        name = name.strip('`')
        assert kind == TYPES[type(param.default)][0], name
        assert yaml.safe_load(default.strip('`')) == param.default, name
        listed = re.findall(r'`([^`]+)`', value_range)
        if param.choices:
            assert listed == list(param.choices), name
        elif param.minimum is not None:
            assert value_range == f'[{param.minimum}, {param.maximum}]', name
        elif name == 'device':  # free text checked by NodeConfig: auto, cpu, cuda, cuda:N
            assert listed == ['auto', 'cpu', 'cuda', 'cuda:N']
        else:
            assert value_range == '', name
        assert description, name


def test_readme_topic_table_names_the_node_topics():
    from hybrid_depth_core.runtime.node_config import (CAMERA_INFO_TOPIC, COLORIZED_TOPIC,
                                                       DEPTH_INFO_TOPIC, DEPTH_TOPIC, IMAGE_TOPIC,
                                                       POINTS_TOPIC)
    from hybrid_depth_ros.node import DIAGNOSTICS_TOPIC
    text = (REPO / 'README.md').read_text()
    section = text.split('\n### Topics\n', 1)[1].split('\n#', 1)[0]
    listed = [line.split('|')[1].strip().strip('`') for line in section.splitlines()
              if line.startswith('| `')]
    assert listed == [IMAGE_TOPIC, f'{IMAGE_TOPIC}/compressed', CAMERA_INFO_TOPIC, DEPTH_TOPIC,
                      DEPTH_INFO_TOPIC, COLORIZED_TOPIC, POINTS_TOPIC, DIAGNOSTICS_TOPIC]
