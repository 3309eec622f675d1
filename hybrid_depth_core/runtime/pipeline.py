"""One frame through the node, without ROS: an image message and the newest camera_info in, the
fields of every output message out. The node wraps threads and topics around this."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hybrid_depth_core.messages import outputs
from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.messages.camera_info import camera_from_info, info_fields
from hybrid_depth_core.messages.images import BadMessage, compressed_to_rgb, image_to_rgb
from hybrid_depth_core.runtime.predictor import DepthPredictor, continues_sequence
from hybrid_depth_core.runtime.node_config import NodeConfig
from hybrid_depth_core.messages.header import stamp_ns


class NoCameraInfo(BadMessage):
    """No camera_info has arrived yet (and fallback_fov is off)."""


@dataclass
class Outputs:
    depth: dict             # sensor_msgs/Image fields (32FC1)
    camera_info: dict       # sensor_msgs/CameraInfo fields of the depth image
    colorized: dict | None  # sensor_msgs/Image fields (rgb8), if configured
    points: dict | None     # sensor_msgs/PointCloud2 fields, if configured
    # Multi-frame inference matched this frame against the frame this many frames back (its
    # keyframe: the most recent with enough image motion); None: single-frame.
    lookup_age: int | None

    @property
    def used_previous(self) -> bool:
        """Multi-frame inference with an earlier frame (a keyframe, not only the previous)."""
        return self.lookup_age is not None


@dataclass
class _Frame:
    size: tuple[int, ...]
    stamp_ns: int
    frame_id: str


class DepthPipeline:
    """process(image, camera_info, received_ns) -> Outputs; raises BadMessage naming what is
    wrong."""

    def __init__(self, predictor: DepthPredictor, config: NodeConfig):
        self.predictor, self.config = predictor, config
        self._previous: _Frame | None = None

    def process(self, image, info, received_ns: int | None = None) -> Outputs:
        """`received_ns`: when the image arrived (a bag's receive time, the node's clock), the
        frame's time when a driver leaves its stamp 0, so that multi-frame matching still sees
        a sequence (the published headers keep the stamp as it came)."""
        config, header = self.config, image.header
        decode = compressed_to_rgb if config.image_transport == 'compressed' else image_to_rgb
        rgb = decode(image)
        camera, rectifier = self._camera(info, rgb.shape[1], rgb.shape[0])
        if rectifier is not None:
            rgb = rectifier(rgb)
        frame = _Frame(rgb.shape, stamp_ns(image, received_ns), header.frame_id)
        resolution = config.output_resolution
        if self.predictor.multi_frame and not config.single_frame:
            if self._new_sequence(frame):
                self.predictor.reset()
            # The predictor picks the keyframe and keeps its features: one encoder pass.
            depth = self.predictor.stream(rgb, camera.K, resolution)
            lookup_age = self.predictor.last_lookup_age
        else:
            depth = self.predictor.predict(rgb, camera.K, resolution=resolution)
            lookup_age = None
        self._previous = frame
        if resolution == 'model':  # the network input's camera, and its pixels for the cloud
            framing = self.predictor.framing(camera.width, camera.height, camera.K)
            camera, rgb = framing.network, framing.network_image(rgb)
        depth = outputs.mask_depth(depth, config.min_depth, config.max_depth)
        return Outputs(
            depth=outputs.depth_image_fields(depth, header),
            camera_info=info_fields(camera, header),
            colorized=(outputs.colorized_fields(depth, header, config.min_depth,
                                                config.max_depth) if config.colorized else None),
            points=(outputs.point_cloud_fields(depth, camera.K, rgb, header, config.cloud_stride)
                    if config.publish_points else None),
            lookup_age=lookup_age)

    def _camera(self, info, width: int, height: int) -> tuple[PinholeCamera, Callable | None]:
        uncalibrated = info is None or not np.any(np.asarray(info.k))
        if uncalibrated and self.config.fallback_fov:
            return PinholeCamera.from_fov(width, height, self.config.fallback_fov), None
        if info is None:
            raise NoCameraInfo('no camera_info received yet; waiting for it (or set the '
                               'fallback_fov parameter)')
        return camera_from_info(info, width, height, self.config.rectify)

    def _new_sequence(self, frame: _Frame) -> bool:
        """Whether `frame` starts a new sequence, whose frames must not be matched against the
        earlier ones: the image size or frame id changed, stamps went back (as when a bag
        loops), or a long gap (predictor.continues_sequence). Within a sequence the predictor's
        stream matches each frame against its keyframe, the most recent earlier frame with
        enough image motion, and runs single-frame while there is none (the first frame, a
        camera standing still)."""
        previous = self._previous
        return (previous is None or previous.size != frame.size
                or previous.frame_id != frame.frame_id
                or not continues_sequence(previous.stamp_ns, frame.stamp_ns))
