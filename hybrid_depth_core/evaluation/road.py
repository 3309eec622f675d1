"""The road check: metric scale on a street recording that has no depth, from the camera's
height above a flat road.

A level camera (optical axis parallel to the road, no roll) at height h sees the road at image
row v below the horizon row cy at depth z = fy h / (v - cy), the same across the row. Over the
lower middle of the image, where a car's camera sees its own lane, the median of predicted over
flat-road depth is the prediction's scale: 1 for metric depth, 2 for depth twice too far. A
pitched camera moves the horizon (0.5 degrees moves it fy * 0.0087 rows, about 6 rows for
KITTI's fy = 707, and the ratio by a few percent at the region's far rows): the check is for
cameras mounted level, as KITTI's are to about that.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybrid_depth_core.camera import PinholeCamera

# The road region: the middle third of the columns, the bottom 30% of the rows (and only
# rows at least ROAD_MIN_ROWS below the horizon, where a row spans a short range of depths).
ROAD_COLUMNS = (1 / 3, 2 / 3)
ROAD_TOP = 0.7
ROAD_MIN_ROWS = 10


def flat_road_depth(camera: PinholeCamera, camera_height: float) -> np.ndarray:
    """(H, W) float32 depth of a flat road `camera_height` metres below a level camera; NaN at
    and above the horizon."""
    below = np.arange(camera.height, dtype=np.float64) - camera.cy
    with np.errstate(divide='ignore'):
        rows = np.where(below > 0, camera.fy * camera_height / below, np.nan)
    return np.repeat(rows[:, None], camera.width, axis=1).astype(np.float32)


def road_region(camera: PinholeCamera) -> np.ndarray:
    """(H, W) bool: the lower middle of the image, below the horizon."""
    mask = np.zeros((camera.height, camera.width), bool)
    left, right = (int(round(f * camera.width)) for f in ROAD_COLUMNS)
    top = max(int(round(ROAD_TOP * camera.height)), int(np.ceil(camera.cy)) + ROAD_MIN_ROWS)
    mask[top:, left:right] = True
    return mask


@dataclass(frozen=True)
class RoadCheck:
    camera_height: float  # metres above the road

    def __post_init__(self):
        if not self.camera_height > 0:
            raise ValueError(f'the camera height above the road must be > 0 m, got '
                             f'{self.camera_height}')

    def ratio(self, depth: np.ndarray, camera: PinholeCamera) -> float | None:
        """Median of `depth` / flat-road depth over the road region; None where the region is
        empty (a camera looking up) or has no finite prediction."""
        road = flat_road_depth(camera, self.camera_height)
        mask = road_region(camera) & np.isfinite(road) & np.isfinite(depth) & (depth > 0)
        if not mask.any():
            return None
        return float(np.median(depth[mask] / road[mask]))


def summarise(ratios: list[float]) -> dict:
    """The per-image ratios, their median and 10th / 90th percentiles."""
    values = np.asarray(ratios, np.float64)
    return {'images': len(values), 'per_image': [float(r) for r in values],
            'median': float(np.median(values)), 'p10': float(np.percentile(values, 10)),
            'p90': float(np.percentile(values, 90))}
