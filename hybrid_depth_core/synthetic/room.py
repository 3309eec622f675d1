"""A synthetic indoor walk: a handheld camera looking around a procedural room, with exact
depth and poses; rendered and recorded like the street drive (drive.py, bag_writer.py).

Typical use::

    walk = RoomWalk(RoomWalkConfig(width=320, height=240, frames=100, seed=3))
    for frame in walk:  # Frame(index, stamp_ns, rgb, depth, T_world_cam)
        ...
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.synthetic.drive import (R_BODY_OPTICAL, RenderedSequence,
                                               rotation_zyx)
from hybrid_depth_core.synthetic.room_scene import Room, RoomConfig, generate_room

# The room is closed well within this, so no pixel is sky; a NaN depth would be a bug.
MAX_DEPTH = 20.0
# Peak speed of a minimum-jerk move over distance D in time T is 1.875 D / T.
MIN_JERK_PEAK = 1.875
SWAY_POSITION = 0.004            # metres: a hand is never quite still while it moves
SWAY_ANGLE = np.radians(0.4)


@dataclass(frozen=True)
class RoomWalkConfig:
    """What to render. Defaults give Kinect-like frames: 640x480, 62 degrees wide, 30 Hz."""

    width: int = 640
    height: int = 480
    frames: int = 400
    seed: int = 0
    hfov_deg: float = 62.0          # Kinect v1 / Xtion colour camera (the street's is 81.5)
    # Principal point off the image centre by this fraction of the size, like a real camera.
    principal_offset: tuple[float, float] = (-0.014, 0.017)
    camera_height: tuple[float, float] = (1.0, 1.6)  # metres: held in hand or on a robot
    speed: tuple[float, float] = (0.2, 0.6)          # m/s, peak of each move between two spots
    turn_rate: tuple[float, float] = (30.0, 80.0)    # deg/s, peak of each turn
    stop_frames: tuple[int, int] = (10, 30)          # the camera stands exactly still this long
    stop_interval: tuple[float, float] = (3.0, 7.0)  # seconds of motion between two stops
    frame_rate: float = 30.0        # Hz, for stamps and speeds
    room: RoomConfig = field(default_factory=RoomConfig)

    def __post_init__(self):
        checks = [
            (self.width >= 16 and self.height >= 16, f'width and height must be >= 16 pixels, '
                                                     f'got {self.width}x{self.height}'),
            (self.frames >= 1, f'frames must be >= 1, got {self.frames}'),
            (20.0 <= self.hfov_deg <= 120.0,
             f'hfov_deg must be in [20, 120] degrees, got {self.hfov_deg}'),
            (0.5 <= self.camera_height[0] <= self.camera_height[1]
             <= self.room.height[0] - 0.5,
             f'camera_height must satisfy 0.5 <= low <= high <= the lowest ceiling - 0.5 m '
             f'({self.room.height[0] - 0.5:g}), got {self.camera_height}'),
            (0 < self.speed[0] <= self.speed[1] <= 2.0,
             f'speed must satisfy 0 < low <= high <= 2 m/s, got {self.speed}'),
            (0 < self.turn_rate[0] <= self.turn_rate[1] <= 360.0,
             f'turn_rate must satisfy 0 < low <= high <= 360 deg/s, got {self.turn_rate}'),
            (1 <= self.stop_frames[0] <= self.stop_frames[1],
             f'stop_frames must satisfy 1 <= low <= high, got {self.stop_frames}'),
            (0.5 <= self.stop_interval[0] <= self.stop_interval[1],
             f'stop_interval must satisfy 0.5 <= low <= high seconds, '
             f'got {self.stop_interval}'),
            (self.frame_rate > 0, f'frame_rate must be > 0, got {self.frame_rate}'),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class RoomWalk(RenderedSequence):
    """`config.frames` frames of one room; room and walk are determined by the seed."""

    def __init__(self, config: RoomWalkConfig):
        camera = PinholeCamera.from_fov(config.width, config.height, config.hfov_deg,
                                        config.principal_offset)
        rng = np.random.default_rng(config.seed)
        self.room: Room = generate_room(config.room, rng)
        poses = make_walk(config, self.room, rng)
        super().__init__(config, camera, poses, self.room.scene, MAX_DEPTH)


def make_walk(config: RoomWalkConfig, room: Room, rng: np.random.Generator) -> np.ndarray:
    """(N, 4, 4) camera poses T_world_cam of a camera carried around the room.

    It moves between spots joined by a clear straight line, in any direction relative to where
    it looks (sideways as often as forward), and turns on a schedule of its own: sweeps,
    turning on the spot, looking down and up, holding a view while moving. Every move and turn
    eases in and out (minimum jerk). All of it runs on a clock that halts during stops, which
    makes the camera stand exactly still then, and start and stop smoothly.
    """
    clock = _stop_clock(config, rng)
    span = clock[-1] + 1.0
    moves = _moves(config, room, span, rng)
    position = _ease(*moves, clock)
    yaw, pitch, roll = _ease(*_turns(config, room, moves, span, rng), clock).T
    periods = rng.uniform(0.6, 2.5, size=(6, 2)) * config.frame_rate
    phases = rng.uniform(0, 2 * np.pi, size=(6, 2))
    sway = np.sin(2 * np.pi * clock[:, None, None] / periods + phases).mean(axis=-1)
    position = position + SWAY_POSITION * sway[:, :3]
    poses = np.tile(np.eye(4), (config.frames, 1, 1))
    for i in range(config.frames):
        poses[i, :3, :3] = rotation_zyx(yaw[i] + SWAY_ANGLE * sway[i, 3],
                                        pitch[i] + SWAY_ANGLE * sway[i, 4],
                                        roll[i] + SWAY_ANGLE * sway[i, 5]) @ R_BODY_OPTICAL
        poses[i, :3, 3] = position[i]
    return poses


def _stop_clock(config: RoomWalkConfig, rng: np.random.Generator) -> np.ndarray:
    """(N,) active time of each frame, in frames: it advances by 1 per frame, except that it
    eases to a halt before each stop, stands still through it, and eases back after."""
    frames, fps = config.frames, config.frame_rate
    ramp = max(2, round(0.3 * fps))
    rising = _min_jerk(np.arange(1, ramp + 1) / (ramp + 1))
    rate = np.ones(frames)
    stop = max(ramp, round(rng.uniform(0.4, 1.0) * rng.uniform(*config.stop_interval) * fps))
    while True:
        length = int(rng.integers(config.stop_frames[0], config.stop_frames[1] + 1))
        if stop + length > frames:  # no stop cut short by the end
            break
        rate[stop - ramp:stop] = rising[::-1]
        rate[stop:stop + length] = 0.0
        after = rate[stop + length:stop + length + ramp]
        after[:] = rising[:len(after)]
        stop += length + ramp + round(rng.uniform(*config.stop_interval) * fps)
    return np.concatenate([[0.0], np.cumsum(rate[:-1])])


def _moves(config: RoomWalkConfig, room: Room, span: float, rng: np.random.Generator):
    """Keyframes (times (K,) in active frames, positions (K, 3)) of walks from spot to spot,
    with lingering in between (where the camera turns on the spot)."""
    fps = config.frame_rate
    xy = room.walkable[rng.integers(len(room.walkable))]
    z = rng.uniform(*config.camera_height)
    times, values = [0.0], [(xy[0], xy[1], z)]
    while times[-1] < span:
        target = (_reachable(room, xy, config.room.clearance, rng) if rng.random() < 0.7
                  else None)
        if target is None:
            target, new_z = xy, np.clip(z + rng.uniform(-0.1, 0.1), *config.camera_height)
            duration = rng.uniform(0.8, 2.5)
        else:
            new_z = np.clip(z + rng.uniform(-0.25, 0.25), *config.camera_height)
            distance = np.linalg.norm([*(target - xy), new_z - z])
            duration = max(MIN_JERK_PEAK * distance / rng.uniform(*config.speed), 0.8)
        times.append(times[-1] + duration * fps)
        values.append((target[0], target[1], new_z))
        xy, z = target, new_z
    return np.array(times), np.array(values)


def _reachable(room: Room, xy: np.ndarray, clearance: float, rng: np.random.Generator):
    """A walkable spot 0.4-3.5 m away with `clearance` all along the straight line to it (the
    margin covers the sway and the 4 cm between checked points), or None."""
    for _ in range(30):
        target = room.walkable[rng.integers(len(room.walkable))]
        distance = np.linalg.norm(target - xy)
        if not 0.4 <= distance <= 3.5:
            continue
        steps = np.linspace(0.0, 1.0, int(distance / 0.04) + 2)[:, None]
        if room.clearance(xy + steps * (target - xy)).min() >= clearance + 0.03:
            return target
    return None


def _turns(config: RoomWalkConfig, room: Room, moves, span: float,
           rng: np.random.Generator):
    """Keyframes (times (K,) in active frames, (yaw, pitch, roll) (K, 3) radians; pitch > 0
    looks down) of turns: big sweeps, smaller glances, views held still. A turn that would face
    a wall or a cupboard close by is drawn again (twice at most): people look into the room."""
    fps = config.frame_rate
    for _ in range(3):
        yaw = rng.uniform(-np.pi, np.pi)
        if _open_view(room, moves[1][0, :2], yaw) > 1.5:
            break
    pitch, roll = np.radians(rng.uniform(0, 15)), 0.0
    times, values = [0.0], [(yaw, pitch, roll)]
    while times[-1] < span:
        kind = rng.random()
        if kind < 0.2:  # hold the view: the camera may still be moving
            times.append(times[-1] + rng.uniform(0.5, 1.5) * fps)
            values.append((yaw, pitch, roll))
            continue
        xy = _ease(*moves, np.array([times[-1] + fps]))[0, :2]  # about where the turn ends
        for _ in range(3):
            turn = (rng.uniform(60, 160) if kind < 0.45 else rng.uniform(15, 60)
                    if kind < 0.85 else rng.uniform(0, 15))
            new_yaw = yaw + np.radians(turn) * rng.choice([-1.0, 1.0])
            if _open_view(room, xy, new_yaw) > 1.5:
                break
        new = (new_yaw, np.radians(rng.uniform(-10, 25)), np.radians(rng.uniform(-5, 5)))
        angle = max(abs(a - b) for a, b in zip(new, (yaw, pitch, roll)))
        duration = max(MIN_JERK_PEAK * angle / np.radians(rng.uniform(*config.turn_rate)),
                       rng.uniform(0.4, 1.5))
        times.append(times[-1] + duration * fps)
        values.append(new)
        yaw, pitch, roll = new
    return np.array(times), np.array(values)


def _open_view(room: Room, xy: np.ndarray, yaw: float, far: float = 4.0) -> float:
    """How far one sees horizontally from xy along yaw before the walls or a footprint of
    furniture, up to `far` metres (sphere tracing: each step is the clearance there)."""
    direction = np.array([np.cos(yaw), np.sin(yaw)])
    travelled = 0.0
    for _ in range(32):
        step = room.clearance((xy + travelled * direction)[None])[0]
        if step < 0.05 or travelled >= far:
            break
        travelled += step
    return min(travelled, far)


def _min_jerk(s: np.ndarray) -> np.ndarray:
    """0 -> 1 over s in [0, 1] with zero velocity and acceleration at both ends."""
    return s ** 3 * (10 - 15 * s + 6 * s ** 2)


def _ease(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(len(t), D): from keyframe to keyframe with minimum-jerk easing, at times t."""
    k = np.clip(np.searchsorted(times, t, side='right') - 1, 0, len(times) - 2)
    s = np.clip((t - times[k]) / (times[k + 1] - times[k]), 0.0, 1.0)
    return values[k] + (values[k + 1] - values[k]) * _min_jerk(s)[:, None]
