"""Dense depth hints: optical flow between each frame and the frames on either side of it, with
the camera's measured poses.

For a reference frame the sources are frames within SEARCH of it, on each side, that see most of
it (OVERLAP of a grid of its pixels, put at the recording's typical depth, lands inside them)
and whose motion moves those pixels by MIN_PARALLAX_PX or more: per side, for each of
TARGET_PARALLAX_PX the one nearest it. Each source is first turned to the reference (the
homography of their measured relative rotation), so that what remains between them is
parallax, and DIS optical flow (Kroeger et al., ECCV 2016) matches every pixel both ways; a
match is kept where the two ways agree within FLOW_AGREEMENT_PX.

A pixel's inverse depth is the least-squares fit to all its sources' matches (each one a point
on the line its depth moves it along). Sources on opposite sides see the parallax in opposite
directions, so an error of the reference frame's own orientation, which moves every match one
way, mostly cancels. What remains of the measured rotations' error (tenths of a degree on a
handheld camera, about the whole parallax: docs/benchmarks.md) is fitted: ROTATION_ROUNDS
times, each source's relative rotation is corrected by a small turn (Gauss-Newton on its
matches at the current depths) and the depths fitted again. Translations stay as measured: they
carry the metres. A depth is kept where MIN_SOURCES or more sources matched it, it is in front
of the camera, it moves the pixel by MIN_PARALLAX_PX or more in some source, and every source's
match lies within MAX_RESIDUAL_PX of where the fitted depth and rotations put it (a multi-view
geometric check, as multi-view stereo fusion makes one: a wrong match, or a source whose motion
does not fit, rarely agrees with the others).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.tracks.hints import Hints
from hybrid_depth_core.tracks.views import parallax, widest_angles

SEARCH = 15
OVERLAP = 0.6
MIN_PARALLAX_PX = 2.0
TARGET_PARALLAX_PX = (4.0, 8.0, 12.0)  # up to one source per target on each side
FLOW_AGREEMENT_PX = 0.5
MIN_SOURCES = 2
ROTATION_ROUNDS = 4
FIT_PIXELS = 5000     # a source's turn is fitted on this many of its matches at most
MIN_FIT_PIXELS = 200  # and only with this many
MAX_RESIDUAL_PX = 1.0
WIDTH = 320         # frames are matched this wide (pixel figures above are at this width)
MIN_HEIGHT = 16
# A depth is kept on every KEEP_EVERY-th pixel of every KEEP_EVERY-th row: at 320x240 that is
# still more than a 128x96 network has pixels, at a quarter of the memory and cache.
KEEP_EVERY = 2
# Dense hints are used only if, at the pixels of the tracked hints (the same poses), their
# median ratio to those is within AGREEMENT of 1 (dense_hints.agrees): where the
# measured poses do not fit the images (docs/benchmarks.md, "Depth hints"), stereo with them
# is off by much more than that. Within it, the tracks are the rougher: on TUM's Kinect they
# are 10% nearer than the dense hints, which are within 6% of the depth camera there.
AGREEMENT = 0.15


def settings() -> list:
    """What the dense hints depend on besides the frames (for caches)."""
    return ['flow', SEARCH, OVERLAP, MIN_PARALLAX_PX, TARGET_PARALLAX_PX, FLOW_AGREEMENT_PX,
            MIN_SOURCES, ROTATION_ROUNDS, FIT_PIXELS, MIN_FIT_PIXELS, MAX_RESIDUAL_PX, WIDTH,
            MIN_HEIGHT, KEEP_EVERY, AGREEMENT]


def choose_sources(poses: np.ndarray, K: np.ndarray, index: int, depth: float,
                   size: tuple[int, int]) -> list[int]:
    """The frames to match frame `index` against (see the module docstring): poses
    T_world_camera (N, 4, 4), NaN where unknown; `depth` the scene's typical depth; `size`
    (width, height)."""
    chosen = []
    for side in (range(index - 1, index - SEARCH - 1, -1), range(index + 1, index + SEARCH + 1)):
        found = {}
        for other in side:
            if not 0 <= other < len(poses):
                continue
            moved = parallax(poses, K, index, other, depth, size, OVERLAP)
            if moved is not None and moved >= MIN_PARALLAX_PX:
                found[other] = moved
        for target in TARGET_PARALLAX_PX:
            left = [other for other in found if other not in chosen]
            if left:
                chosen.append(min(left, key=lambda other: abs(found[other] - target)))
    return sorted(chosen)


@dataclass
class Match:
    """Where each pixel of a reference frame was found in a source frame."""

    landed: np.ndarray  # (H * W, 2) source pixels
    found: np.ndarray   # (H * W,) bool: matched both ways, inside both frames
    K: np.ndarray       # the source's intrinsics
    T: np.ndarray       # T_source_reference as measured
    turn: np.ndarray = field(default_factory=lambda: np.zeros(3))  # the rotation's correction

    def rotation(self, turn: np.ndarray | None = None) -> np.ndarray:
        """The relative rotation, corrected by `turn` (axis-angle, in the source's frame)."""
        turn = self.turn if turn is None else turn
        return cv2.Rodrigues(np.asarray(turn, np.float64).reshape(3, 1))[0] @ self.T[:3, :3]

    def project(self, rays: np.ndarray, inverse: np.ndarray, turn=None) -> np.ndarray:
        """Reference rays (M, 3) at inverse depths (M,) -> source pixels (M, 2)."""
        seen = (rays @ (self.K @ self.rotation(turn)).T
                + inverse[:, None] * (self.K @ self.T[:3, 3]))
        return seen[:, :2] / seen[:, 2:]


def match(flow, reference: np.ndarray, source: np.ndarray, K: np.ndarray, K_source: np.ndarray,
          T_source_reference: np.ndarray) -> Match:
    """Grey frames (H, W) uint8 -> every reference pixel's match in the source (module
    docstring), by `flow` (a cv2.DISOpticalFlow) between the reference and the source turned
    to it."""
    height, width = reference.shape
    turned = K_source @ T_source_reference[:3, :3] @ np.linalg.inv(K)  # at infinite depth
    warped = cv2.warpPerspective(source, turned, (width, height),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
    forward = flow.calc(reference, warped, None)
    backward = flow.calc(warped, reference, None)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = u + forward[..., 0], v + forward[..., 1]
    back = cv2.remap(backward, x, y, cv2.INTER_LINEAR)
    both_ways = np.hypot(forward[..., 0] + back[..., 0],
                         forward[..., 1] + back[..., 1]) < FLOW_AGREEMENT_PX
    landed = np.stack([x, y, np.ones_like(x)], -1).reshape(-1, 3).astype(np.float64) @ turned.T
    with np.errstate(divide='ignore', invalid='ignore'):
        landed = landed[:, :2] / landed[:, 2:]
    inside = ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).ravel()
    inside &= ((landed[:, 0] >= 0) & (landed[:, 0] <= width - 1) & (landed[:, 1] >= 0)
               & (landed[:, 1] <= height - 1))
    return Match(landed, both_ways.ravel() & inside, K_source, T_source_reference)


def fitted_depth(matches: list[Match], K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The reference frame's depth (H, W) from its sources' `matches`, their turns fitted in
    place (module docstring); NaN where not kept."""
    width, height = size
    v, u = np.mgrid[0:height, 0:width]
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1) @ np.linalg.inv(K).T
    for _ in range(ROTATION_ROUNDS):
        inverse, usable = _inverse_depths(matches, rays)
        for found in matches:
            _fit_turn(found, rays, inverse, usable)
    inverse, usable = _inverse_depths(matches, rays)
    worst = np.zeros(len(rays))
    for found in matches:
        rows = np.flatnonzero(found.found & usable)
        worst[rows] = np.maximum(worst[rows], np.linalg.norm(
            found.project(rays[rows], inverse[rows]) - found.landed[rows], axis=1))
    kept = usable & (worst < MAX_RESIDUAL_PX)
    return np.where(kept, 1 / np.where(kept, inverse, 1), np.nan).reshape(height, width)


def _inverse_depths(matches: list[Match], rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's inverse depth, least squares over its matches: a source pixel (x, y) of a
    point a / w + b (a = K R ray, b = K t) gives (a_x - x a_z) = w (x b_z - b_x), and alike in
    y. -> (inverse depths, where they are kept before the residual check)."""
    numerator, denominator = np.zeros(len(rays)), np.zeros(len(rays))
    sources, parallax = np.zeros(len(rays), int), np.zeros(len(rays))
    for found in matches:
        rows = np.flatnonzero(found.found)
        a = rays[rows] @ (found.K @ found.rotation()).T
        b = found.K @ found.T[:3, 3]
        x, y = found.landed[rows].T
        ex, ey = x * b[2] - b[0], y * b[2] - b[1]
        numerator[rows] += (a[:, 0] - x * a[:, 2]) * ex + (a[:, 1] - y * a[:, 2]) * ey
        denominator[rows] += ex * ex + ey * ey
        sources[rows] += 1
        # pixels moved per unit inverse depth, near w = 0
        parallax[rows] = np.maximum(parallax[rows], np.hypot(ex, ey) / np.abs(a[:, 2]))
    inverse = numerator / np.maximum(denominator, 1e-12)
    usable = (sources >= MIN_SOURCES) & (inverse > 0) & (parallax * inverse >= MIN_PARALLAX_PX)
    return inverse, usable


def _fit_turn(found: Match, rays: np.ndarray, inverse: np.ndarray, usable: np.ndarray) -> None:
    """Two Gauss-Newton steps on the source's turn: its matches against where the current
    depths put them, each weighed down beyond a pixel (Huber)."""
    rows = np.flatnonzero(found.found & usable)
    if len(rows) < MIN_FIT_PIXELS:
        return
    rows = rows[::max(1, len(rows) // FIT_PIXELS)]
    rays, inverse, landed = rays[rows], inverse[rows], found.landed[rows]
    step = 1e-6
    for _ in range(2):
        residual = (found.project(rays, inverse) - landed).ravel()
        jacobian = np.stack([(found.project(rays, inverse, found.turn + step * axis)
                              - landed).ravel() - residual for axis in np.eye(3)], 1) / step
        weight = 1 / np.maximum(1.0, np.abs(residual))
        normal = jacobian.T @ (jacobian * weight[:, None])
        found.turn = found.turn - np.linalg.solve(normal + 1e-9 * np.eye(3),
                                                  jacobian.T @ (residual * weight))


def dense_hints(rgb: np.ndarray, K: np.ndarray, poses: np.ndarray, depth: float,
                progress: str | None = None) -> Hints:
    """Dense hints for every frame of a recording, frames (N, H, W, 3) uint8 with intrinsics K
    (N, 3, 3) and measured poses T_world_camera (N, 4, 4; NaN where unknown, metres), sources
    chosen around the scene's typical `depth` (the sparse hints' median): the kept pixels of
    the frames resized to WIDTH (KEEP_EVERY), their `angles` the widest triangulation angle to
    a source (degrees)."""
    scale = WIDTH / rgb.shape[2]
    size = (WIDTH, max(MIN_HEIGHT, round(rgb.shape[1] * scale)))
    grey = [cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size,
                       interpolation=cv2.INTER_AREA) for frame in rgb]
    K = scale_intrinsics(K, size[0] / rgb.shape[2], size[1] / rgb.shape[1])
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    v, u = np.mgrid[0:size[1], 0:size[0]]
    pixels, depths, angles = [], [], []
    for index in tqdm(range(len(rgb)), desc=progress, unit='frame', disable=progress is None):
        chosen = choose_sources(poses, K[index], index, depth, size)
        found = np.full(size[::-1], np.nan)
        if len(chosen) >= MIN_SOURCES:
            found = fitted_depth([match(flow, grey[index], grey[other], K[index], K[other],
                                        np.linalg.inv(poses[other]) @ poses[index])
                                  for other in chosen], K[index], size)
        kept = np.isfinite(found) & (u % KEEP_EVERY == 0) & (v % KEEP_EVERY == 0)
        pixels.append(np.stack([u[kept], v[kept]], 1).astype(np.float32))
        depths.append(found[kept].astype(np.float32))
        angles.append(widest_angles(K[index], u[kept], v[kept], found[kept], poses, index, chosen))
    return Hints(pixels, depths, angles, metric=True, size=size)
