"""Write a synthetic drive or room walk as a rosbag2, the way a camera driver and a recorder
would have."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer
from tqdm import tqdm

from hybrid_depth_core.atomic import new_output_directory
from hybrid_depth_core.data.synthetic import RenderedSequence
from hybrid_depth_core.messages import bag_messages as msgs

CAMERA_FRAME = 'camera_optical_frame'
WORLD_FRAME = 'world'
IMAGE_TOPIC = '/camera/image_raw'
COMPRESSED_TOPIC = '/camera/image_raw/compressed'
CAMERA_INFO_TOPIC = '/camera/camera_info'
DEPTH_GT_TOPIC = '/camera/depth_gt'
POSE_TOPIC = '/camera/pose'
TF_TOPIC = '/tf'
STORAGE_PLUGINS = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}


@dataclass(frozen=True)
class BagSummary:
    path: Path
    storage: str
    messages: dict[tuple[str, str], int]  # (topic, type) -> count
    size_bytes: int


def write_drive_bag(drive: RenderedSequence, out: Path, storage: str = 'mcap',
                    compressed: bool = False, jpeg_quality: int = 90,
                    progress: bool = True) -> BagSummary:
    """Render every frame of `drive` (a SyntheticDrive or RoomWalk) into a new bag at `out`
    (which must not exist).

    Topics: the image (rgb8 Image, or JPEG CompressedImage), camera_info, the exact depth
    (32FC1 metres, NaN = sky), all stamped with the frame's time and `camera_optical_frame`;
    the camera pose in `world` as PoseStamped and as /tf (so RViz can show the drive).
    """
    out = Path(out)
    if storage not in STORAGE_PLUGINS:
        raise ValueError(f'storage must be one of {sorted(STORAGE_PLUGINS)}, got {storage!r}')
    counts: Counter = Counter()
    K, width, height = drive.camera.K, drive.camera.width, drive.camera.height
    with new_output_directory(out) as staging:
        with Writer(staging, version=9, storage_plugin=STORAGE_PLUGINS[storage]) as writer:
            image_topic, image_type = ((COMPRESSED_TOPIC, 'sensor_msgs/msg/CompressedImage')
                                       if compressed else (IMAGE_TOPIC, 'sensor_msgs/msg/Image'))
            topics = [(image_topic, image_type),
                      (CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo'),
                      (DEPTH_GT_TOPIC, 'sensor_msgs/msg/Image'),
                      (POSE_TOPIC, 'geometry_msgs/msg/PoseStamped'),
                      (TF_TOPIC, 'tf2_msgs/msg/TFMessage')]
            connections = {topic: writer.add_connection(topic, msgtype, typestore=msgs.TYPESTORE)
                           for topic, msgtype in topics}

            def write(topic: str, msgtype: str, message, stamp_ns: int):
                data = msgs.TYPESTORE.serialize_cdr(message, msgtype)
                writer.write(connections[topic], stamp_ns, data)
                counts[(topic, msgtype)] += 1

            frames = tqdm(drive, total=len(drive), desc=f'rendering {out.name}', unit='frame',
                          disable=not progress)
            for frame in frames:
                camera = msgs.header(frame.stamp_ns, CAMERA_FRAME)
                world = msgs.header(frame.stamp_ns, WORLD_FRAME)
                image = (msgs.jpeg_image(frame.rgb, camera, jpeg_quality) if compressed
                         else msgs.rgb_image(frame.rgb, camera))
                write(image_topic, image_type, image, frame.stamp_ns)
                write(CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo',
                      msgs.camera_info(K, width, height, camera), frame.stamp_ns)
                write(DEPTH_GT_TOPIC, 'sensor_msgs/msg/Image',
                      msgs.depth_image(frame.depth, camera), frame.stamp_ns)
                write(POSE_TOPIC, 'geometry_msgs/msg/PoseStamped',
                      msgs.pose_stamped(frame.T_world_cam, world), frame.stamp_ns)
                write(TF_TOPIC, 'tf2_msgs/msg/TFMessage',
                      msgs.tf_message(frame.T_world_cam, world, CAMERA_FRAME), frame.stamp_ns)
        size = sum(f.stat().st_size for f in staging.rglob('*') if f.is_file())
    return BagSummary(path=out, storage=storage, messages=dict(counts), size_bytes=size)
