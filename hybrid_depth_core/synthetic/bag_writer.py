"""Write a synthetic drive or room walk as a rosbag2, the way a camera driver and a recorder
would have."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hybrid_depth_core.atomic import new_output_directory
from hybrid_depth_core.recordings.storage import bag_file_writer, storage_plugin
from hybrid_depth_core.synthetic import RenderedSequence
from hybrid_depth_core.synthetic.drive import R_BODY_OPTICAL
from hybrid_depth_core.messages import builders as msgs

CAMERA_FRAME = 'camera_optical_frame'
BASE_FRAME = 'base_link'
WORLD_FRAME = 'world'
ODOM_FRAME = 'odom'
IMAGE_TOPIC = '/camera/image_raw'
COMPRESSED_TOPIC = '/camera/image_raw/compressed'
CAMERA_INFO_TOPIC = '/camera/camera_info'
DEPTH_GT_TOPIC = '/camera/depth_gt'
POSE_TOPIC = '/camera/pose'
TF_TOPIC = '/tf'
TF_STATIC_TOPIC = '/tf_static'
ODOM_TOPIC = '/odom'
# How the robot carries the camera: T_base_camera, 0.3 m ahead of base_link and 1.2 m above it,
# looking along the base's x (REP 103 body axes; REP 105's optical frame).
T_BASE_CAMERA = np.eye(4)
T_BASE_CAMERA[:3, :3] = R_BODY_OPTICAL
T_BASE_CAMERA[:3, 3] = (0.3, 0.0, 1.2)
# What `motion` records: the TF tree world -> base_link (/tf) -> camera (/tf_static) and the
# camera's pose; odometry odom -> base_link (/odom) and the mount (/tf_static); or nothing.
MOTION_RECORDINGS = ('tf', 'odom', 'none')


@dataclass(frozen=True)
class BagSummary:
    path: Path
    storage: str
    messages: dict[tuple[str, str], int]  # (topic, type) -> count
    size_bytes: int


def write_drive_bag(drive: RenderedSequence, out: Path, storage: str = 'mcap',
                    compressed: bool = False, jpeg_quality: int = 90, motion: str = 'tf',
                    progress: bool = True) -> BagSummary:
    """Render every frame of `drive` (a SyntheticDrive or RoomWalk) into a new bag at `out`
    (which must not exist).

    Topics: the image (rgb8 Image, or JPEG CompressedImage), camera_info, the exact depth
    (32FC1 metres, NaN = sky), all stamped with the frame's time and `camera_optical_frame`;
    then the motion as a robot records it (`motion`, MOTION_RECORDINGS): 'tf': /tf world ->
    base_link and /tf_static base_link -> camera_optical_frame (T_BASE_CAMERA), and the camera
    pose in `world` on /camera/pose; 'odom': /odom (odom -> base_link) and /tf_static; 'none':
    no motion at all.
    """
    out = Path(out)
    storage_plugin(storage)  # a bad name fails here, before rendering
    if motion not in MOTION_RECORDINGS:
        raise ValueError(f'motion must be one of {MOTION_RECORDINGS}, got {motion!r}')
    counts: Counter = Counter()
    K, width, height = drive.camera.K, drive.camera.width, drive.camera.height
    with new_output_directory(out) as staging:
        with bag_file_writer(staging, storage) as writer:
            image_topic, image_type = ((COMPRESSED_TOPIC, 'sensor_msgs/msg/CompressedImage')
                                       if compressed else (IMAGE_TOPIC, 'sensor_msgs/msg/Image'))
            topics = [(image_topic, image_type),
                      (CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo'),
                      (DEPTH_GT_TOPIC, 'sensor_msgs/msg/Image')]
            if motion != 'none':
                topics.append((TF_STATIC_TOPIC, 'tf2_msgs/msg/TFMessage'))
            if motion == 'tf':
                topics += [(POSE_TOPIC, 'geometry_msgs/msg/PoseStamped'),
                           (TF_TOPIC, 'tf2_msgs/msg/TFMessage')]
            if motion == 'odom':
                topics.append((ODOM_TOPIC, 'nav_msgs/msg/Odometry'))
            connections = {topic: writer.add_connection(topic, msgtype, typestore=msgs.TYPESTORE)
                           for topic, msgtype in topics}

            def write(topic: str, msgtype: str, message, stamp_ns: int):
                data = msgs.TYPESTORE.serialize_cdr(message, msgtype)
                writer.write(connections[topic], stamp_ns, data)
                counts[(topic, msgtype)] += 1

            frames = tqdm(drive, total=len(drive), desc=f'rendering {out.name}', unit='frame',
                          disable=not progress)
            fixed = ODOM_FRAME if motion == 'odom' else WORLD_FRAME
            base_to_camera = np.linalg.inv(T_BASE_CAMERA)
            for frame in frames:
                camera = msgs.header(frame.stamp_ns, CAMERA_FRAME)
                world = msgs.header(frame.stamp_ns, fixed)
                if motion != 'none' and frame.index == 0:  # latched: once, before the images
                    write(TF_STATIC_TOPIC, 'tf2_msgs/msg/TFMessage',
                          msgs.tf_message(T_BASE_CAMERA, msgs.header(frame.stamp_ns, BASE_FRAME),
                                          CAMERA_FRAME), frame.stamp_ns)
                image = (msgs.jpeg_image(frame.rgb, camera, jpeg_quality) if compressed
                         else msgs.rgb_image(frame.rgb, camera))
                write(image_topic, image_type, image, frame.stamp_ns)
                write(CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo',
                      msgs.camera_info(K, width, height, camera), frame.stamp_ns)
                write(DEPTH_GT_TOPIC, 'sensor_msgs/msg/Image',
                      msgs.depth_image(frame.depth, camera), frame.stamp_ns)
                T_world_base = frame.T_world_cam @ base_to_camera
                if motion == 'tf':
                    write(POSE_TOPIC, 'geometry_msgs/msg/PoseStamped',
                          msgs.pose_stamped(frame.T_world_cam, world), frame.stamp_ns)
                    write(TF_TOPIC, 'tf2_msgs/msg/TFMessage',
                          msgs.tf_message(T_world_base, world, BASE_FRAME), frame.stamp_ns)
                elif motion == 'odom':
                    write(ODOM_TOPIC, 'nav_msgs/msg/Odometry',
                          msgs.odometry(T_world_base, world, BASE_FRAME), frame.stamp_ns)
        size = sum(f.stat().st_size for f in staging.rglob('*') if f.is_file())
    return BagSummary(path=out, storage=storage, messages=dict(counts), size_bytes=size)
