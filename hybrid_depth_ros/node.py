"""The ROS 2 node `hybrid_depth`: camera images in; depth, its camera_info, a colour-mapped depth
and a point cloud out.

Subscription callbacks only store the newest image (and the recent camera_info messages, by
stamp); one inference thread takes the image, pairs it with its calibration, runs the pipeline
and publishes, so a model slower than the camera skips frames (counted) instead of queuing
them. Bad input is logged (throttled, naming the problem) and skipped; inference that keeps
failing ends the node with an error (max_failures). Once a second: a log line and a status on
/diagnostics.
"""
from __future__ import annotations

import array
import os
import sys
import threading
import time
import traceback

import cv2
import rclpy
import torch
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages.header import stamp_ns
from hybrid_depth_core.messages.images import BadMessage
from hybrid_depth_core.runtime.predictor import scale_warning
from hybrid_depth_core.runtime.node_config import (CAMERA_INFO_TOPIC, COLORIZED_TOPIC,
                                                   DEPTH_INFO_TOPIC, DEPTH_TOPIC, IMAGE_TOPIC,
                                                   NODE_NAME, PARAMETERS, POINTS_TOPIC, NodeConfig)
from hybrid_depth_core.runtime.loader import describe, load_predictor
from hybrid_depth_core.runtime.node_health import health
from hybrid_depth_core.runtime.pipeline import DepthPipeline, NoCameraInfo, Outputs
from hybrid_depth_core.runtime.frame_handoff import (CalibrationStore, FailureLimit,
                                                     LatestSlot, Stats, Throttle)

# camera_info: a few deep, so that a calibration is not overwritten in the queue by the next
# one before the executor stores it for pairing by stamp.
INFO_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)
# A calibration published once, latched: only a reliable transient-local subscription gets the
# message sent before it matched, and such a subscription matches no volatile or best-effort
# publisher, hence a second subscription for this case, made once the graph shows a latched
# camera_info publisher (LATCH_CHECK_S): made at start, it would make every volatile camera
# driver log an incompatible-QoS warning in its own process.
LATCH_CHECK_S = 0.5
LATCHED_INFO_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                              reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
ERROR_PERIOD_S = 5.0  # the same problem is logged again at most this often
DIAGNOSTICS_TOPIC = '/diagnostics'  # absolute, as diagnostic_updater publishes
# How long shutting down waits for the inference thread: within ros2 launch's default 5 s
# between SIGINT and SIGTERM.
STOP_TIMEOUT_S = 3.0
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


def input_qos() -> QoSProfile:
    """The image subscription's default QoS: best effort matches reliable and best-effort
    publishers alike; depth 1 because only the newest image is ever used. A new profile per
    subscription: rclpy writes the qos_overrides parameters into the profile it is given."""
    return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def output_qos() -> QoSProfile:
    """The outputs' default QoS: reliable (what RViz subscribes with), depth 1 (the newest depth
    only), volatile. A new profile per publisher: rclpy writes the qos_overrides parameters into
    the profile it is given."""
    return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def _valid_depth(qos: QoSProfile) -> SetParametersResult:
    # rclpy takes depth 0 as the middleware's default (with a Python warning) and hands a
    # negative one to rcl, which fails with an unreadable error.
    if qos.history == HistoryPolicy.KEEP_LAST and qos.depth < 1:
        return SetParametersResult(successful=False,
                                   reason=f'depth {qos.depth} with history keep_last must be '
                                          f'at least 1')
    return SetParametersResult(successful=True)


