"""Offline inference bag -> bag: every image of a recording through the node's own pipeline
(decoding, rectification, multi-frame lookup, output messages), written to a new bag. No ROS
install needed: the pipeline works on rosbags messages as it does on rclpy ones."""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from hybrid_depth_core.atomic import check_output_directory, new_output_directory
from hybrid_depth_core.recordings.bag_reader import Bag, SkippedImages
from hybrid_depth_core.recordings.storage import bag_file_writer
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages.builders import TYPESTORE, from_fields
from hybrid_depth_core.messages.images import BadMessage
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.runtime.node_config import (DEPTH_INFO_TOPIC, DEPTH_TOPIC, POINTS_TOPIC,
                                                   NodeConfig, fully_qualified_namespace)
from hybrid_depth_core.runtime.pipeline import DepthPipeline
from hybrid_depth_core.messages.header import stamp_ns


@dataclass(frozen=True)
class InferSummary:
    out: Path
    frames: int
    multi_frame_frames: int
    messages: dict[str, int]  # topic -> count written
    skipped: str | None = None  # the undecodable images left out, in one line


def output_topics(image_topic: str, namespace: str | None) -> dict[str, str]:
    """Output topic names: the node's, under `namespace` (default: the image topic's namespace,
    so /camera/image_raw gives /camera/depth/image, /camera/depth/camera_info,
    /camera/depth/points). `namespace` as fully_qualified_namespace gives it (infer_bag checks
    it before reading the bag)."""
    if namespace is None:
        namespace = image_topic.removesuffix('/compressed').rsplit('/', 1)[0]
    return {'depth': f'{namespace}/{DEPTH_TOPIC}',
            'camera_info': f'{namespace}/{DEPTH_INFO_TOPIC}',
            'points': f'{namespace}/{POINTS_TOPIC}'}


def infer_bag(predictor: DepthPredictor, bag_path: Path, out: Path, config: NodeConfig,
              image_topic: str | None = None, camera_info_topic: str | None = None,
              namespace: str | None = None, storage: str = 'mcap',
              progress: bool = True, allow_partial: bool = False) -> InferSummary:
    """Write OUT (a new bag; refused if it exists) with the input's image and camera_info
    messages, byte for byte, plus depth/image (32FC1), depth/camera_info and,
    if config.publish_points, depth/points, each stamped like its image. OUT appears only
    complete. A bag that gives no depth at all (every image skipped: undecodable, or its
    camera_info does not fit it) is a UserError naming the first problem, and OUT is not
    written."""
    check_output_directory(out, [bag_path])  # before any work; the input is only read
    if namespace is not None:  # a bad name fails before the bag is read
        namespace = fully_qualified_namespace(namespace, '--namespace')
    with Bag(bag_path, image_topic, camera_info_topic, allow_partial) as bag:
        transport = 'compressed' if bag.image_type.endswith('CompressedImage') else 'raw'
        if not bag.message_count(bag.image_topic):
            raise UserError(f'bag {bag.path} has no messages on {bag.image_topic}')
        # The colorized image is for live viewing; a bag keeps the depth itself.
        pipeline = DepthPipeline(predictor, dataclasses.replace(
            config, image_transport=transport, colorized=False))
        infos = bag.camera_infos()
        if not len(infos) and not config.fallback_fov:
            raise UserError(f'bag {bag.path} has no camera_info for {bag.image_topic}; name '
                            f'its topic with --camera-info-topic or assume a field of view '
                            f'with --fallback-fov DEGREES')
        topics = output_topics(bag.image_topic, namespace)
        inputs = [bag.image_topic] + ([bag.camera_info_topic] if bag.camera_info_topic else [])
        counts: Counter = Counter()
        frames = multi = 0
        with new_output_directory(out) as staging:
            with bag_file_writer(staging, storage) as writer:
                connections = {topic: writer.add_connection(topic, msgtype,
                                                            typestore=bag.reader.typestore)
                               for topic, msgtype in bag.topics_of(
                                   {bag.image_type, 'sensor_msgs/msg/CameraInfo'}).items()
                               if topic in inputs}
                for name, msgtype in (('depth', 'sensor_msgs/msg/Image'),
                                      ('camera_info', 'sensor_msgs/msg/CameraInfo'),
                                      ('points', 'sensor_msgs/msg/PointCloud2')):
                    if name != 'points' or config.publish_points:
                        connections[topics[name]] = writer.add_connection(
                            topics[name], msgtype, typestore=TYPESTORE)

                def write(topic: str, time_ns: int, raw: bytes) -> None:
                    writer.write(connections[topic], time_ns, raw)
                    counts[topic] += 1

                skipped = SkippedImages(bag.path, bag.message_count(bag.image_topic))
                bar = tqdm(total=bag.message_count(bag.image_topic), unit='frame',
                           desc=f'inferring {Path(bag_path).name}', disable=not progress)
                images = 0
                for item in bag.messages(inputs):
                    write(item.topic, item.time_ns, item.raw)
                    if item.topic != bag.image_topic:
                        continue
                    images += 1
                    info = infos.nearest(stamp_ns(item.message, item.time_ns))
                    try:
                        result = pipeline.process(item.message, info, item.time_ns)
                    except BadMessage as error:  # left out, as the node does
                        skipped.add(f'image at {item.time_ns / 1e9:.3f} s: {error}')
                        bar.update(1)
                        continue
                    outputs = [('depth', 'sensor_msgs/msg/Image', result.depth),
                               ('camera_info', 'sensor_msgs/msg/CameraInfo',
                                result.camera_info),
                               ('points', 'sensor_msgs/msg/PointCloud2', result.points)]
                    for name, msgtype, fields in outputs:
                        if fields is not None:
                            message = from_fields(msgtype, fields)
                            write(topics[name], item.time_ns,
                                  TYPESTORE.serialize_cdr(message, msgtype))
                    frames += 1
                    multi += result.used_previous
                    bar.update(1)
                bar.close()
                if not frames:  # raised here, the staged bag is removed: OUT never appears
                    raise UserError(_nothing_inferred(bag, skipped, images, out))
    return InferSummary(Path(out), frames, multi, dict(counts), skipped.report())


def _nothing_inferred(bag: Bag, skipped: SkippedImages, images: int, out: Path) -> str:
    """Why a bag gave no depth at all, in one line: a copy of its images without depth is no
    result, so the command fails instead of writing one."""
    if not images:  # (only a damaged recording read with allow_partial gets here)
        why = f'no image could be read ({bag.damage or "the recording ends before the first"})'
    elif images == 1:
        why = f'its one image was skipped ({skipped.first})'
    else:
        why = f'all {images} images were skipped (the first: {skipped.first})'
    return f'bag {bag.path}: no depth on {bag.image_topic}: {why}; nothing written to {out}'
