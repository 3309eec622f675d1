"""Procedural street scenes rendered with exact depth and camera poses.

Typical use::

    drive = SyntheticDrive(DriveConfig(width=640, height=192, frames=50, seed=3))
    for frame in drive:  # Frame(index, stamp_ns, rgb, depth, T_world_cam)
        ...
"""
from hybrid_depth_core.data.synthetic.drive import DriveConfig, Frame, SyntheticDrive
from hybrid_depth_core.data.synthetic.scene import SceneConfig

__all__ = ['DriveConfig', 'Frame', 'SceneConfig', 'SyntheticDrive']
