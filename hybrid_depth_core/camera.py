"""Pinhole camera intrinsics, in the conventions ROS CameraInfo and OpenCV use.

Pixel (u, v) has its centre at integer coordinates; (0, 0) is the centre of the top-left pixel.
The camera's optical frame has z forward, x right, y down (REP 103).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of an undistorted (rectified) image of `width` x `height` pixels."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self):
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'image size must be positive, got {self.width}x{self.height}')
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f'focal lengths must be finite and positive, got fx={self.fx} '
                             f'fy={self.fy} cx={self.cx} cy={self.cy}')

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float,
                 principal_offset: tuple[float, float] = (0.0, 0.0)) -> PinholeCamera:
        """Square pixels with horizontal field of view `hfov_deg`.

        `principal_offset` moves the principal point away from the image centre by a fraction of
        the image size (real cameras are never centred; code that assumes they are should fail).
        """
        if not 1.0 <= hfov_deg <= 170.0:
            raise ValueError(f'horizontal field of view must be in [1, 170] degrees, '
                             f'got {hfov_deg}')
        focal = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width=width, height=height, fx=focal, fy=focal,
                   cx=(width - 1) / 2.0 + principal_offset[0] * width,
                   cy=(height - 1) / 2.0 + principal_offset[1] * height)

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsic matrix (float64)."""
        return np.array([[self.fx, 0.0, self.cx],
                         [0.0, self.fy, self.cy],
                         [0.0, 0.0, 1.0]])

    @property
    def P(self) -> np.ndarray:
        """3x4 projection matrix of the rectified monocular image (Tx = Ty = 0)."""
        return np.hstack([self.K, np.zeros((3, 1))])

    def pixel_rays(self) -> np.ndarray:
        """Ray direction per pixel in the optical frame, scaled so that z == 1: (H, W, 3) float64.

        A point at parameter t along such a ray has depth (optical-axis z) exactly t.
        """
        u = (np.arange(self.width) - self.cx) / self.fx
        v = (np.arange(self.height) - self.cy) / self.fy
        rays = np.ones((self.height, self.width, 3))
        rays[..., 0] = u[None, :]
        rays[..., 1] = v[:, None]
        return rays

    def project(self, points: np.ndarray) -> np.ndarray:
        """Optical-frame points (..., 3) -> pixel coordinates (..., 2). Points need z > 0."""
        z = points[..., 2]
        return np.stack([self.fx * points[..., 0] / z + self.cx,
                         self.fy * points[..., 1] / z + self.cy], axis=-1)
