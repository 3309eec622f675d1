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
from hybrid_depth_core.runtime.predictor import DepthPredictor
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


class DepthPipeline:
    """process(image, camera_info, received_ns) -> Outputs; raises BadMessage naming what is
    wrong."""

    def __init__(self, predictor: DepthPredictor, config: NodeConfig):
        self.predictor, self.config = predictor, config

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
        resolution = config.output_resolution
        if self.predictor.multi_frame and not config.single_frame:
            # The predictor picks the keyframe and keeps its features: one encoder pass. The
            # stamp and the frame id tell it where a sequence breaks (a looping bag, a gap,
            # another camera): no frame is matched across.
            depth = self.predictor.stream(rgb, camera.K, resolution,
                                          stamp_ns(image, received_ns), header.frame_id)
            lookup_age = self.predictor.last_lookup_age
        else:
            depth = self.predictor.predict(rgb, camera.K, resolution=resolution)
            lookup_age = None
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
