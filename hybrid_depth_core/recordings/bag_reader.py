"""Camera frames from recorded bags, read with `rosbags` (no ROS install needed).

rosbag2 directories (or their single .db3 / .mcap file) in sqlite3 or MCAP storage; bags
without embedded type definitions (Humble's .db3) are read with Humble's message layouts.
Images are sensor_msgs/Image of every common encoding or CompressedImage (JPEG/PNG), decoded
by messages/images.py, the node's own decoder. Bags are only ever opened for reading.
"""
from __future__ import annotations

import bisect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybrid_depth_core.recordings.bag_opening import RecordingReader
from hybrid_depth_core.errors import UserError, one_line
from hybrid_depth_core.messages.header import nearest_index, stamp_ns
from hybrid_depth_core.messages.depth import is_depth_message
from hybrid_depth_core.messages.images import (ENCODINGS, BadMessage, compressed_to_rgb,
                                               image_to_rgb)

IMAGE_DECODERS = {'sensor_msgs/msg/Image': image_to_rgb,
                  'sensor_msgs/msg/CompressedImage': compressed_to_rgb}
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


@dataclass(frozen=True)
class Message:
    topic: str
    msgtype: str
    time_ns: int    # when the recorder received it
    raw: bytes      # serialised as in the bag (CDR for rosbag2)
    message: object  # deserialised


class Bag:
    """One recording, opened read-only; a context manager. Topic selection happens here so that
    every command reports a wrong or missing topic the same way."""

    def __init__(self, path: Path, image_topic: str | None = None,
                 camera_info_topic: str | None = None, allow_partial: bool = False):
        self.path = Path(path)
        self.allow_partial = allow_partial
        self._first: dict[str, object] = {}  # topic -> its first message, deserialised
        if not self.path.exists():
            raise UserError(f'bag {self.path} does not exist')
        if self.path.suffix == '.bag':
            raise UserError(f'{self.path} is a ROS 1 bag; convert it to rosbag2 first '
                            f'(rosbags-convert --src {self.path} --dst OUT)')
        if self.path.is_dir() and not (self.path / 'metadata.yaml').exists():
            storage = sorted(p.name for p in self.path.iterdir()
                             if p.suffix in ('.mcap', '.db3'))
            hint = (f'; give the storage file itself, e.g. {self.path / storage[0]}' if storage
                    else ', and no .mcap or .db3 file either')
            raise UserError(f'bag {self.path} has no metadata.yaml{hint}')
        self.reader = RecordingReader(self.path, allow_partial)
        try:
            self.image_topic, self.image_type = self._image_topic(image_topic)
            self.camera_info_topic = self._camera_info_topic(camera_info_topic)
        except BaseException:
            self.close()
            raise

    @property
    def damage(self) -> str | None:
        """What was lost to damage (skipped or cut), None if nothing."""
        return self.reader.damage

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> Bag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def topics_of(self, msgtypes) -> dict[str, str]:
        return {c.topic: c.msgtype for c in self.reader.connections if c.msgtype in msgtypes}

    def message_count(self, topic: str) -> int:
        return sum(c.msgcount for c in self.reader.connections if c.topic == topic)

    def _image_topic(self, requested: str | None) -> tuple[str, str]:
        if requested:
            images = self.topics_of(IMAGE_DECODERS)
            if requested not in images:
                raise UserError(f'bag {self.path} has no image topic {requested!r}; image topics '
                                f'in it: {_listing(images)}')
            first = self.first_message(requested)
            if first is not None and is_depth_message(first):
                raise UserError(f'bag {self.path}: {requested} holds depth images, not a '
                                f'camera\'s; camera image topics in it: '
                                f'{_listing(self._camera_topics())}')
            return requested, images[requested]
        cameras = self._camera_topics()
        if len(cameras) != 1:
            raise UserError(f'bag {self.path} has {len(cameras)} camera image topics '
                            f'({_listing(cameras)}); choose one with --image-topic')
        return next(iter(cameras.items()))

    def _camera_topics(self) -> dict[str, str]:
        """The image topics that can be the camera: with messages, not depth, and (raw images)
        in an encoding the decoder knows."""
        cameras = {}
        for topic, msgtype in self.topics_of(IMAGE_DECODERS).items():
            first = self.first_message(topic)
            if first is None or is_depth_message(first):  # no messages, or depth
                continue
            if msgtype == 'sensor_msgs/msg/Image' and getattr(first, 'encoding', None) \
                    not in ENCODINGS:
                continue
            cameras[topic] = msgtype
        return cameras

    def depth_topics(self) -> dict[str, str]:
        """The Image and CompressedImage topics that carry depth (by their first message's
        encoding or format: messages/depth.py), topic -> message type."""
        return {topic: msgtype for topic, msgtype in self.topics_of(IMAGE_DECODERS).items()
                if (first := self.first_message(topic)) is not None and is_depth_message(first)}

    def first_message(self, topic: str):
        """The first message on `topic`, deserialised (read once); None if it has none."""
        if topic not in self._first:
            self._first[topic] = next((item.message for item in self.messages([topic])), None)
        return self._first[topic]

    def _camera_info_topic(self, requested: str | None) -> str | None:
        infos = self.topics_of({CAMERA_INFO_TYPE})
        if requested:
            if requested not in infos:
                raise UserError(f'bag {self.path} has no camera_info topic {requested!r}; '
                                f'camera_info topics in it: {_listing(infos)}')
            return requested
        # The image's sibling (image_transport's convention), else the only one there is.
        namespace = self.image_topic.removesuffix('/compressed').rsplit('/', 1)[0]
        sibling = f'{namespace}/camera_info'
        if sibling in infos:
            return sibling
        return next(iter(infos)) if len(infos) == 1 else None

    def messages(self, topics: list[str]) -> Iterator[Message]:
        """The messages of `topics` in receive-time order. Damage stops with an error naming
        the bag, or, with allow_partial, is skipped and reported (bag_opening); so is a
        message that does not deserialise."""
        for connection, time_ns, raw in self.reader.messages(topics):
            try:
                message = self.reader.deserialize(raw, connection.msgtype)
            except Exception as error:  # a damaged message in a chunk without a CRC
                problem = (f'bag {self.path}: the message at {time_ns / 1e9:.3f} s on '
                           f'{connection.topic} does not deserialise ({one_line(error)})')
                if not self.allow_partial:
                    raise UserError(f'{problem}; --allow-partial-bags skips it') from None
                print(f'warning: {problem}; skipped', file=sys.stderr)
                continue
            yield Message(connection.topic, connection.msgtype, time_ns, bytes(raw), message)

    def camera_infos(self) -> CameraInfoTrack:
        """Every camera_info of the bag, for looking up the one nearest to an image."""
        track = CameraInfoTrack()
        if self.camera_info_topic is not None:
            for item in self.messages([self.camera_info_topic]):
                track.add(stamp_ns(item.message, item.time_ns), item.message)
        return track

    def image_stamps(self) -> np.ndarray:
        """(N,) int64 header stamps of every image, in recording order (nothing decoded)."""
        return np.array([stamp_ns(item.message, item.time_ns)
                         for item in self.messages([self.image_topic])], np.int64)

    def images(self, skipped: SkippedImages | None = None
               ) -> Iterator[tuple[int, np.ndarray, object]]:
        """(stamp ns, decoded (H, W, 3) uint8 RGB, the message) per image, in recording order.
        An undecodable image stops with an error naming the bag, the stamp and the problem, or,
        given `skipped`, is counted there and left out."""
        for item in self.messages([self.image_topic]):
            rgb = self.decode(item, skipped)
            if rgb is not None:
                yield stamp_ns(item.message, item.time_ns), rgb, item.message

    def decode(self, item: Message, skipped: SkippedImages | None = None) -> np.ndarray | None:
        """One image message -> (H, W, 3) uint8 RGB (a grey camera's one channel in all three);
        undecodable: a UserError, or, given `skipped`, counted there and None."""
        try:
            return IMAGE_DECODERS[self.image_type](item.message)
        except BadMessage as error:
            stamp = stamp_ns(item.message, item.time_ns)
            problem = f'image at {stamp / 1e9:.3f} s on {self.image_topic}: {error}'
            if skipped is None:
                raise UserError(f'bag {self.path}: {problem}') from None
            skipped.add(problem)
            return None


