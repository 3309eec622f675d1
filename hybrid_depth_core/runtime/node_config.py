"""The node's parameters: NodeConfig's fields carry each one's default, range and description;
PARAMETERS, the table derived from them, is what the node declares from, and
config/depth_node.yaml and the README's table repeat it (tests compare all three). No ROS
imports, so it is tested without ROS."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from hybrid_depth_core.errors import UserError
from hybrid_depth_core.user_files import read_yaml

NODE_NAME = 'hybrid_depth'
# Topic names, relative to the node's namespace (remap them).
IMAGE_TOPIC, CAMERA_INFO_TOPIC = 'image', 'camera_info'  # in; compressed: IMAGE_TOPIC/compressed
# Out: siblings under depth/, so that tools which find an image's calibration as its sibling
# camera_info (image_transport's rule: depth_image_proc, RViz, image_geometry) pair depth/image
# with depth/camera_info, not with the input camera's camera_info.
DEPTH_TOPIC, DEPTH_INFO_TOPIC = 'depth/image', 'depth/camera_info'
COLORIZED_TOPIC, POINTS_TOPIC = 'depth/colorized', 'depth/points'  # optional
RANDOM_INPUT_SIZE = (640, 192)  # network input of the random-init model (weights empty)
# ROS 2's naming rule (rcl and rmw validate names with it; REP 144's tokens): a name that breaks
# it is refused by every ROS tool, so an output written under one could never be played back or
# subscribed to.
NAME_RULE = ("ROS 2 names are tokens of ASCII letters, digits and '_', none starting with a "
             "digit, separated by single '/', with no '/' at the end (e.g. /robot1/front)")
_TOKEN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def name_problem(name: str, namespace: bool = False) -> str | None:
    """What makes `name` no valid ROS 2 topic name (namespace False: absolute, relative or
    private: '~' or '~/...') or namespace (True: '/' for the root, absolute or relative, never
    private), in a few words; None if it is valid. Substitutions ('{node}') are not taken: no
    option here needs them."""
    if not name:
        return 'it is empty'
    if namespace and name == '/':
        return None
    body = name
    if body.startswith('~') and namespace:
        return "'~' (a node's private namespace) cannot be a namespace"
    if body.startswith('~'):
        if body == '~':
            return None
        if not body.startswith('~/'):
            return "'~' must stand alone or be followed by '/'"
        body = body[2:]
    elif body.startswith('/'):
        body = body[1:]
    if body.endswith('/') or not body:
        return "it ends with '/'"
    for token in body.split('/'):
        if not token:
            return "it has '//' (an empty token)"
        if not _TOKEN.fullmatch(token):
            if token[0].isdigit():
                return f'its token {token!r} starts with a digit'
            return f"its token {token!r} has characters other than letters, digits and '_'"
    return None


def fully_qualified_namespace(value: str, option: str) -> str:
    """A user's namespace option as a fully qualified namespace without the trailing '/' ('' for
    the root, so that f'{namespace}/{DEPTH_TOPIC}' is the full topic): a relative one is taken
    from the root, as rcl does for a node, and one trailing '/' is dropped, as the launch file's
    `namespace` argument does. UserError naming `option`, the value and the rule otherwise."""
    namespace = value
    if len(namespace) > 1 and namespace.endswith('/') and not namespace.endswith('//'):
        namespace = namespace[:-1]
    if namespace and not namespace.startswith(('/', '~')):
        namespace = '/' + namespace
    problem = name_problem(namespace or '/', namespace=True)
    if problem:
        raise UserError(f'{option} {value!r} is not a valid ROS 2 namespace: {problem}; '
                        f'{NAME_RULE}')
    return namespace.rstrip('/')


def check_topic_name(value: str, option: str) -> str:
    """`value` if it is a valid ROS 2 topic name (relative and private names included), else a
    UserError naming `option`, the value and the rule."""
    problem = name_problem(value)
    if problem:
        raise UserError(f'{option} {value!r} is not a valid ROS 2 topic name: {problem}; '
                        f'{NAME_RULE}')
    return value


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | int | None = None  # a range for rclpy's descriptor (both bounds or none)
    maximum: float | int | None = None


def _param(default, description: str, choices: tuple[str, ...] = (), minimum=None,
           maximum=None):
    """A NodeConfig field whose metadata holds the rest of its Param."""
    return field(default=default, metadata={'description': description, 'choices': choices,
                                            'minimum': minimum, 'maximum': maximum})


@dataclass(frozen=True)
class NodeConfig:
    weights: str = _param(
        '', 'checkpoint (.pt) written by hybrid-depth train; required (the node refuses to '
        'start without one, unless random_weights)')
    random_weights: bool = _param(
        False, 'with weights empty, run a randomly initialised network instead of refusing to '
        'start: meaningless depth and points, for testing topics and RViz only')
    device: str = _param(
        'auto', 'inference device: auto (CUDA if available, else CPU), cpu, cuda or cuda:N')
    precision: str = _param('fp32', 'autocast precision: fp32, bf16, or fp16 (CUDA only)',
                            choices=('fp32', 'bf16', 'fp16'))
    compile: bool = _param(False, 'torch.compile the networks: a longer start, then faster '
                                  'frames (docs/benchmarks.md)')
    num_threads: int = _param(
        0, 'CPU threads of torch and OpenCV (torch.set_num_threads, cv2.setNumThreads), so that '
        'other nodes on the same CPU keep theirs; 0 = auto: half the cores this process may run '
        'on, at least 1',
        minimum=0, maximum=256)
    image_transport: str = _param(
        'raw', 'raw: subscribe to image (sensor_msgs/Image); compressed: to image/compressed '
        '(JPEG or PNG sensor_msgs/CompressedImage)', choices=('raw', 'compressed'))
    rectify: bool = _param(
        True, 'undistort the image with camera_info k, d, r, p before inference; false when '
        'image is already rectified (image_rect)')
    output_resolution: str = _param(
        'input', 'input: depth at the camera image size; model: at the network input size '
        '(smaller, faster clouds)', choices=('input', 'model'))
    min_depth: float = _param(
        0.1, 'metres; nearer depth is published as NaN; the colour scale starts here',
        minimum=0.001, maximum=1000.0)
    max_depth: float = _param(
        80.0, 'metres; farther depth is published as NaN (depth and points); the colour scale '
        'ends here', minimum=0.01, maximum=10000.0)
    depth_scale: float = _param(
        1.0, 'factor applied to the network depth: 1 for a metric checkpoint (trained with '
        'measured motion); a relative one is up to scale (e.g. the median scale ratio '
        'hybrid-depth evaluate reports)', minimum=0.0001, maximum=10000.0)
    edge_filter: float = _param(
        0.1, 'drop depth and points (NaN) where the network\'s depth jumps by more than this '
        'fraction between neighbouring pixels: the flying pixels between a foreground edge and '
        'the background; 0 = keep them', minimum=0.0, maximum=100.0)
    cloud_stride: int = _param(
        1, 'keep every n-th pixel of every n-th row in depth/points (1 = every pixel)', minimum=1,
        maximum=64)
    publish_points: bool = _param(True, 'publish the point cloud on depth/points')
    colorized: bool = _param(True, 'publish the colour-mapped depth on depth/colorized')
    single_frame: bool = _param(
        False, 'never match against an earlier frame (keyframe), even with a multi-frame '
        'checkpoint')
    max_failures: int = _param(
        50, 'consecutive frames whose inference fails before the node exits with an error, so '
        'that respawn or a supervisor acts; a device error (CUDA) exits at once',
        minimum=1, maximum=100000)
    fallback_fov: float = _param(
        0.0, 'horizontal field of view (degrees) assumed while no valid camera_info arrives; '
        '0 = off (wait for camera_info)', minimum=0.0, maximum=170.0)

    @classmethod
    def from_values(cls, values: dict) -> NodeConfig:
        """Checked config from {name: value}; UserError names the first bad parameter."""
        specs = {param.name: param for param in PARAMETERS}
        for name, value in values.items():
            param = specs.get(name)
            if param is None:
                raise UserError(f'unknown parameter {name!r}')
            if param.choices and value not in param.choices:
                raise UserError(f'parameter {name} must be one of {", ".join(param.choices)}, '
                                f'got {value!r}')
            if param.minimum is not None and not param.minimum <= value <= param.maximum:
                raise UserError(f'parameter {name} must be in [{param.minimum}, '
                                f'{param.maximum}], got {value}')
        config = cls(**values)
        if not re.fullmatch(r'auto|cpu|cuda(:\d+)?', config.device):
            raise UserError(f'parameter device must be auto, cpu, cuda or cuda:N, got '
                            f'{config.device!r}')
        if config.min_depth >= config.max_depth:
            raise UserError(f'parameter min_depth ({config.min_depth}) must be less than '
                            f'max_depth ({config.max_depth})')
        if 0 < config.fallback_fov < 1:
            raise UserError(f'parameter fallback_fov must be 0 (off) or in [1, 170] degrees, '
                            f'got {config.fallback_fov}')
        return config


# The table the node declares its parameters from, derived from NodeConfig's fields.
PARAMETERS = tuple(Param(item.name, item.default, **item.metadata) for item in fields(NodeConfig))


def parameter_file_values(path: Path) -> dict:
    """The ros__parameters of every node section of a ROS 2 parameter file, merged. Read
    before the node starts too: rcl's own parser would fail on a file that is not UTF-8 YAML
    with a message that does not name it."""
    data = read_yaml(path, 'parameter file')
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f'parameter file {path} must map node names to their ros__parameters, '
                        f'got {type(data).__name__}')
    values = {}
    for section in data.values():
        parameters = section.get('ros__parameters') if isinstance(section, dict) else None
        if isinstance(parameters, dict):
            values.update(parameters)
    return values
