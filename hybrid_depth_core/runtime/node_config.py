"""The node's parameters: NodeConfig's fields carry each one's default, range and description;
PARAMETERS, the table derived from them, is what the node declares from, and
config/depth_node.yaml and the README's table repeat it (tests compare all three). No ROS
imports, so it is tested without ROS."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from hybrid_depth_core.errors import UserError

NODE_NAME = 'hybrid_depth'
# Topic names, relative to the node's namespace (remap them).
IMAGE_TOPIC, CAMERA_INFO_TOPIC = 'image', 'camera_info'  # in; compressed: IMAGE_TOPIC/compressed
# Out: siblings under depth/, so that tools which find an image's calibration as its sibling
# camera_info (image_transport's rule: depth_image_proc, RViz, image_geometry) pair depth/image
# with depth/camera_info, not with the input camera's camera_info.
DEPTH_TOPIC, DEPTH_INFO_TOPIC = 'depth/image', 'depth/camera_info'
COLORIZED_TOPIC, POINTS_TOPIC = 'depth/colorized', 'depth/points'  # optional
RANDOM_INPUT_SIZE = (640, 192)  # network input of the random-init model (weights empty)


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
