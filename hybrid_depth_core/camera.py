"""The one camera type (a rectified pinhole camera) and the one rectifier (raw, distorted image
-> that camera's image), in the conventions ROS CameraInfo and OpenCV use.

Pixel (u, v) has its centre at integer coordinates; (0, 0) is the centre of the top-left pixel.
The camera's optical frame has z forward, x right, y down (REP 103).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from hybrid_depth_core.geometry import scale_intrinsics

# Coefficient counts as sensor_msgs/CameraInfo defines them for each model.
DISTORTION_COEFFICIENTS = {'plumb_bob': (5,), 'rational_polynomial': (8,), 'equidistant': (4,)}
DISTORTION_MODELS = tuple(DISTORTION_COEFFICIENTS)


class UnsupportedDistortion(ValueError):
    """A distortion model the rectifier does not know."""


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of an undistorted (rectified) image of `width` x `height` pixels."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    # P's fourth column (Tx = -fx * baseline, Ty): non-zero only for the second camera of a
    # stereo pair; kept so that its CameraInfo is passed on unchanged, as is a skew K[0, 1].
    tx: float = 0.0
    ty: float = 0.0
    skew: float = 0.0

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

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, width: int, height: int) -> PinholeCamera:
        """From K (3, 3) or P (3, 4) of an image of `width` x `height`."""
        M = np.asarray(matrix, dtype=np.float64)
        tx, ty = (float(M[0, 3]), float(M[1, 3])) if M.shape == (3, 4) else (0.0, 0.0)
        return cls(int(width), int(height), float(M[0, 0]), float(M[1, 1]), float(M[0, 2]),
                   float(M[1, 2]), tx, ty, float(M[0, 1]))

    def scaled(self, width: int, height: int) -> PinholeCamera:
        """The same camera after resizing its image to `width` x `height`: fx, cx, Tx scale
        with the width, fy, cy, Ty with the height, pixel centres staying at integers
        (cx' = (cx + 0.5) sx - 0.5, as cv2.resize and geometry.scale_intrinsics)."""
        sx, sy = width / self.width, height / self.height
        K = scale_intrinsics(self.K, sx, sy)
        return PinholeCamera.from_matrix(np.hstack([K, [[self.tx * sx], [self.ty * sy], [0]]]),
                                         width, height)

    def cropped(self, x: int, y: int, width: int, height: int) -> PinholeCamera:
        """The camera of the `width` x `height` window whose top-left pixel is this image's
        pixel (x, y); negative x or y, or a window reaching past the image, is padding."""
        return PinholeCamera(width, height, self.fx, self.fy, self.cx - x, self.cy - y,
                             self.tx, self.ty, self.skew)

    @property
    def fov_deg(self) -> tuple[float, float]:
        """Horizontal and vertical field of view in degrees (of the whole image width and
        height, centred or not)."""
        return (math.degrees(math.atan2(self.width / 2, self.fx)) * 2,
                math.degrees(math.atan2(self.height / 2, self.fy)) * 2)

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsic matrix (float64)."""
        return np.array([[self.fx, self.skew, self.cx],
                         [0.0, self.fy, self.cy],
                         [0.0, 0.0, 1.0]])

    @property
    def P(self) -> np.ndarray:
        """3x4 projection matrix of the rectified image: [K | (Tx, Ty, 0)]."""
        return np.hstack([self.K, [[self.tx], [self.ty], [0.0]]])

    def pixel_rays(self) -> np.ndarray:
        """Ray direction per pixel in the optical frame, scaled so that z == 1: (H, W, 3) float64.

        A point at parameter t along such a ray has depth (optical-axis z) exactly t.
        """
        v = (np.arange(self.height) - self.cy) / self.fy
        u = (np.arange(self.width)[None, :] - self.cx - self.skew * v[:, None]) / self.fx
        rays = np.ones((self.height, self.width, 3))
        rays[..., 0] = u
        rays[..., 1] = v[:, None]
        return rays

    def project(self, points: np.ndarray) -> np.ndarray:
        """Optical-frame points (..., 3) -> pixel coordinates (..., 2). Points need z > 0."""
        z = points[..., 2]
        return np.stack([(self.fx * points[..., 0] + self.skew * points[..., 1]) / z + self.cx,
                         self.fy * points[..., 1] / z + self.cy], axis=-1)


def rectifier(K: np.ndarray, distortion, model: str, width: int, height: int,
              R: np.ndarray | None = None,
              K_new: np.ndarray | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The map from a raw image of `width` x `height` (intrinsics K, distortion coefficients of
    `model`, rectifying rotation R) to the rectified image of K_new (default: K), or None when
    there is nothing to do (no distortion, R = I, K_new = K). Called as `map(image)`, or
    `map(depth, nearest=True)` for depth on the raw image's pixel grid. ValueError names an
    unsupported model or a wrong coefficient count."""
    K = np.asarray(K, np.float64)
    K_new = K if K_new is None else np.asarray(K_new, np.float64)
    R = np.eye(3) if R is None else np.asarray(R, np.float64)
    D = np.asarray(distortion, np.float64).reshape(-1)
    if not D.any() and np.allclose(R, np.eye(3)) and np.allclose(K, K_new):
        return None
    if D.any() and model not in DISTORTION_MODELS:
        raise UnsupportedDistortion(f'unsupported distortion model {model!r}; supported: '
                                    f'{", ".join(DISTORTION_MODELS)}')
    expected = DISTORTION_COEFFICIENTS.get(model)
    if D.any() and D.size not in expected:
        raise ValueError(f'{model} distortion needs {" or ".join(map(str, expected))} '
                         f'coefficients, got {D.size}')
    maps = _rectify_maps(tuple(K.reshape(-1)), tuple(D), tuple(R.reshape(-1)),
                         tuple(K_new.reshape(-1)), model, int(width), int(height))
    return functools.partial(_remap, maps=maps)


@functools.lru_cache(maxsize=4)
def _rectify_maps(K, D, R, K_new, model, width, height):
    """Pixel maps raw -> rectified, cached: a camera's calibration arrives with every frame
    but changes (almost) never, and computing the maps costs more than applying them."""
    K, R, K_new = (np.array(v).reshape(3, 3) for v in (K, R, K_new))
    D = np.array(D)
    if model == 'equidistant':
        return cv2.fisheye.initUndistortRectifyMap(K, D, R, K_new, (width, height), cv2.CV_32FC1)
    if not D.size:
        D = np.zeros(5)
    return cv2.initUndistortRectifyMap(K, D, R, K_new, (width, height), cv2.CV_32FC1)


def _remap(image: np.ndarray, maps, nearest: bool = False) -> np.ndarray:
    """Bilinear for images; nearest (`nearest`) for depth registered to them, where mixing
    a foreground and a background depth would invent a surface between them."""
    return cv2.remap(image, maps[0], maps[1], cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT)
