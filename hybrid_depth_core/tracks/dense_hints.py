"""Dense depth hints where a recording has the camera's measured motion: which matcher finds
them, and whether they are used.

Two matchers take the measured poses: plane-sweep stereo (sweep_stereo.py) and optical flow
(flow_stereo.py). The flow covers far more of a handheld camera's frames and corrects the
measured rotations' error, which on such a camera is about the whole parallax. Where the camera
drives toward what it sees, the plane sweep is the better one: the parallax is least around the
point the camera drives to, and there the flow's smoothing carries near surfaces' motion across
their edges onto the far ones, where the plane sweep's patch costs and uniqueness test leave
such pixels out (docs/benchmarks.md, "Dense hints from optical flow"). `matcher_for` chooses by
the measured motion, the same way for every frame of a recording.

Either's hints are used only where, at the tracked metric hints' pixels (the same poses), their
median ratio to those is within the matcher's AGREEMENT of 1 over MIN_SHARED pixels or more.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from hybrid_depth_core.tracks import flow_stereo, sweep_stereo
from hybrid_depth_core.tracks.hints import Hints, hint_map, resized_pixels
from hybrid_depth_core.tracks.image_motion import HEADING_AGREEMENT

MIN_SHARED = 20
HEADING_STRIDE = 5       # frames between the poses whose translation gives a heading
MIN_TRANSLATION_M = 1e-3  # shorter translations give no heading (a camera that only turns)


def settings() -> list:
    """What the dense hints depend on besides the frames (for caches)."""
    return [MIN_SHARED, HEADING_STRIDE, MIN_TRANSLATION_M, HEADING_AGREEMENT,
            sweep_stereo.settings(), flow_stereo.settings()]


def matcher_for(poses: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> ModuleType:
    """sweep_stereo where the camera drives toward what it sees, flow_stereo otherwise: the
    translations between poses (T_world_camera, N x 4 x 4, NaN unknown) HEADING_STRIDE frames
    apart, as unit vectors in the earlier camera's frame, agree on a heading (their mean is
    HEADING_AGREEMENT long or longer, image_motion's rule) whose line of travel meets the image
    of `size` (width, height) with intrinsics K (its focus of expansion is in view)."""
    heading = travel_heading(poses)
    length = float(np.linalg.norm(heading))
    if length < HEADING_AGREEMENT or abs(heading[2]) < 1e-6:
        return flow_stereo
    x, y, z = K @ (heading * np.sign(heading[2]))
    inside = 0 <= x / z <= size[0] - 1 and 0 <= y / z <= size[1] - 1
    return sweep_stereo if inside else flow_stereo


def travel_heading(poses: np.ndarray) -> np.ndarray:
    """The mean unit translation (3,) of frame pairs HEADING_STRIDE apart in the earlier
    camera's frame (length 1: all agree; zeros without any pair that moved)."""
    directions = []
    for earlier, later in zip(poses[:-HEADING_STRIDE], poses[HEADING_STRIDE:]):
        if not (np.isfinite(earlier).all() and np.isfinite(later).all()):
            continue
        t = (np.linalg.inv(earlier) @ later)[:3, 3]  # the later centre, in the earlier camera
        if np.linalg.norm(t) >= MIN_TRANSLATION_M:
            directions.append(t / np.linalg.norm(t))
    return np.mean(directions, axis=0) if directions else np.zeros(3)


def agreement(tracked: Hints, dense: Hints) -> tuple[float, int]:
    """The median ratio of the `dense` hints' depth to the `tracked` hints' at the tracked
    hints' pixels where a dense one is (NaN where none), and at how many pixels."""
    width, height = dense.size
    scale = np.array(dense.size, np.float64) / np.array(tracked.size, np.float64)
    ratios = []
    for pixels, depths, dense_pixels, dense_depths in zip(tracked.pixels, tracked.depths,
                                                          dense.pixels, dense.depths):
        if not len(depths) or not len(dense_depths):
            continue
        there = hint_map(dense_pixels, dense_depths, (1.0, 1.0), width, height)
        u, v = np.round(resized_pixels(pixels, scale)).astype(int).T
        inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
        found = there[v[inside], u[inside]] / depths[inside]
        ratios.append(found[np.isfinite(found)])
    ratios = np.concatenate(ratios) if ratios else np.zeros(0)
    return (float(np.median(ratios)) if len(ratios) else float('nan')), len(ratios)


def agrees(ratio: float, shared: int, matcher: ModuleType) -> bool:
    return shared >= MIN_SHARED and abs(ratio - 1) <= matcher.AGREEMENT


def with_dense_hints(tracked: Hints, rgb: np.ndarray, K: np.ndarray, poses: np.ndarray,
                     matcher: ModuleType, progress: str | None = None) -> tuple[Hints, str]:
    """The `tracked` metric hints of frames `rgb` (intrinsics K, measured poses, as for the
    matchers' dense_hints) joined by `matcher`'s dense hints around the tracked ones' median
    depth where the two agree (`agrees`) -> (hints, '') or (`tracked` alone, a line saying
    why)."""
    known = np.concatenate(tracked.depths) if tracked.depths else np.zeros(0)
    if not len(known):
        return tracked, 'no dense depth hints: no tracked hint gives the scene\'s depth'
    dense = matcher.dense_hints(rgb, K, poses, float(np.median(known)), progress)
    ratio, shared = agreement(tracked, dense)
    if agrees(ratio, shared, matcher):
        return tracked.joined(dense), ''
    return tracked, (f'dense depth hints not used: at {shared} pixels of the tracked ones they '
                     f'are {ratio:.2f} times as deep (they must agree within '
                     f'{100 * matcher.AGREEMENT:.0f}% at {MIN_SHARED} or more): the measured '
                     f'motion does not fit the images closely enough for stereo')
