"""Two views of a scene with known poses: where a frame's pixels land in another frame at a given
depth, and the angle at which two views see a point. What the dense-hint matchers
(sweep_stereo.py, flow_stereo.py) choose their source frames and grade their depths by."""
from __future__ import annotations

import numpy as np


def project(K, T, rays, inverse_depth, size):
    """Pixels `rays` (3, M) of a frame put at `inverse_depth`, in a frame T (T_other_this) away
    -> where they land (2, M), where they would land at infinite depth (2, M), and which land
    inside the other frame (M,)."""
    R, t = T[:3, :3], T[:3, 3:]
    near = K @ (R @ rays + inverse_depth * t)
    far = K @ (R @ rays)
    moved, turned = near[:2] / near[2:], far[:2] / far[2:]
    inside = ((near[2] > 0) & (moved[0] >= 0) & (moved[0] <= size[0] - 1) & (moved[1] >= 0)
              & (moved[1] <= size[1] - 1))
    return moved, turned, inside


def parallax(poses: np.ndarray, K: np.ndarray, index: int, other: int, depth: float,
             size: tuple[int, int], overlap: float) -> float | None:
    """How far frame `other`'s motion from frame `index` (poses T_world_camera) moves a 9 x 9
    grid of frame `index`'s pixels put at `depth` beyond where a pure turn would (the median,
    pixels of a frame of `size`, width and height, intrinsics K), or None where fewer than
    `overlap` of them land inside frame `other` or either pose is unknown."""
    if not (np.isfinite(poses[index]).all() and np.isfinite(poses[other]).all()):
        return None
    width, height = size
    u, v = np.meshgrid(np.linspace(0.05, 0.95, 9) * width, np.linspace(0.05, 0.95, 9) * height)
    rays = np.linalg.inv(K) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    moved, turned, inside = project(K, np.linalg.inv(poses[other]) @ poses[index], rays,
                                    1.0 / depth, size)
    if inside.mean() < overlap:
        return None
    return float(np.median(np.linalg.norm(moved - turned, axis=0)[inside]))


def widest_angles(K, u, v, z, poses, index, chosen) -> np.ndarray:
    """The widest angle (degrees) at each point (pixels u, v of frame `index` at depth z)
    between the rays from frame `index` and from the `chosen` frames' centres (poses
    T_world_camera)."""
    if not len(z):
        return np.zeros(0, np.float32)
    points = (np.linalg.inv(K) @ np.stack([u, v, np.ones_like(u)]).astype(np.float64)) * z
    world = poses[index][:3, :3] @ points + poses[index][:3, 3:]
    rays = world - poses[index][:3, 3:]
    rays /= np.linalg.norm(rays, axis=0, keepdims=True)
    widest = np.zeros(len(z))
    for other in chosen:
        to = world - poses[other][:3, 3:]
        to /= np.linalg.norm(to, axis=0, keepdims=True)
        widest = np.maximum(widest, np.degrees(np.arccos(np.clip((rays * to).sum(0), -1, 1))))
    return widest.astype(np.float32)
