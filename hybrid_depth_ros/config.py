"""The node's parameters: one table (name, default, range, description) that the node declares
from, config/depth_node.yaml and the README's table repeat (tests compare all three), and the
typed config they are read into once at start. No ROS imports, so it is tested without ROS."""
from __future__ import annotations

import re

from dataclasses import dataclass

from hybrid_depth_core.errors import UserError

NODE_NAME = 'hybrid_depth'
# Topic names, relative to the node's namespace (remap them).
IMAGE_TOPIC, CAMERA_INFO_TOPIC = 'image', 'camera_info'  # in; compressed: IMAGE_TOPIC/compressed
DEPTH_TOPIC, DEPTH_INFO_TOPIC = 'depth', 'depth/camera_info'  # out
COLORIZED_TOPIC, POINTS_TOPIC = 'depth/colorized', 'points'  # out, optional
RANDOM_INPUT_SIZE = (640, 192)  # network input of the random-init model (weights empty)


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | int | None = None  # a range for rclpy's descriptor (both bounds or none)
    maximum: float | int | None = None


PARAMETERS = (
    Param('weights', '', 'checkpoint (.pt) written by hybrid-depth train; empty = a randomly '
          'initialised network, for testing the plumbing only'),
    Param('device', 'auto', 'inference device: auto (CUDA if available, else CPU), cpu, cuda or '
          'cuda:N'),
    Param('precision', 'fp32', 'autocast precision: fp32, bf16, or fp16 (CUDA only)',
          choices=('fp32', 'bf16', 'fp16')),
    Param('compile', False, 'torch.compile the networks: about a minute longer at start, '
          'then up to 1.35x faster frames on a CPU'),
    Param('image_transport', 'raw', 'raw: subscribe to image (sensor_msgs/Image); compressed: '
          'to image/compressed (JPEG or PNG sensor_msgs/CompressedImage)',
          choices=('raw', 'compressed')),
    Param('rectify', True, 'undistort the image with camera_info k, d, r, p before inference; '
          'false when image is already rectified (image_rect)'),
    Param('output_resolution', 'input', 'input: depth at the camera image size; model: at the '
          'network input size (smaller, faster clouds)', choices=('input', 'model')),
    Param('min_depth', 0.1, 'metres; nearer depth is published as NaN; the colour scale starts '
          'here', minimum=0.001, maximum=1000.0),
    Param('max_depth', 80.0, 'metres; farther depth is published as NaN (depth and points); the '
          'colour scale ends here', minimum=0.01, maximum=10000.0),
    Param('depth_scale', 1.0, 'factor applied to the network depth: 1 for a metric checkpoint '
          '(trained with measured motion); a relative one is up to scale (e.g. the median '
          'scale ratio hybrid-depth evaluate reports)',
          minimum=0.0001, maximum=10000.0),
    Param('cloud_stride', 1, 'keep every n-th pixel of every n-th row in points (1 = every '
          'pixel)', minimum=1, maximum=64),
    Param('publish_points', True, 'publish the point cloud on points'),
    Param('colorized', True, 'publish the colour-mapped depth on depth/colorized'),
    Param('output_reliability', 'reliable', 'QoS reliability of every output: reliable (RViz '
          'default) or best_effort', choices=('reliable', 'best_effort')),
    Param('single_frame', False, 'never match against an earlier frame (keyframe), even with a '
          'multi-frame checkpoint'),
    Param('fallback_fov', 0.0, 'horizontal field of view (degrees) assumed while no valid '
          'camera_info arrives; 0 = off (wait for camera_info)', minimum=0.0, maximum=170.0),
)


@dataclass(frozen=True)
class NodeConfig:
    weights: str = ''
    device: str = 'auto'
    precision: str = 'fp32'
    compile: bool = False
    image_transport: str = 'raw'
    rectify: bool = True
    output_resolution: str = 'input'
    min_depth: float = 0.1
    max_depth: float = 80.0
    depth_scale: float = 1.0
    cloud_stride: int = 1
    publish_points: bool = True
    colorized: bool = True
    output_reliability: str = 'reliable'
    single_frame: bool = False
    fallback_fov: float = 0.0

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