def torch_threads(requested: int) -> int:
    """num_threads, with 0 (auto) as half the cores this process may run on, at least 1."""
    if requested:
        return requested
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
             else os.cpu_count() or 1)
    return max(1, cores // 2)


class DepthNode(Node):
    def __init__(self, **kwargs):
        """kwargs go to rclpy's Node (context, cli_args, namespace...)."""
        super().__init__(NODE_NAME, **kwargs)
        log = self.get_logger()
        self.config = config = declare_parameters(self)
        if not config.weights and config.random_weights:
            log.warning('random_weights: running a RANDOMLY INITIALISED network. Its depth '
                        'is meaningless; use it only to test topics and RViz. Set '
                        'weights:=/path/to/last.pt for real depth.')
        threads = torch_threads(config.num_threads)
        torch.set_num_threads(threads)  # before loading: the warm-up (and compile) runs with it
        cv2.setNumThreads(threads)  # the resizes, warps and colour map
        predictor = load_predictor(config, warn=log.warning)
        warning = scale_warning(predictor, config.weights)
        if warning:
            log.warning(warning)
        self._pipeline = DepthPipeline(predictor, config)
        self._device = str(predictor.device)
        self._slot, self._infos = LatestSlot(), CalibrationStore()
        self._stats = Stats(multi_frame=predictor.multi_frame and not config.single_frame)
        self._throttle = Throttle(ERROR_PERIOD_S)
        self._failures = FailureLimit(config.max_failures)
        self.fatal: str | None = None  # why inference cannot go on: main() exits with it
        self._served_first = self._warned_no_info = self._warned_zero_stamp = False
        self._busy_since: float | None = None  # monotonic start of the frame in inference

        outputs = [(DEPTH_INFO_TOPIC, CameraInfo), (DEPTH_TOPIC, Image)]
        outputs += [(COLORIZED_TOPIC, Image)] if config.colorized else []
        outputs += [(POINTS_TOPIC, PointCloud2)] if config.publish_points else []
        self._outputs = {topic: self._create_output(kind, topic) for topic, kind in outputs}
        # image_transport's convention: remapping `image` also moves `image/compressed`.
        image_topic = self.resolve_topic_name(IMAGE_TOPIC)
        if config.image_transport == 'compressed':
            image_topic, image_type = image_topic + '/compressed', CompressedImage
        else:
            image_type = Image
        self._overridable(lambda options: self.create_subscription(
            image_type, image_topic, self._on_image, input_qos(),
            qos_overriding_options=options), image_topic)
        self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_info, INFO_QOS)
        self._latched_info = None
        self._latch_watch = self.create_timer(LATCH_CHECK_S, self._watch_for_latched_info)
        self._watch_for_latched_info()
        self._input_topic = image_topic
        self._waiting: str | None = None  # what the node waits for (a camera_info)
        self._bad_input: str | None = None  # the last bad input's problem
        self._diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.create_timer(1.0, self._report_health)

        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._serve, name='hybrid_depth_inference',
                                        daemon=True)
        self._worker.start()
        log.info(f'{describe(predictor)}, {threads} CPU thread{"s" * (threads > 1)}; '
                 f'{image_topic} + '
                 f'{self.resolve_topic_name(CAMERA_INFO_TOPIC)} -> '
                 f'{", ".join(self.resolve_topic_name(t) for t in self._outputs)}')

    def _create_output(self, kind, topic: str):
        """A publisher with output_qos(), overridable by ROS 2's standard parameters
        qos_overrides.<resolved topic>.publisher.{reliability,depth,history}."""
        return self._overridable(lambda options: self.create_publisher(
            kind, topic, output_qos(), qos_overriding_options=options), topic)

    def _overridable(self, create, topic: str):
        """create(qos_overriding_options) with ROS 2's standard qos_overrides parameters for
        the endpoint (.publisher. or .subscription.), their errors as one line."""
        try:
            return create(QoSOverridingOptions.with_default_policies(callback=_valid_depth))
        except ParameterException as error:  # a value of the wrong type; the text names it
            raise UserError(str(error).rsplit(': ', 1)[0]) from None
        except InvalidQosOverridesError as error:
            raise UserError(str(error)) from None
        except RuntimeError as error:
            if 'QoS override' not in str(error):  # e.g. the context shut down under us
                raise
            raise UserError(f'qos_overrides of {self.resolve_topic_name(topic)}: {error} '
                            f'(reliability: reliable or best_effort; history: keep_last or '
                            f'keep_all)') from None

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the inference thread; whether it ended within `timeout` seconds (default
        STOP_TIMEOUT_S)."""
        self._stop.set()
        self._slot.close()
        self._worker.join(STOP_TIMEOUT_S if timeout is None else timeout)
        return not self._worker.is_alive()

    def worker_report(self, waited_s: float) -> str:
        """The line saying that the inference thread did not stop, and what it is doing."""
        busy_since = self._busy_since
        doing = ('it is between frames' if busy_since is None else
                 f'it has been in one frame for {time.monotonic() - busy_since:.0f} s '
                 f'(torch.compile for a new input size, or a long CUDA call)')
        return (f'the inference thread {self._worker.name!r} did not stop within {waited_s:g} '
                f's: {doing}')

    def _on_image(self, msg) -> None:
        # The frame's time for multi-frame matching when the driver leaves header.stamp 0.
        # (The steady clock while a simulated one has not started: /clock not yet received.)
        received_ns = self.get_clock().now().nanoseconds or time.monotonic_ns()
        if not self._warned_zero_stamp and stamp_ns(msg) == 0:
            self._warned_zero_stamp = True
            self.get_logger().warning(
                'the camera driver sends header.stamp 0: frames are timed by their arrival '
                'for matching against earlier frames; published headers keep stamp 0')
        self._stats.received()
        if self._slot.put((msg, time.monotonic(), received_ns)):
            self._stats.skipped()

    def _on_info(self, msg: CameraInfo) -> None:
        self._infos.put(stamp_ns(msg), msg)

    def _watch_for_latched_info(self) -> None:
        """Subscribe reliable + transient local once a camera_info publisher offers it."""
        if self._latched_info is not None:
            return
        publishers = self.get_publishers_info_by_topic(self.resolve_topic_name(CAMERA_INFO_TOPIC))
        if not any(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                   for p in publishers):
            return
        self._latch_watch.cancel()
        # Still incompatible with any volatile publisher on the same topic: without a callback
        # of its own rclpy would warn about each such match.
        self._latched_info = self.create_subscription(
            CameraInfo, CAMERA_INFO_TOPIC, self._on_info, LATCHED_INFO_QOS,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._volatile_info))
        self.get_logger().info('a latched camera_info publisher appeared: subscribed to it '
                               'reliable + transient local')

    def _volatile_info(self, event) -> None:
        # Expected for every camera that publishes camera_info volatile (most do): that
        # publisher reaches the other camera_info subscription.
        self.get_logger().debug('camera_info publisher not latched: read by the volatile '
                                'subscription')

    def _serve(self) -> None:
        while not self._stop.is_set():
            item = self._slot.take(timeout=0.5)
            if item is not None:
                self._serve_one(*item)

    def _serve_one(self, image, received: float, received_ns: int) -> None:
        self._busy_since = time.monotonic()
        try:
            info = self._infos.get(stamp_ns(image))
            if info is not None:
                self._waiting = None
            outputs = self._pipeline.process(image, info, received_ns)
            if not self.context.ok():
                return  # shutting down: the publishers are going away
            self._publish(outputs)
        except NoCameraInfo as error:
            self._waiting = str(error)
            if not self._warned_no_info:
                self._warned_no_info = True
                self.get_logger().warning(str(error))
        except BadMessage as error:
            self._bad_input = str(error)
            self._report(f'bad input: {error}')
        except Exception as error:  # one frame does not end the node; failing ones do
            if self.context.ok():
                self._report(f'frame failed: {type(error).__name__}: {error}', bad_input=False)
                self._fail(error)
        else:
            self._failures.succeeded()
            self._waiting = None
            self._stats.served(time.monotonic() - received, outputs.used_previous)
        finally:
            self._busy_since = None

    def _fail(self, error: Exception) -> None:
        """Count a failed frame; past max_failures (or on a device error) end the node: spin
        returns in main(), which exits non-zero with `fatal`."""
        fatal = self._failures.failed(error)
        if fatal is not None and self.fatal is None:
            self.fatal = fatal
            self.get_logger().fatal(f'{fatal}; exiting')
            self._stop.set()
            self.context.try_shutdown()

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

    def _report(self, message: str, bad_input: bool = True) -> None:
        (self._stats.bad if bad_input else self._stats.failed)()
        if self._throttle.ready(message):
            self.get_logger().error(message)

    def _report_health(self) -> None:
        """Once a second: the log line and /diagnostics."""
        interval = self._stats.take_interval()
        line = interval.line(self._stats.multi_frame)
        if line is not None:
            self.get_logger().info(line)
        last, device = self._stats.last_received, self._device
        state = health(interval, dict(self._stats.totals),
                       None if last is None else time.monotonic() - last,
                       self._failures.last_cause, self._waiting, device, self._input_topic,
                       self._bad_input)
        status = DiagnosticStatus(
            level=bytes([state.level]), name=f'{self.get_fully_qualified_name()}: depth',
            message=state.message, hardware_id=device,
            values=[KeyValue(key=key, value=value) for key, value in state.values.items()])
        stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=stamp), status=[status]))


def _image(fields: dict) -> Image:
    return Image(**{**fields, 'data': _byte_array(fields['data'])})


def _cloud(fields: dict) -> PointCloud2:
    return PointCloud2(**{**fields, 'fields': [PointField(**f) for f in fields['fields']],
                          'data': _byte_array(fields['data'])})


def _byte_array(data) -> array.array:
    """bytes or a memoryview as array.array('B'), copied once: rclpy's setter takes that
    without checking every byte in Python (and would iterate a memoryview)."""
    values = array.array('B')
    values.frombytes(data)
    return values


def main(argv: list[str] | None = None) -> int:
    """`depth_node` / `hybrid-depth node`. argv: ROS arguments (without the program name)."""
    try:
        rclpy.init(args=sys.argv if argv is None else [NODE_NAME, *argv])
    except Exception as error:  # rclpy's RCLError (private class): malformed ROS arguments
        print(f'{NODE_NAME}: error: {str(error).splitlines()[0]}', file=sys.stderr)
        return 2
    node, code = None, 0
    try:
        node = DepthNode()
        rclpy.spin(node)
    except UserError as error:
        print(f'{NODE_NAME}: error: {error}', file=sys.stderr)
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # (also how a node whose inference keeps failing ends: below)
    except Exception:
        if rclpy.ok():
            raise
        # SIGTERM while starting up: rclpy's handler shut the context down under the
        # constructor, which then fails creating publishers. That is a clean stop, not an error.
    finally:
        if node is not None:
            if not node.stop():
                _leave_without(node, code if sys.exc_info()[0] is None else 1)
            node.destroy_node()
        rclpy.try_shutdown()
    if node is not None and node.fatal:
        print(f'{NODE_NAME}: error: {node.fatal}', file=sys.stderr)
        code = 1
    return code


def _leave_without(node: DepthNode, code: int) -> None:
    """End the process at once, leaving the inference thread running: destroying the node and
    the context (and torch's teardown at exit) under a thread still inside them can hang or
    crash, and a robot's launch should see the node end, with its usual exit code."""
    print(f'{NODE_NAME}: {node.worker_report(STOP_TIMEOUT_S)}; exiting without waiting for it',
          file=sys.stderr)
    if sys.exc_info()[0] is not None:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    sys.exit(main())
