"""ROS 2 messages as `rosbags` objects, built from arrays: pure functions, no ROS install needed.

Layouts follow REP 118 and image_transport: 32FC1 depth in metres, little-endian,
step = width * bytes per pixel; CameraInfo K and P of the rectified image. No-depth pixels
(sky) are NaN, which depth_image_proc and RViz skip (REP 117 would say +Inf for "too far";
NaN is what this project's depth topics use throughout).
"""
from __future__ import annotations

import cv2
import numpy as np
from rosbags.typesys import Stores, get_typestore

from hybrid_depth_core.messages import outputs
from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.messages.camera_info import info_fields

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
_msg = TYPESTORE.types


def header(stamp_ns: int, frame_id: str):
    sec, nanosec = divmod(int(stamp_ns), 10**9)
    return _msg['std_msgs/msg/Header'](
        stamp=_msg['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec), frame_id=frame_id)


def rgb_image(rgb: np.ndarray, hdr):
    """sensor_msgs/Image, encoding rgb8, from an (H, W, 3) uint8 array."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}')
    height, width = rgb.shape[:2]
    return _msg['sensor_msgs/msg/Image'](
        header=hdr, height=height, width=width, encoding='rgb8', is_bigendian=0, step=width * 3,
        data=np.ascontiguousarray(rgb).reshape(-1))


def jpeg_image(rgb: np.ndarray, hdr, quality: int = 90):
    """sensor_msgs/CompressedImage as image_transport's `compressed` plugin writes it."""
    ok, encoded = cv2.imencode('.jpg', np.ascontiguousarray(rgb[..., ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError('OpenCV failed to JPEG-encode the image')
    return _msg['sensor_msgs/msg/CompressedImage'](
        header=hdr, format='rgb8; jpeg compressed bgr8', data=encoded.reshape(-1))


def depth_image(depth: np.ndarray, hdr):
    """sensor_msgs/Image, encoding 32FC1 (metres, little-endian), from an (H, W) array."""
    if depth.ndim != 2:
        raise ValueError(f'expected an (H, W) depth map, got shape {depth.shape}')
    return from_fields('sensor_msgs/msg/Image', outputs.depth_image_fields(depth, hdr))


def camera_info(K: np.ndarray, width: int, height: int, hdr):
    """sensor_msgs/CameraInfo of an undistorted pinhole camera (plumb_bob with zero D)."""
    camera = PinholeCamera.from_matrix(K, width, height)
    return from_fields('sensor_msgs/msg/CameraInfo', info_fields(camera, hdr))


def from_fields(msgtype: str, fields: dict):
    """A rosbags message from the field dict of messages/outputs.py or camera_info.info_fields:
    byte blobs and number lists become the numpy arrays rosbags serialises, PointField dicts
    become PointField messages, and a missing `roi` the empty one."""
    fields = dict(fields)
    if isinstance(fields.get('data'), (bytes, bytearray, memoryview)):
        fields['data'] = np.frombuffer(fields['data'], dtype=np.uint8)
    if 'fields' in fields:
        fields['fields'] = [_msg['sensor_msgs/msg/PointField'](**f) for f in fields['fields']]
    if msgtype == 'sensor_msgs/msg/CameraInfo':
        for name in ('d', 'k', 'r', 'p'):
            fields[name] = np.asarray(fields[name], dtype=np.float64)
        fields.setdefault('roi', _msg['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    return _msg[msgtype](**fields)


def pose_stamped(T: np.ndarray, hdr):
    """geometry_msgs/PoseStamped of a 4x4 rigid transform (the child's pose in hdr.frame_id)."""
    return _msg['geometry_msgs/msg/PoseStamped'](header=hdr, pose=_pose(T))


def odometry(T: np.ndarray, hdr, child_frame_id: str):
    """nav_msgs/Odometry: the pose of child_frame_id in hdr.frame_id (zero twist, zero
    covariance: only the pose is recorded)."""
    covariance = np.zeros(36)
    return _msg['nav_msgs/msg/Odometry'](
        header=hdr, child_frame_id=child_frame_id,
        pose=_msg['geometry_msgs/msg/PoseWithCovariance'](pose=_pose(T), covariance=covariance),
        twist=_msg['geometry_msgs/msg/TwistWithCovariance'](
            twist=_msg['geometry_msgs/msg/Twist'](linear=_vector((0, 0, 0)),
                                                  angular=_vector((0, 0, 0))),
            covariance=covariance))


def tf_message(T: np.ndarray, hdr, child_frame_id: str):
    """tf2_msgs/TFMessage with one transform: hdr.frame_id -> child_frame_id."""
    x, y, z, w = rotation_to_quaternion(T[:3, :3])
    transform = _msg['geometry_msgs/msg/TransformStamped'](
        header=hdr, child_frame_id=child_frame_id,
        transform=_msg['geometry_msgs/msg/Transform'](
            translation=_vector(T[:3, 3]),
            rotation=_msg['geometry_msgs/msg/Quaternion'](x=x, y=y, z=z, w=w)))
    return _msg['tf2_msgs/msg/TFMessage'](transforms=[transform])


def _pose(T: np.ndarray):
    x, y, z, w = rotation_to_quaternion(T[:3, :3])
    return _msg['geometry_msgs/msg/Pose'](
        position=_msg['geometry_msgs/msg/Point'](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
        orientation=_msg['geometry_msgs/msg/Quaternion'](x=x, y=y, z=z, w=w))


def _vector(v):
    return _msg['geometry_msgs/msg/Vector3'](x=float(v[0]), y=float(v[1]), z=float(v[2]))


def rotation_to_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """3x3 rotation -> unit quaternion (x, y, z, w) with w >= 0 (Shepperd's method)."""
    trace = np.trace(R)
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = ((R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4)
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = [0.0, 0.0, 0.0, (R[k, j] - R[j, k]) / s]
        q[i] = s / 4
        q[j] = (R[j, i] + R[i, j]) / s
        q[k] = (R[k, i] + R[i, k]) / s
    q = np.array(q) * (1 if q[3] >= 0 else -1)
    return tuple(float(v) for v in q / np.linalg.norm(q))
