"""Depth -> the fields of the messages the node publishes and `hybrid-depth infer` writes. Pure
numpy, no ROS imports: the node turns each dict into its message class (`Image(**fields)`),
builders.from_fields into a rosbags message, tests decode the bytes directly.

Layouts follow REP 118 and depth_image_proc: 32FC1 metres little-endian with NaN = no depth;
PointCloud2 organized like the depth image, float32 x, y, z at 0, 4, 8 and the colour as a
float32 at 16 holding the uint32 bit pattern (r << 16 | g << 8 | b), point_step 32.
"""
from __future__ import annotations

import cv2
import numpy as np

FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32
POINT_STEP = 32
CLOUD_DTYPE = np.dtype({'names': ['x', 'y', 'z', 'rgb'], 'formats': ['<f4', '<f4', '<f4', '<u4'],
                        'offsets': [0, 4, 8, 16], 'itemsize': POINT_STEP})


def mask_depth(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """(H, W) metres -> float32 copy with NaN wherever the depth is not finite or outside
    [min_depth, max_depth]: the range the node vouches for (a float 0.0 would be a valid point
    at the camera for depth_image_proc, so invalid must be NaN)."""
    depth = np.array(depth, dtype=np.float32)
    with np.errstate(invalid='ignore'):
        depth[~((depth >= min_depth) & (depth <= max_depth))] = np.nan
    return depth


def depth_image_fields(depth: np.ndarray, header) -> dict:
    """sensor_msgs/Image fields: 32FC1, metres along the optical axis, step = width * 4."""
    height, width = depth.shape
    data = np.ascontiguousarray(depth, dtype='<f4').tobytes()
    return dict(header=header, height=height, width=width, encoding='32FC1', is_bigendian=0,
                step=width * 4, data=data)


def colorized_fields(depth: np.ndarray, header, min_depth: float, max_depth: float) -> dict:
    """sensor_msgs/Image fields, rgb8, of colorize(depth, min_depth, max_depth)."""
    height, width = depth.shape
    rgb = colorize(depth, min_depth, max_depth)
    return dict(header=header, height=height, width=width, encoding='rgb8', is_bigendian=0,
                step=width * 3, data=rgb.tobytes())


def colorize(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 RGB: the turbo colour map on a fixed log-depth scale,
    red at min_depth to blue at max_depth, black = no depth. Fixed, so a colour means the same
    distance in every frame (RViz's Image display would otherwise stretch each frame)."""
    with np.errstate(invalid='ignore', divide='ignore'):
        position = np.log(depth / min_depth) / np.log(max_depth / min_depth)
    valid = np.isfinite(position)
    index = np.round(255 * (1 - np.clip(np.where(valid, position, 0), 0, 1))).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(index, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb


def point_cloud_fields(depth: np.ndarray, K: np.ndarray, rgb: np.ndarray, header,
                       stride: int = 1) -> dict:
    """sensor_msgs/PointCloud2 fields from depth (H, W) metres (NaN = none), the intrinsics K
    (3, 3) of that depth image and its colours rgb (H, W, 3) uint8.

    X = (u - cx) Z / fx, Y = (v - cy) Z / fy, Z = depth, in the optical frame (z forward, x
    right, y down). `stride` > 1 keeps every stride-th pixel of every stride-th row: still
    organized, (ceil(H / stride), ceil(W / stride)) points. NaN depth gives NaN x, y, z.
    Built in float32 from per-column and per-row factors (u - cx) / fx and (v - cy) / fy
    computed in float64, and `data` is a memoryview of the points (not a copy: a 1280x720 cloud
    is 28 MiB, and copying it cost more than building it).
    """
    if depth.shape != rgb.shape[:2]:
        raise ValueError(f'depth {depth.shape} and rgb {rgb.shape} differ in size')
    z = np.asarray(depth[::stride, ::stride], dtype=np.float32)
    across = ((np.arange(0, depth.shape[1], stride) - K[0, 2]) / K[0, 0]).astype(np.float32)
    down = ((np.arange(0, depth.shape[0], stride) - K[1, 2]) / K[1, 1]).astype(np.float32)
    height, width = z.shape
    points = np.zeros((height, width, POINT_STEP // 4), '<f4')  # padding bytes defined
    np.multiply(across[None, :], z, out=points[..., 0])
    np.multiply(down[:, None], z, out=points[..., 1])
    points[..., 2] = z
    # rgb at offset 16 as the little-endian uint32 r << 16 | g << 8 | b: bytes b, g, r, 0
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb[::stride, ::stride]), cv2.COLOR_RGB2BGRA)
    bgra[..., 3] = 0
    points.view('<u4')[..., 4] = bgra.view('<u4')[..., 0]
    fields = [dict(name=name, offset=offset, datatype=FLOAT32, count=1)
              for name, offset in (('x', 0), ('y', 4), ('z', 8), ('rgb', 16))]
    return dict(header=header, height=height, width=width, fields=fields, is_bigendian=False,
                point_step=POINT_STEP, row_step=POINT_STEP * width,
                data=memoryview(points).cast('B'), is_dense=False)
