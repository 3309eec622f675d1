"""Camera images as ROS sends them -> (H, W, 3) uint8 RGB arrays.

Pure functions on message-like objects (rclpy messages, rosbags messages, or anything with the
same attributes), so they are tested without ROS. Encodings follow sensor_msgs/image_encodings:
`yuv422` is UYVY byte order; the generic `8UC3`/`8UC4` are taken in OpenCV's BGR/BGRA order
(what a cv2 image published as is holds); 16-bit images keep their high byte (cv_bridge's
mono16 -> mono8 scaling).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class BadMessage(ValueError):
    """A message the node cannot use. The text names the problem; the node logs it and waits
    for the next message."""


@dataclass(frozen=True)
class _Layout:
    channels: int         # values per pixel
    bytes_per_value: int  # 1 or 2
    to_rgb: int | None    # OpenCV conversion code from the (8-bit) array, None = already RGB


# OpenCV names Bayer patterns by the second row's first two pixels, so ROS `rggb` is
# OpenCV `BG` (the mapping cv_bridge uses; test_ros_conversions checks it against a mosaic).
_BAYER = {'rggb': cv2.COLOR_BayerBG2RGB, 'bggr': cv2.COLOR_BayerRG2RGB,
          'gbrg': cv2.COLOR_BayerGR2RGB, 'grbg': cv2.COLOR_BayerGB2RGB}

ENCODINGS: dict[str, _Layout] = {
    'rgb8': _Layout(3, 1, None), 'bgr8': _Layout(3, 1, cv2.COLOR_BGR2RGB),
    'rgba8': _Layout(4, 1, cv2.COLOR_RGBA2RGB), 'bgra8': _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    'mono8': _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    'rgb16': _Layout(3, 2, None), 'bgr16': _Layout(3, 2, cv2.COLOR_BGR2RGB),
    'rgba16': _Layout(4, 2, cv2.COLOR_RGBA2RGB), 'bgra16': _Layout(4, 2, cv2.COLOR_BGRA2RGB),
    'mono16': _Layout(1, 2, cv2.COLOR_GRAY2RGB),
    '8UC1': _Layout(1, 1, cv2.COLOR_GRAY2RGB), '8UC3': _Layout(3, 1, cv2.COLOR_BGR2RGB),
    '8UC4': _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    # Two bytes per pixel, chroma shared by pixel pairs.
    'yuv422': _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY), 'uyvy': _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': _Layout(2, 1, cv2.COLOR_YUV2RGB_YUYV),
    'yuyv': _Layout(2, 1, cv2.COLOR_YUV2RGB_YUYV),
    **{f'bayer_{pattern}{bits}': _Layout(1, bits // 8, code)
       for pattern, code in _BAYER.items() for bits in (8, 16)},
}


def as_bytes(data) -> np.ndarray:
    """A message's `data` (bytes, array.array('B'), numpy array, list of ints) as uint8, no copy
    where the buffer allows it."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image of any encoding in ENCODINGS -> (H, W, 3) uint8 RGB (a new array).

    Honours `step` (rows may be padded) and `is_bigendian` (16-bit data).
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise BadMessage(f'image has zero size ({width}x{height})')
    layout = ENCODINGS.get(msg.encoding)
    if layout is None:
        raise BadMessage(f'unsupported image encoding {msg.encoding!r}; supported: '
                         f'{", ".join(ENCODINGS)}')
    if layout.channels == 2 and width % 2:
        raise BadMessage(f'{msg.encoding} needs an even width, got {width}')
    row_bytes = width * layout.channels * layout.bytes_per_value
    data = as_bytes(msg.data)
    if step < row_bytes:
        raise BadMessage(f'step {step} is smaller than width * bytes per pixel = {row_bytes} '
                         f'for a {width}-pixel {msg.encoding} row')
    if data.size != step * height:
        raise BadMessage(f'image data is {data.size} bytes but step * height = '
                         f'{step} * {height} = {step * height}')
    rows = data.reshape(height, step)[:, :row_bytes]
    if layout.bytes_per_value == 2:
        order = '>' if msg.is_bigendian else '<'
        # The high byte of each value: the 8-bit image the network was trained on.
        rows = (np.ascontiguousarray(rows).view(f'{order}u2') >> 8).astype(np.uint8)
    pixels = rows.reshape(height, width, layout.channels)
    if layout.channels == 1:
        pixels = pixels[..., 0]
    if layout.to_rgb is None:
        return np.array(pixels, dtype=np.uint8, order='C')
    return cv2.cvtColor(np.ascontiguousarray(pixels), layout.to_rgb)


def is_compressed_depth(format_: str) -> bool:
    """Whether a CompressedImage `format` is image_transport's compressedDepth (depth, not a
    camera image), however a driver spells it."""
    return 'compresseddepth' in format_.replace(' ', '').lower()


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG or PNG, as image_transport's `compressed` plugin writes
    it) -> (H, W, 3) uint8 RGB. OpenCV decodes colour to BGR whatever `format` says, because
    the plugin encodes colour images from bgr8."""
    if is_compressed_depth(msg.format):
        raise BadMessage(f'format {msg.format!r} is a compressed depth image, not a camera image')
    data = as_bytes(msg.data)
    if data.size == 0:
        raise BadMessage('compressed image has no data')
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BadMessage(f'cannot decode the compressed image ({data.size} bytes, format '
                         f'{msg.format!r}): not a valid JPEG or PNG')
    if image.dtype == np.uint16:  # 16-bit PNG: keep the high byte, as for raw 16-bit images
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
