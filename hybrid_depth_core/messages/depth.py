"""Depth images as ROS sends them -> (H, W) float32 metres, NaN where there is no depth.

Two carriers: sensor_msgs/Image in REP 118's encodings (32FC1 metres, 16UC1 millimetres), and
sensor_msgs/CompressedImage in image_transport's `compressedDepth` format, what depth cameras'
drivers (RealSense, Kinect, Azure, Orbbec) are usually recorded as. Its `format` is
"<encoding>; compressedDepth [png|rvl]" and its data a 12-byte header (an int32 compression
format and two float32 quantisation parameters, little-endian as every ROS machine) followed
by the PNG: 16UC1 stores the millimetres themselves; 32FC1 stores a quantised inverse depth
q = A / d + B, decoded as d = A / (q - B), q = 0 meaning none.
"""
from __future__ import annotations

import re

import cv2
import numpy as np

from hybrid_depth_core.messages.images import BadMessage, as_bytes, is_compressed_depth

# REP 118: float metres, or integer millimetres with 0 = no depth.
DEPTH_ENCODINGS = {'32FC1': ('f4', 1.0), '16UC1': ('u2', 1e-3), 'mono16': ('u2', 1e-3)}
COMPRESSED_DEPTH_HEADER = np.dtype([('format', '<i4'), ('quant_a', '<f4'), ('quant_b', '<f4')])
# Encodings that only a depth image has (mono16 is also a camera's): a topic whose images are
# in one of these is never taken for the camera.
DEPTH_ONLY_ENCODINGS = ('32FC1', '16UC1')
# What the compressedDepth plugin encodes: one channel of 32-bit float or 16-bit integer.
COMPRESSED_DEPTH_ENCODINGS = ('16UC1', 'mono16', '32FC1')


def is_depth_message(message) -> bool:
    """Whether an Image or CompressedImage carries depth (by encoding, or format)."""
    if hasattr(message, 'format'):
        return (is_compressed_depth(message.format)
                or message.format.split(';')[0].strip() in DEPTH_ONLY_ENCODINGS)
    return message.encoding in DEPTH_ONLY_ENCODINGS


def depth_to_metres(msg) -> np.ndarray:
    """A depth Image (32FC1 metres, 16UC1 millimetres) or compressedDepth CompressedImage ->
    (H, W) float32 metres, NaN where there is no depth (NaN, Inf, or 0)."""
    if hasattr(msg, 'format'):
        depth = compressed_depth_to_metres(msg)
    else:
        depth = _raw_depth(msg)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def _raw_depth(msg) -> np.ndarray:
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if msg.encoding not in DEPTH_ENCODINGS:
        raise BadMessage(f'depth image encoding {msg.encoding!r} is not one of '
                         f'{", ".join(DEPTH_ENCODINGS)}')
    kind, to_metres = DEPTH_ENCODINGS[msg.encoding]
    row_bytes = width * int(kind[1])
    data = as_bytes(msg.data)
    if height <= 0 or width <= 0 or step < row_bytes or data.size != step * height:
        raise BadMessage(f'depth image of {width}x{height}, step {step}, has {data.size} bytes')
    order = '>' if msg.is_bigendian else '<'
    rows = np.ascontiguousarray(data.reshape(height, step)[:, :row_bytes])
    return rows.view(f'{order}{kind}').astype(np.float32) * np.float32(to_metres)


def compressed_depth_to_metres(msg) -> np.ndarray:
    """image_transport's compressedDepth (PNG) -> (H, W) float32 metres (0 where none)."""
    encoding, _, rest = msg.format.partition(';')
    if not is_compressed_depth(rest):
        raise BadMessage(f'format {msg.format!r} is not a compressedDepth image '
                         f'("16UC1; compressedDepth png" or "32FC1; compressedDepth png")')
    encoding = encoding.strip()
    method = re.sub('compressed ?depth', '', rest, flags=re.IGNORECASE).strip() or 'png'
    if encoding not in COMPRESSED_DEPTH_ENCODINGS:
        raise BadMessage(f'compressedDepth encoding {encoding!r} is not one of '
                         f'{", ".join(COMPRESSED_DEPTH_ENCODINGS)}')
    if method != 'png':
        raise BadMessage(f'compressedDepth compression {method!r} is not supported (only png; '
                         f'set the recorder\'s compressedDepth format to png)')
    data = as_bytes(msg.data)
    size = COMPRESSED_DEPTH_HEADER.itemsize
    if data.size <= size:
        raise BadMessage(f'compressedDepth image of {data.size} bytes has no image after its '
                         f'{size}-byte header')
    header = np.frombuffer(data[:size].tobytes(), COMPRESSED_DEPTH_HEADER)[0]
    image = cv2.imdecode(data[size:], cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 2:
        raise BadMessage(f'compressedDepth image: the data after the header is not a '
                         f'one-channel 16-bit PNG ({data.size} bytes)')
    if encoding != '32FC1':  # 16 bits: millimetres
        return image.astype(np.float32) * np.float32(1e-3)
    quant_a, quant_b = float(header['quant_a']), float(header['quant_b'])
    if quant_a == 0:
        raise BadMessage('32FC1 compressedDepth image has no quantisation parameters')
    inverse = image.astype(np.float32)
    with np.errstate(divide='ignore'):
        return np.where(image > 0, np.float32(quant_a) / (inverse - np.float32(quant_b)),
                        np.float32(0)).astype(np.float32)
