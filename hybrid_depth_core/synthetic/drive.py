"""A synthetic drive: a camera moving down a procedural street, with exact depth and poses."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.synthetic import raycast, textures
from hybrid_depth_core.synthetic.scene import Scene, SceneConfig, generate_scene

# Optical frame (z forward, x right, y down) -> vehicle body frame (x forward, y left, z up).
R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0],
                           [-1.0, 0.0, 0.0],
                           [0.0, -1.0, 0.0]])
# First frame's stamp: fixed, so that the same seed gives byte-identical output.
START_STAMP_NS = 1_700_000_000 * 10**9


@dataclass(frozen=True)
class DriveConfig:
    """What to render. Defaults give KITTI-like frames: 640x192, 10 Hz, camera 1.65 m high."""

    width: int = 640
    height: int = 192
    frames: int = 50
    seed: int = 0
    hfov_deg: float = 81.5          # KITTI colour camera after Monodepth2's crop (fx = 0.58 W)
    # Principal point off the image centre by this fraction of the size, like a real camera.
    principal_offset: tuple[float, float] = (0.012, -0.025)
    camera_height: float = 1.65     # metres above the road (KITTI); poles are taller than 3.5 m
    speed: tuple[float, float] = (0.5, 1.5)  # metres per frame
    lateral_amplitude: float = 0.8  # metres of weaving in the lane; gives a few degrees of yaw
    max_depth: float = 200.0        # nothing is rendered farther: beyond is sky (NaN depth)
    frame_rate: float = 10.0        # Hz, for stamps
    scene: SceneConfig = field(default_factory=SceneConfig)

    def __post_init__(self):
        checks = [
            (self.width >= 16 and self.height >= 16, f'width and height must be >= 16 pixels, '
                                                     f'got {self.width}x{self.height}'),
            (self.frames >= 1, f'frames must be >= 1, got {self.frames}'),
            (0.3 <= self.camera_height <= 3.3,
             f'camera_height must be in [0.3, 3.3] m, got {self.camera_height}'),
            (0 < self.speed[0] <= self.speed[1] <= 5.0,
             f'speed must satisfy 0 < low <= high <= 5 m/frame, got {self.speed}'),
            (0 <= self.lateral_amplitude <= 2.0,
             f'lateral_amplitude must be in [0, 2] m, got {self.lateral_amplitude}'),
            (self.max_depth > 1.0, f'max_depth must be > 1 m, got {self.max_depth}'),
            (self.frame_rate > 0, f'frame_rate must be > 0, got {self.frame_rate}'),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass(frozen=True)
class Frame:
    index: int
    stamp_ns: int
    rgb: np.ndarray          # (H, W, 3) uint8
    depth: np.ndarray        # (H, W) float32 metres along the optical axis, NaN where sky
    T_world_cam: np.ndarray  # (4, 4) float64 pose of the camera optical frame in the world


class RenderedSequence:
    """Frames of a static scene seen from a sequence of camera poses, rendered on demand: what
    write_drive_bag records. `config` must have `frame_rate` (Hz, for the stamps)."""

    def __init__(self, config, camera: PinholeCamera, poses: np.ndarray, scene: Scene,
                 max_depth: float):
        self.config = config
        self.camera = camera
        self.poses = poses          # (N, 4, 4) T_world_cam
        self.scene = scene
        self.max_depth = max_depth  # nothing farther is rendered: beyond is sky (NaN depth)
        self._camera_rays = camera.pixel_rays()

    def __len__(self) -> int:
        return len(self.poses)

    def stamp_ns(self, index: int) -> int:
        return START_STAMP_NS + round(index * 1e9 / self.config.frame_rate)

    def render(self, index: int) -> Frame:
        if not 0 <= index < len(self):
            raise IndexError(f'frame {index} out of range for a sequence of {len(self)} frames')
        pose = self.poses[index]
        dirs = raycast.world_rays(self._camera_rays, pose)
        hits = raycast.cast(self.scene, self.camera, pose, dirs, self.max_depth)
        rgb = textures.shade(self.scene, hits, pose[:3, 3], dirs, self.camera.fx)
        depth = np.where(np.isfinite(hits.depth), hits.depth, np.nan).astype(np.float32)
        return Frame(index=index, stamp_ns=self.stamp_ns(index),
                     rgb=np.round(rgb * 255).astype(np.uint8), depth=depth,
                     T_world_cam=pose.copy())

    def __iter__(self):
        return (self.render(i) for i in range(len(self)))


class SyntheticDrive(RenderedSequence):
    """`config.frames` frames of one street; scene and trajectory are determined by the seed."""

    def __init__(self, config: DriveConfig):
        camera = PinholeCamera.from_fov(config.width, config.height, config.hfov_deg,
                                        config.principal_offset)
        rng = np.random.default_rng(config.seed)
        poses = make_trajectory(config, rng)
        scene = generate_scene(config.scene, poses[0, 0, 3], poses[-1, 0, 3], rng)
        super().__init__(config, camera, poses, scene, config.max_depth)


def make_trajectory(config: DriveConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, 4, 4) camera poses T_world_cam: forward along +x with smoothly varying speed, weaving
    gently within the lane (heading follows the path), with slight pitch, roll and bounce."""
    n = np.arange(config.frames)
    low, high = config.speed
    speed = (low + high) / 2 + 0.9 * (high - low) / 2 * np.sin(
        2 * np.pi * n / rng.uniform(40, 120) + rng.uniform(0, 2 * np.pi))
    x = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    wavelength, phase = rng.uniform(60, 140), rng.uniform(0, 2 * np.pi)
    y = config.lateral_amplitude * np.sin(2 * np.pi * x / wavelength + phase)
    yaw = np.arctan(config.lateral_amplitude * 2 * np.pi / wavelength
                    * np.cos(2 * np.pi * x / wavelength + phase))
    wobble = [np.sin(2 * np.pi * n / rng.uniform(15, 40) + rng.uniform(0, 2 * np.pi))
              for _ in range(3)]
    pitch = np.radians(0.6) * wobble[0]
    roll = np.radians(0.4) * wobble[1]
    z = config.camera_height + 0.02 * wobble[2]

    poses = np.tile(np.eye(4), (config.frames, 1, 1))
    for i in range(config.frames):
        poses[i, :3, :3] = rotation_zyx(yaw[i], pitch[i], roll[i]) @ R_BODY_OPTICAL
        poses[i, :3, 3] = (x[i], y[i], z[i])
    return poses


def rotation_zyx(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Body-to-world rotation Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cz, sz, cy, sy, cx, sx = (np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch),
                              np.cos(roll), np.sin(roll))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ ry @ rx
