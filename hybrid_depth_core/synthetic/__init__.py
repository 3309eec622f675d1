"""Procedural worlds rendered with exact depth and camera poses: a street seen from a car
(SyntheticDrive) and a room seen by a handheld camera (RoomWalk).

Typical use::

    drive = SyntheticDrive(DriveConfig(width=640, height=192, frames=50, seed=3))
    for frame in drive:  # Frame(index, stamp_ns, rgb, depth, T_world_cam)
        ...
"""
from hybrid_depth_core.synthetic.drive import (DriveConfig, Frame, RenderedSequence,
                                               SyntheticDrive)
from hybrid_depth_core.synthetic.room import RoomWalk, RoomWalkConfig
from hybrid_depth_core.synthetic.room_scene import RoomConfig
from hybrid_depth_core.synthetic.scene import SceneConfig

__all__ = ['DriveConfig', 'Frame', 'RenderedSequence', 'RoomConfig', 'RoomWalk',
           'RoomWalkConfig', 'SceneConfig', 'SyntheticDrive']
