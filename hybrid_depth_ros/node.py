"""The ROS 2 node `hybrid_depth`: camera images in; depth, its camera_info, a colour-mapped depth
and a point cloud out.

Subscription callbacks only store the newest message; one inference thread takes it, runs the
pipeline and publishes, so a model slower than the camera drops frames (counted) instead of
queuing them. Bad input is logged (throttled, naming the problem) and skipped.
"""
from __future__ import annotations

import array
import sys
import threading
import time

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField

from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages.images import BadMessage
from hybrid_depth_core.runtime.predictor import scale_warning
from hybrid_depth_core.runtime.node_config import (CAMERA_INFO_TOPIC, COLORIZED_TOPIC,
                                                   DEPTH_INFO_TOPIC, DEPTH_TOPIC, IMAGE_TOPIC,
                                                   NODE_NAME, PARAMETERS, POINTS_TOPIC, NodeConfig)
from hybrid_depth_core.runtime.loader import describe, load_predictor
from hybrid_depth_core.runtime.pipeline import DepthPipeline, NoCameraInfo, Outputs
from hybrid_depth_core.runtime.frame_handoff import LatestSlot, Stats, Throttle

# Best effort matches reliable and best-effort publishers alike; depth 1 because only the
# newest frame is ever used.
INPUT_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                       reliability=ReliabilityPolicy.BEST_EFFORT,
                       durability=DurabilityPolicy.VOLATILE)
ERROR_PERIOD_S = 5.0  # the same problem is logged again at most this often
_KINDS = {bool: 'true or false', int: 'an integer', str: 'a string',
          float: 'a double (write 1.0, not 1)'}


def declare_parameters(node: Node) -> NodeConfig:
    """Declare every parameter in config.PARAMETERS (read-only: they are read once, here)."""
    values = {}
    for param in PARAMETERS:
        descriptor = ParameterDescriptor(description=param.description, read_only=True)
        if param.choices:
            descriptor.additional_constraints = f'one of: {", ".join(param.choices)}'
        if param.minimum is not None and isinstance(param.default, float):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(param.minimum), to_value=float(param.maximum), step=0.0)]
        elif param.minimum is not None:
            descriptor.integer_range = [IntegerRange(
                from_value=param.minimum, to_value=param.maximum, step=1)]
        try:
            values[param.name] = node.declare_parameter(param.name, param.default,
                                                        descriptor).value
        except InvalidParameterTypeException:
            raise UserError(f'parameter {param.name} must be {_KINDS[type(param.default)]}, '
                            f'like its default {param.default!r}') from None
        except ParameterException as error:  # out of range: rclpy's text names the bounds
            reason = str(error).removesuffix(f': {param.name}')
            raise UserError(f'parameter {param.name}: {reason}') from None
    return NodeConfig.from_values(values)


