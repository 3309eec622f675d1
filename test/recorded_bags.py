"""Messages and bags as robots record them, written by the tests: grey cameras, depth cameras
in image_transport's compressedDepth format, bags of any messages in any order."""
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from hybrid_depth_core.messages import builders as msgs

IMAGE = msgs.TYPESTORE.types['sensor_msgs/msg/Image']
COMPRESSED = msgs.TYPESTORE.types['sensor_msgs/msg/CompressedImage']


def write_bag(path: Path, messages, storage: str = 'mcap') -> Path:
    """A bag of (topic, msgtype, message, time ns) in the given order."""
    with Writer(path, version=9, storage_plugin=StoragePlugin[storage.upper()]) as writer:
        connections = {}
        for topic, msgtype, message, time_ns in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype,
                                                           typestore=msgs.TYPESTORE)
            writer.write(connections[topic], time_ns,
                         msgs.TYPESTORE.serialize_cdr(message, msgtype))
    return path


def grey_image(rgb: np.ndarray, header):
    """A mono8 sensor_msgs/Image of an RGB frame's luminance."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return IMAGE(header=header, height=grey.shape[0], width=grey.shape[1], encoding='mono8',
                 is_bigendian=0, step=grey.shape[1], data=grey.reshape(-1))


def millimetre_image(depth_m: np.ndarray, header):
    """A 16UC1 sensor_msgs/Image in millimetres, 0 where there is no depth."""
    mm = np.nan_to_num(np.round(depth_m * 1000), nan=0).clip(0, 65535).astype('<u2')
    return IMAGE(header=header, height=mm.shape[0], width=mm.shape[1], encoding='16UC1',
                 is_bigendian=0, step=2 * mm.shape[1], data=mm.view(np.uint8).reshape(-1))


def compressed_depth(depth_m: np.ndarray, header, encoding: str = '16UC1',
                     depth_max: float = 10.0, quantization: float = 100.0):
    """What image_transport's compressedDepth plugin publishes (PNG): a 12-byte header (format
    INV_DEPTH = 0, quantisation A and B), then a 16-bit PNG of millimetres (16UC1) or of the
    quantised inverse depth q = A / d + B (32FC1), 0 where there is no depth or it is beyond
    `depth_max` (the plugin's parameter, 10 m by default)."""
    if encoding == '16UC1':
        mm = np.nan_to_num(np.round(depth_m * 1000), nan=0)
        stored = np.where(mm > depth_max * 1000, 0, mm).clip(0, 65535).astype(np.uint16)
        params = (0.0, 0.0)
    else:
        quant_a = quantization * (quantization + 1.0)
        quant_b = 1.0 - quant_a / depth_max
        valid = np.isfinite(depth_m) & (depth_m > 0) & (depth_m < depth_max)
        stored = np.zeros(depth_m.shape, np.uint16)
        stored[valid] = (quant_a / depth_m[valid] + quant_b).astype(np.uint16)
        params = (quant_a, quant_b)
    ok, png = cv2.imencode('.png', stored)
    assert ok
    head = np.array([(0, *params)], dtype=[('f', '<i4'), ('a', '<f4'), ('b', '<f4')])
    data = np.concatenate([np.frombuffer(head.tobytes(), np.uint8), png.reshape(-1)])
    return COMPRESSED(header=header, format=f'{encoding}; compressedDepth png', data=data)
