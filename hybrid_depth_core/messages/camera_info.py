"""sensor_msgs/CameraInfo -> the pinhole camera of the image the network sees, and back.

CameraInfo `k` describes the raw image, `p` the rectified one (image_geometry and
depth_image_proc read fx, fy, cx, cy from `p`). The node always infers on a rectified image:
either the input is raw and is undistorted here with `k`, `d`, `r` to `p` (what image_proc
does), or the input already is rectified (`rectify: false`). So the depth it publishes is an
image of the camera `p`, and its CameraInfo says so: `k` = `p`'s 3x3 part, zero distortion.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.messages.images import BadMessage

# Coefficient counts as sensor_msgs/CameraInfo defines them for each model.
DISTORTION_COEFFICIENTS = {'plumb_bob': (5,), 'rational_polynomial': (8,), 'equidistant': (4,)}
DISTORTION_MODELS = tuple(DISTORTION_COEFFICIENTS)


@dataclass(frozen=True, eq=False)
class Camera:
    """A rectified pinhole camera of `width` x `height` pixels (pixel centres at integers)."""

    width: int
    height: int
    P: np.ndarray  # (3, 4): [K | (Tx, Ty, 0)], Tx = Ty = 0 for a monocular camera

    @property
    def K(self) -> np.ndarray:
        return self.P[:, :3].copy()

    def scaled(self, width: int, height: int) -> Camera:
        """The same camera after resizing its image to `width` x `height`: fx, cx, Tx scale
        with the width, fy, cy, Ty with the height (cx' = (cx + 0.5) sx - 0.5, consistent with
        cv2.resize and the core's scale_intrinsics)."""
        sx, sy = width / self.width, height / self.height
        P = self.P.copy()
        P[:, :3] = scale_intrinsics(P[:, :3], sx, sy)
        P[0, 3] *= sx  # Tx = -fx * baseline
        P[1, 3] *= sy
        return Camera(width, height, P)

    def info_fields(self, header) -> dict:
        """sensor_msgs/CameraInfo fields describing this camera, stamped with `header`."""
        return dict(header=header, height=self.height, width=self.width,
                    distortion_model='plumb_bob', d=[0.0] * 5,
                    k=[float(v) for v in self.K.reshape(-1)],
                    r=[float(v) for v in np.eye(3).reshape(-1)],
                    p=[float(v) for v in self.P.reshape(-1)], binning_x=0, binning_y=0)


def camera_from_fov(width: int, height: int, hfov_deg: float) -> Camera:
    """Square pixels, principal point at the image centre: a guess for uncalibrated cameras."""
    K = PinholeCamera.from_fov(width, height, hfov_deg).K
    return Camera(width, height, np.hstack([K, np.zeros((3, 1))]))


def camera_from_info(info, width: int, height: int, rectify: bool = True):
    """Validate `info` against an image of `width` x `height` -> (Camera, rectifier).

    `rectifier` maps a raw (H, W, 3) image to the rectified one, or is None when nothing needs
    to be done (rectify False, or no distortion, R = I and K == P). Raises BadMessage naming
    the problem.
    """
    K, D, R, P = (np.asarray(values, dtype=np.float64).reshape(-1)
                  for values in (info.k, info.d, info.r, info.p))
    if K.size != 9 or R.size != 9 or P.size != 12:
        raise BadMessage(f'camera_info needs 9 k, 9 r and 12 p values, got {K.size}, {R.size}, '
                         f'{P.size}')
    if not all(np.isfinite(v).all() for v in (K, D, R, P)):
        raise BadMessage('camera_info has NaN or infinite values in k, d, r or p')
    if not K.any():
        raise BadMessage('camera_info k is all zero: the camera is uncalibrated (calibrate it, '
                         'or set the fallback_fov parameter)')
    if (int(info.width), int(info.height)) != (width, height):
        raise BadMessage(f'camera_info is {info.width}x{info.height} but the image is '
                         f'{width}x{height}')
    K, R, P = K.reshape(3, 3), R.reshape(3, 3), P.reshape(3, 4)
    if not R.any():
        R = np.eye(3)  # some drivers leave r unset; it means "no rectifying rotation"
    if not P.any():
        P = np.hstack([K, np.zeros((3, 1))])  # p unset: the raw image is the rectified one
    if min(K[0, 0], K[1, 1], P[0, 0], P[1, 1]) <= 0:
        raise BadMessage(f'camera_info focal lengths must be positive, got k fx={K[0, 0]} '
                         f'fy={K[1, 1]}, p fx={P[0, 0]} fy={P[1, 1]}')
    camera = Camera(width, height, P)
    if not rectify or (not D.any() and np.allclose(R, np.eye(3))
                       and np.allclose(K, P[:, :3])):
        return camera, None
    model = info.distortion_model
    if D.any() and model not in DISTORTION_MODELS:
        raise BadMessage(f'unsupported distortion model {model!r}; supported: '
                         f'{", ".join(DISTORTION_MODELS)} (or publish rectified images and set '
                         f'rectify false)')
    expected = DISTORTION_COEFFICIENTS.get(model)
    if D.any() and D.size not in expected:
        raise BadMessage(f'{model} distortion needs {" or ".join(map(str, expected))} '
                         f'coefficients, got {D.size}')
    maps = _rectify_maps(tuple(K.reshape(-1)), tuple(D), tuple(R.reshape(-1)),
                         tuple(P[:, :3].reshape(-1)), model, width, height)
    return camera, functools.partial(_remap, maps=maps)


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


def _remap(rgb: np.ndarray, maps) -> np.ndarray:
    return cv2.remap(rgb, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
