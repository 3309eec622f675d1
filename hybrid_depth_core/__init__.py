"""hybrid-depth core: everything that does not need ROS (networks, geometry, data and bag I/O,
the inference runtime, evaluation, training; README's code map). Never imports rclpy or the
ROS package above it.

`build_depth_model` and `build_pose_model` are importable from here; they load torch on first
use, so that tools which do not need it (the bag writer, `hybrid-depth --help`) start fast.
"""

__version__ = '0.1.0'

_LAZY = {'build_depth_model', 'build_pose_model'}


def __getattr__(name: str):
    if name in _LAZY:
        from hybrid_depth_core import networks
        return getattr(networks, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
