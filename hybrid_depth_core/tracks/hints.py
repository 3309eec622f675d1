"""Depth hints from a recording's own geometry: corners tracked through a window of frames and
triangulated with the camera's measured motion, kept only where well conditioned (Depth Hints,
Watson et al. 2019; SfM-supervised depth, Klodt and Vedaldi 2018).

A track starts at a corner of a start frame (Shi-Tomasi) and follows it frame to frame with
pyramidal Lucas-Kanade, kept while tracking back lands within TRACK_CHECK_PX of where it
started. Its 3D point is the linear (DLT) triangulation over every frame that saw it, with the
camera poses T_world_camera; it becomes a hint in each of those frames only if it was seen in at
least MIN_VIEWS frames, lies in front of every camera, reprojects within MAX_REPROJECTION_PX in
every one of them, and its widest pair of rays meets at MIN_ANGLE_DEG or more (below that, depth
along the ray is hardly constrained).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TRACK_CHECK_PX = 0.5
MIN_VIEWS = 3
MAX_REPROJECTION_PX = 1.0
MIN_ANGLE_DEG = 1.0
CORNERS = 300
_LK = dict(winSize=(15, 15), maxLevel=3,
           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))


@dataclass
class Hints:
    """Sparse depth per frame: `pixels[i]` (M_i, 2) u, v and `depths[i]` (M_i,) metres (up to
    the poses' scale), `angles[i]` (M_i,) degrees: the triangulation angle of each."""

    pixels: list[np.ndarray]
    depths: list[np.ndarray]
    angles: list[np.ndarray]

    def report(self) -> str:
        counts = np.array([len(d) for d in self.depths])
        angles = np.concatenate(self.angles) if counts.sum() else np.zeros(0)
        median_angle = f'{np.median(angles):.1f}' if len(angles) else '-'
        return (f'hints: median {np.median(counts):.0f} per image, triangulation angle median '
                f'{median_angle} deg, {int((counts == 0).sum())} of {len(counts)} images '
                f'without any')


def track(frames: list[np.ndarray], start: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Corners of grey frame `start` followed through the next `window - 1` frames ->
    (T, window, 2) positions and (T, window) whether seen (a track ends where it is lost)."""
    end = min(len(frames), start + window)
    corners = cv2.goodFeaturesToTrack(frames[start], CORNERS, 0.01, 7)
    if corners is None:
        return np.zeros((0, window, 2), np.float32), np.zeros((0, window), bool)
    points = np.full((len(corners), window, 2), np.nan, np.float32)
    seen = np.zeros((len(corners), window), bool)
    points[:, 0], seen[:, 0] = corners[:, 0], True
    alive = np.ones(len(corners), bool)
    for step in range(1, end - start):
        if not alive.any():
            break
        moved, good = follow(frames[start + step - 1], frames[start + step],
                             points[alive, step - 1], _LK, TRACK_CHECK_PX)
        index = np.flatnonzero(alive)
        points[index[good], step] = moved[good]
        seen[index[good], step] = True
        alive[index[~good]] = False
    return points, seen


def follow(previous: np.ndarray, current: np.ndarray, points: np.ndarray, window: dict,
           check_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) of grey image `previous` followed into `current` by pyramidal
    Lucas-Kanade with `window` (calcOpticalFlowPyrLK's options) -> (N, 2) positions and (N,)
    whether each is kept: found both ways, and tracking back lands within `check_px` of where
    it started."""
    start = np.asarray(points, np.float32).reshape(-1, 1, 2)
    moved, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, start, None, **window)
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, moved, None, **window)
    good = ((found[:, 0] == 1) & (found_back[:, 0] == 1)
            & (np.linalg.norm((back - start)[:, 0], axis=1) < check_px))
    return moved[:, 0], good


def triangulate(points: np.ndarray, seen: np.ndarray, K: np.ndarray,
                poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tracks (T, V, 2) seen (T, V) in V frames of intrinsics K with poses T_world_camera
    (V, 4, 4) -> world points (T, 3), whether each is a good hint (MIN_VIEWS, in front,
    MAX_REPROJECTION_PX everywhere, MIN_ANGLE_DEG) and its widest ray angle (T,) degrees."""
    world_to_camera = np.linalg.inv(poses)
    projections = K @ world_to_camera[:, :3, :]  # (V, 3, 4)
    centres = poses[:, :3, 3]
    X = np.full((len(points), 3), np.nan)
    good = np.zeros(len(points), bool)
    angles = np.zeros(len(points))
    for t in np.flatnonzero(seen.sum(1) >= MIN_VIEWS):
        views = np.flatnonzero(seen[t])
        rows = []
        for v in views:
            u, w = points[t, v]
            rows += [u * projections[v, 2] - projections[v, 0],
                     w * projections[v, 2] - projections[v, 1]]
        _, _, vt = np.linalg.svd(np.asarray(rows))
        if abs(vt[-1, 3]) < 1e-12:
            continue
        X[t] = vt[-1, :3] / vt[-1, 3]
        projected = projections[views] @ np.append(X[t], 1.0)  # (n, 3)
        if (projected[:, 2] <= 0).any():
            continue
        error = np.linalg.norm(projected[:, :2] / projected[:, 2:] - points[t, views], axis=1)
        rays = X[t] - centres[views]
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        angles[t] = np.degrees(np.arccos(np.clip((rays @ rays.T).min(), -1, 1)))
        good[t] = error.max() < MAX_REPROJECTION_PX and angles[t] >= MIN_ANGLE_DEG
    return X, good, angles


def recording_hints(rgb: np.ndarray, K: np.ndarray, poses: np.ndarray, window: int,
                    every: int | None = None) -> Hints:
    """Hints for every frame of a recording: frames (N, H, W, 3) uint8 with intrinsics K
    (N, 3, 3) and poses T_world_camera (N, 4, 4), NaN where unknown; tracks start every
    `every` frames (default window // 2) and run `window` frames. A point tracked from two
    start frames is a hint twice."""
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in rgb]
    every = every or max(1, window // 2)
    found: list[list] = [[] for _ in grey]
    for start in range(0, max(1, len(grey) - MIN_VIEWS + 1), every):
        points, seen = track(grey, start, window)
        frame_poses = poses[start:start + points.shape[1]]
        views = len(frame_poses)
        known = np.isfinite(frame_poses).all(axis=(1, 2))
        if known.sum() < MIN_VIEWS:
            continue
        seen = seen[:, :views] & known[None, :]
        frame_poses = np.where(known[:, None, None], frame_poses, np.eye(4))
        X, good, angles = triangulate(points[:, :views], seen, K[start], frame_poses)
        to_camera = np.linalg.inv(frame_poses)
        for t in np.flatnonzero(good):
            for v in np.flatnonzero(seen[t]):
                depth = (to_camera[v] @ np.append(X[t], 1.0))[2]
                found[start + v].append((*points[t, v], depth, angles[t]))
    as_array = [np.asarray(f, np.float64).reshape(-1, 4) for f in found]
    return Hints([a[:, :2] for a in as_array], [a[:, 2] for a in as_array],
                 [a[:, 3] for a in as_array])