class SkippedImages:
    """Undecodable images that inference and evaluation leave out, as the node does, counted
    so that the command can say so at the end; past `limit` of them the bag is more damage than
    recording and reading stops."""

    def __init__(self, bag: Path, images: int):
        self.bag, self.count, self.first = Path(bag), 0, None
        self.limit = max(10, images // 10)

    def add(self, problem: str) -> None:
        self.count += 1
        self.first = self.first or problem
        if self.count > self.limit:
            raise UserError(f'bag {self.bag}: more than {self.limit} undecodable images, '
                            f'stopping (the first: {self.first})')

    def report(self) -> str | None:
        """One line for the end of the command; None if nothing was skipped."""
        if not self.count:
            return None
        return (f'skipped {self.count} undecodable image{"s" * (self.count > 1)} of '
                f'{self.bag} (the first: {self.first})')


class CameraInfoTrack:
    """camera_info messages by stamp; `nearest(stamp)` is the one closest in time."""

    def __init__(self):
        self.stamps: list[int] = []
        self.infos: list = []

    def add(self, stamp: int, info) -> None:
        index = bisect.bisect(self.stamps, stamp)
        self.stamps.insert(index, stamp)
        self.infos.insert(index, info)

    def __len__(self) -> int:
        return len(self.stamps)

    def nearest(self, stamp: int):
        index = nearest_index(self.stamps, stamp)
        return None if index is None else self.infos[index]


def _listing(topics: dict[str, str]) -> str:
    return ', '.join(f'{topic} ({msgtype})' for topic, msgtype in sorted(topics.items())) or 'none'
