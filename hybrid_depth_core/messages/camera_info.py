"""sensor_msgs/CameraInfo -> the pinhole camera of the image the network sees, and back.

CameraInfo `k` describes the raw image, `p` the rectified one (image_geometry and
depth_image_proc read fx, fy, cx, cy from `p`). The node always infers on a rectified image:
either the input is raw and is undistorted here with `k`, `d`, `r` to `p` (what image_proc
does), or the input already is rectified (`rectify: false`). So the depth it publishes is an
image of the camera `p`, and its CameraInfo says so: `k` = `p`'s 3x3 part, zero distortion.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hybrid_depth_core.camera import PinholeCamera, UnsupportedDistortion, rectifier
from hybrid_depth_core.messages.images import BadMessage


def info_fields(camera: PinholeCamera, header) -> dict:
    """sensor_msgs/CameraInfo fields describing the rectified `camera`, stamped `header`."""
    return dict(header=header, height=camera.height, width=camera.width,
                distortion_model='plumb_bob', d=[0.0] * 5,
                k=[float(v) for v in camera.K.reshape(-1)],
                r=[float(v) for v in np.eye(3).reshape(-1)],
                p=[float(v) for v in camera.P.reshape(-1)], binning_x=0, binning_y=0)


def camera_from_info(info, width: int, height: int,
                     rectify: bool = True) -> tuple[PinholeCamera, Callable | None]:
    """Validate `info` against an image of `width` x `height` -> (camera, rectifier).

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
    K, R, P = K.reshape(3, 3), R.reshape(3, 3), P.reshape(3, 4)
    if not R.any():
        R = np.eye(3)  # some drivers leave r unset; it means "no rectifying rotation"
    if not P.any():
        P = np.hstack([K, np.zeros((3, 1))])  # p unset: the raw image is the rectified one
    K, P = _binned_and_cropped(info, K, P, width, height)
    if min(K[0, 0], K[1, 1], P[0, 0], P[1, 1]) <= 0:
        raise BadMessage(f'camera_info focal lengths must be positive, got k fx={K[0, 0]} '
                         f'fy={K[1, 1]}, p fx={P[0, 0]} fy={P[1, 1]}')
    camera = PinholeCamera.from_matrix(P, width, height)
    if not rectify:
        return camera, None
    try:
        return camera, rectifier(K, D, info.distortion_model, width, height, R, P[:, :3])
    except UnsupportedDistortion as error:
        raise BadMessage(f'{error} (or publish rectified images and set rectify false)') from None
    except ValueError as error:  # a coefficient count that does not fit the model
        raise BadMessage(str(error)) from None


def _binned_and_cropped(info, K: np.ndarray, P: np.ndarray, width: int,
                        height: int) -> tuple[np.ndarray, np.ndarray]:
    """K and P of the image the camera sent: calibrated at the full sensor (`info.width` x
    `info.height`), read out through a region of interest and binned (REP 104). As
    image_geometry's C++ PinholeCameraModel: the ROI moves the principal point by its offset,
    then binning divides fx, cx, Tx by binning_x and fy, cy, Ty by binning_y (and here the skew
    by binning_x too, which image_geometry leaves: it is 0 for every driver we know); the image
    is the ROI's size (the full sensor's when the ROI is all zero) divided by the binning.
    Distortion acts on normalised coordinates, which this does not change."""
    bin_x, bin_y = max(1, int(info.binning_x)), max(1, int(info.binning_y))
    roi = getattr(info, 'roi', None)
    x, y, roi_width, roi_height = ((int(roi.x_offset), int(roi.y_offset), int(roi.width),
                                    int(roi.height)) if roi is not None else (0, 0, 0, 0))
    if not (x or y or roi_width or roi_height):
        roi_width, roi_height = int(info.width), int(info.height)
    expected = (roi_width // bin_x, roi_height // bin_y)
    if expected != (width, height):
        parts = []
        if (x, y, roi_width, roi_height) != (0, 0, int(info.width), int(info.height)):
            parts.append(f'its {roi_width}x{roi_height} region of interest at {x}, {y}')
        if (bin_x, bin_y) != (1, 1):
            parts.append(f'binned {bin_x}x{bin_y}')
        how = (f' ({", ".join(parts)}, of a {info.width}x{info.height} sensor)'
               if parts else '')
        raise BadMessage(f'camera_info describes a {expected[0]}x{expected[1]} image{how} but '
                         f'the image is {width}x{height}')
    K, P = K.copy(), P.copy()
    K[0, 2] -= x
    K[1, 2] -= y
    P[0, 2] -= x
    P[1, 2] -= y
    K[0, [0, 1, 2]] /= bin_x
    K[1, [1, 2]] /= bin_y
    P[0, [0, 1, 2, 3]] /= bin_x
    P[1, [1, 2, 3]] /= bin_y
    return K, P
