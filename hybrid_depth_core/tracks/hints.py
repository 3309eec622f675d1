"""Depth hints from a recording's own geometry: corners tracked through a window of frames and
triangulated with the camera's measured motion (metres) or with the window's own geometry from
its tracks (up to scale), kept only where well conditioned (Depth Hints, Watson et al. 2019;
SfM-supervised depth, Klodt and Vedaldi 2018).

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
from tqdm import tqdm

TRACK_CHECK_PX = 0.5
MIN_VIEWS = 3
MAX_REPROJECTION_PX = 1.0
MIN_ANGLE_DEG = 1.0
CORNERS = 300
MIN_SHARED = 20  # tracks two frames share for their relative pose from images alone
_LK = dict(winSize=(15, 15), maxLevel=3,
           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))


def hint_settings() -> list:
    """What the hints depend on besides the frames (for caches)."""
    return [TRACK_CHECK_PX, MIN_VIEWS, MAX_REPROJECTION_PX, MIN_ANGLE_DEG, CORNERS, MIN_SHARED,
            repr(_LK)]


@dataclass
class Hints:
    """Sparse depth per frame: `pixels[i]` (M_i, 2) u, v and `depths[i]` (M_i,) metres (up to
    the poses' scale), `angles[i]` (M_i,) degrees: the triangulation angle of each."""

    pixels: list[np.ndarray]
    depths: list[np.ndarray]
    angles: list[np.ndarray]
    metric: bool = True  # False: each window's hints have a scale of their own
    size: tuple[int, int] = (0, 0)  # width, height of the frames the pixels are in

    def arrays(self) -> dict:
        """Flat arrays (for np.savez); `from_arrays` reads them back."""
        return {'frame': np.concatenate([np.full(len(d), i) for i, d in enumerate(self.depths)]),
                'pixels': np.concatenate(self.pixels), 'depths': np.concatenate(self.depths),
                'angles': np.concatenate(self.angles), 'metric': self.metric,
                'size': np.array(self.size)}

    @classmethod
    def from_arrays(cls, arrays: dict, frames: int) -> Hints:
        bounds = np.searchsorted(arrays['frame'], np.arange(frames + 1))  # frames in order
        return cls(*([arrays[name][a:b] for a, b in zip(bounds, bounds[1:])]
                     for name in ('pixels', 'depths', 'angles')),
                   bool(arrays['metric']), tuple(int(n) for n in arrays['size']))

    def joined(self, other: Hints) -> Hints:
        """These hints and `other`'s, of the same frames and kind, as one set in this one's
        pixels (of the nearer of two in one pixel, hint_map keeps the nearer)."""
        scale = np.array(self.size, np.float64) / np.array(other.size, np.float64)
        return Hints([np.concatenate([a, resized_pixels(b, scale)])
                      for a, b in zip(self.pixels, other.pixels)],
                     [np.concatenate([a, b]) for a, b in zip(self.depths, other.depths)],
                     [np.concatenate([a, b]) for a, b in zip(self.angles, other.angles)],
                     self.metric, self.size)

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
        lengths = np.linalg.norm(rays, axis=1, keepdims=True)
        if (lengths == 0).any():  # at a camera's centre: seen from nowhere
            continue
        rays /= lengths
        angles[t] = np.degrees(np.arccos(np.clip((rays @ rays.T).min(), -1, 1)))
        good[t] = error.max() < MAX_REPROJECTION_PX and angles[t] >= MIN_ANGLE_DEG
    return X, good, angles


def relative_poses(points: np.ndarray, seen: np.ndarray, K: np.ndarray) -> np.ndarray | None:
    """The window's camera poses from its tracks alone, T_world_camera (V, 4, 4) with the first
    frame as the world and the distance from it to the farthest frame that still shares
    MIN_SHARED tracks as the unit: the essential matrix of those two frames, their tracks
    triangulated, and every other frame placed on those points (PnP). None where the tracks
    cannot fix them; a frame that cannot be placed has NaN."""
    views = seen.shape[1]
    shared = [int((seen[:, 0] & seen[:, v]).sum()) for v in range(views)]
    far = max((v for v in range(1, views) if shared[v] >= MIN_SHARED), default=None)
    if far is None:
        return None
    both = seen[:, 0] & seen[:, far]
    first, last = points[both, 0].astype(np.float64), points[both, far].astype(np.float64)
    E, inliers = cv2.findEssentialMat(first, last, K, cv2.RANSAC, 0.999, 0.5)
    if E is None or E.shape != (3, 3):
        return None
    _, R, t, kept = cv2.recoverPose(E, first, last, K, mask=inliers)
    kept = kept[:, 0] > 0
    if kept.sum() < MIN_SHARED // 2:
        return None
    poses = np.full((views, 4, 4), np.nan)
    poses[0] = np.eye(4)
    poses[far] = np.linalg.inv(_transform(R, t[:, 0]))
    tracks = np.flatnonzero(both)[kept]
    X = np.full((len(points), 3), np.nan)
    X[tracks] = linear_points(points[tracks][:, [0, far]], K, poses[[0, far]])
    for v in range(1, views):
        use = np.isfinite(X).all(1) & seen[:, v]
        if v == far or use.sum() < MIN_SHARED // 2:
            continue
        found, rvec, tvec, _ = cv2.solvePnPRansac(X[use], points[use, v].astype(np.float64),
                                                  K, None, reprojectionError=MAX_REPROJECTION_PX)
        if found:
            poses[v] = np.linalg.inv(_transform(cv2.Rodrigues(rvec)[0], tvec[:, 0]))
    return poses


def _transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def linear_points(points: np.ndarray, K: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """(T, V, 2) pixels seen in all V views with poses T_world_camera -> (T, 3) DLT points."""
    projections = K @ np.linalg.inv(poses)[:, :3, :]
    rows = np.concatenate([points[:, v, :1] * projections[v, 2] - projections[v, 0][None]
                           for v in range(len(poses))] +
                          [points[:, v, 1:] * projections[v, 2] - projections[v, 1][None]
                           for v in range(len(poses))], axis=0)
    rows = rows.reshape(2 * len(poses), len(points), 4).transpose(1, 0, 2)
    _, _, vt = np.linalg.svd(rows)
    return vt[:, -1, :3] / vt[:, -1, 3:]


def recording_hints(rgb: np.ndarray, K: np.ndarray, poses: np.ndarray | None, window: int,
                    every: int | None = None, progress: str | None = None) -> Hints:
    """Hints for every frame of a recording: frames (N, H, W, 3) uint8 with intrinsics K
    (N, 3, 3), triangulated with the measured poses T_world_camera `poses` (N, 4, 4; NaN where
    unknown: metres) or, for None, with each window's geometry from its own tracks
    (`relative_poses`: each window up to a scale of its own, Hints.metric False). Tracks start
    every `every` frames and run `window` frames; by default windows overlap by half with
    measured poses (more hints), and do not overlap without (each frame's hints then share one
    window's scale). `progress`: a progress bar with that description."""
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in rgb]
    every = every or (window if poses is None else max(1, window // 2))
    found: list[list] = [[] for _ in grey]
    starts = range(0, max(1, len(grey) - MIN_VIEWS + 1), every)
    for start in tqdm(starts, desc=progress, unit='window', disable=progress is None):
        points, seen = track(grey, start, window)
        views = min(window, len(grey) - start)
        points, seen = points[:, :views], seen[:, :views]
        if poses is not None:
            frame_poses = poses[start:start + views]
        else:
            frame_poses = relative_poses(points, seen, K[start])
            if frame_poses is None:
                continue
        known = np.isfinite(frame_poses).all(axis=(1, 2))
        if known.sum() < MIN_VIEWS:
            continue
        seen = seen & known[None, :]
        frame_poses = np.where(known[:, None, None], frame_poses, np.eye(4))
        X, good, angles = triangulate(points, seen, K[start], frame_poses)
        to_camera = np.linalg.inv(frame_poses)
        for t in np.flatnonzero(good):
            for v in np.flatnonzero(seen[t]):
                depth = (to_camera[v] @ np.append(X[t], 1.0))[2]
                found[start + v].append((*points[t, v], depth, angles[t]))
    as_array = [np.asarray(f, np.float64).reshape(-1, 4) for f in found]
    return Hints([a[:, :2] for a in as_array], [a[:, 2] for a in as_array],
                 [a[:, 3] for a in as_array], metric=poses is not None,
                 size=(rgb.shape[2], rgb.shape[1]))


def resized_pixels(pixels: np.ndarray, scale) -> np.ndarray:
    """Pixels (M, 2) u, v of an image, where they are in the image resized by `scale` (x, y):
    pixel centres at integers, as geometry.scale_intrinsics has them."""
    return (np.asarray(pixels, np.float64) + 0.5) * np.asarray(scale, np.float64) - 0.5


def hint_map(pixels: np.ndarray, depths: np.ndarray, scale: tuple[float, float], width: int,
             height: int) -> np.ndarray:
    """One frame's hints as a (height, width) float32 depth map, NaN where there is none:
    `pixels` (M, 2) were measured on frames of another size, width x height being `scale`
    (x, y) times theirs (resizing an image moves its pixels, not its depths). Of two hints in
    one pixel the nearer wins (the nearer surface hides the other)."""
    depth = np.full((height, width), np.nan, np.float32)
    if not len(depths):
        return depth
    u, v = np.round(resized_pixels(pixels, scale)).astype(int).T
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height) & (depths > 0)
    order = np.argsort(-depths[inside])  # nearest written last
    depth[v[inside][order], u[inside][order]] = depths[inside][order]
    return depth