class DepthNode(Node):
    def __init__(self, **kwargs):
        """kwargs go to rclpy's Node (context, cli_args, namespace...)."""
        super().__init__(NODE_NAME, **kwargs)
        log = self.get_logger()
        self.config = config = declare_parameters(self)
        if not config.weights:
            log.warning('weights is empty: running a RANDOMLY INITIALISED network. Its depth '
                        'is meaningless; use it only to test topics and RViz. Set '
                        'weights:=/path/to/last.pt for real depth.')
        predictor = load_predictor(config)
        warning = scale_warning(predictor, config.weights)
        if warning:
            log.warning(warning)
        self._pipeline = DepthPipeline(predictor, config)
        self._slot, self._stats = LatestSlot(), Stats()
        self._throttle = Throttle(ERROR_PERIOD_S)
        self._info: CameraInfo | None = None
        self._served_first = self._warned_no_info = False

        output_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                                durability=DurabilityPolicy.VOLATILE,
                                reliability=(ReliabilityPolicy.RELIABLE
                                             if config.output_reliability == 'reliable'
                                             else ReliabilityPolicy.BEST_EFFORT))
        outputs = [(DEPTH_INFO_TOPIC, CameraInfo), (DEPTH_TOPIC, Image)]
        outputs += [(COLORIZED_TOPIC, Image)] if config.colorized else []
        outputs += [(POINTS_TOPIC, PointCloud2)] if config.publish_points else []
        self._outputs = {topic: self.create_publisher(kind, topic, output_qos)
                         for topic, kind in outputs}
        # image_transport's convention: remapping `image` also moves `image/compressed`.
        image_topic = self.resolve_topic_name(IMAGE_TOPIC)
        if config.image_transport == 'compressed':
            image_topic, image_type = image_topic + '/compressed', CompressedImage
        else:
            image_type = Image
        self.create_subscription(image_type, image_topic, self._on_image, INPUT_QOS)
        self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_info, INPUT_QOS)
        self.create_timer(1.0, self._log_stats)

        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._serve, name='hybrid_depth_inference',
                                        daemon=True)
        self._worker.start()
        log.info(f'{describe(predictor)}; {image_topic} + '
                 f'{self.resolve_topic_name(CAMERA_INFO_TOPIC)} -> '
                 f'{", ".join(self.resolve_topic_name(t) for t in self._outputs)}')

    def stop(self) -> None:
        self._stop.set()
        self._slot.close()
        self._worker.join(timeout=10)

    def _on_image(self, msg) -> None:
        if self._slot.put((msg, time.monotonic())):
            self._stats.dropped()

    def _on_info(self, msg: CameraInfo) -> None:
        self._info = msg  # the newest calibration; one reference assignment, thread-safe

    def _serve(self) -> None:
        while not self._stop.is_set():
            item = self._slot.take(timeout=0.5)
            if item is not None:
                self._serve_one(*item)

    def _serve_one(self, image, received: float) -> None:
        try:
            outputs = self._pipeline.process(image, self._info)
            if not self.context.ok():
                return  # shutting down: the publishers are going away
            self._publish(outputs)
        except NoCameraInfo as error:
            if not self._warned_no_info:
                self._warned_no_info = True
                self.get_logger().warning(str(error))
        except BadMessage as error:
            self._report(f'bad input: {error}')
        except Exception as error:  # never let one frame end the node
            if self.context.ok():
                self._report(f'frame failed: {type(error).__name__}: {error}')
        else:
            self._stats.served(time.monotonic() - received)

    def _publish(self, outputs: Outputs) -> None:
        self._outputs[DEPTH_INFO_TOPIC].publish(CameraInfo(**outputs.camera_info))
        self._outputs[DEPTH_TOPIC].publish(_image(outputs.depth))
        if outputs.colorized is not None:
            self._outputs[COLORIZED_TOPIC].publish(_image(outputs.colorized))
        if outputs.points is not None:
            self._outputs[POINTS_TOPIC].publish(_cloud(outputs.points))
        if not self._served_first:
            self._served_first = True
            depth = outputs.depth
            self.get_logger().info(f'first depth image published: {depth["width"]}x'
                                   f'{depth["height"]} in frame {depth["header"].frame_id!r}')

    def _report(self, message: str) -> None:
        self._stats.bad()
        if self._throttle.ready(message):
            self.get_logger().error(message)

    def _log_stats(self) -> None:
        line = self._stats.report()
        if line is not None:
            self.get_logger().info(line)


def _image(fields: dict) -> Image:
    # array.array: rclpy's setter takes it without checking every byte in Python.
    return Image(**{**fields, 'data': array.array('B', fields['data'])})


def _cloud(fields: dict) -> PointCloud2:
    return PointCloud2(**{**fields, 'fields': [PointField(**f) for f in fields['fields']],
                          'data': array.array('B', fields['data'])})


def main(argv: list[str] | None = None) -> int:
    """`depth_node` / `hybrid-depth node`. argv: ROS arguments (without the program name)."""
    try:
        rclpy.init(args=sys.argv if argv is None else [NODE_NAME, *argv])
    except Exception as error:  # rclpy's RCLError (private class): malformed ROS arguments
        print(f'{NODE_NAME}: error: {str(error).splitlines()[0]}', file=sys.stderr)
        return 2
    node = None
    try:
        node = DepthNode()
        rclpy.spin(node)
    except UserError as error:
        print(f'{NODE_NAME}: error: {error}', file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # SIGTERM while starting up: rclpy's handler shut the context down under the
        # constructor, which then fails creating publishers. That is a clean stop, not an error.
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
