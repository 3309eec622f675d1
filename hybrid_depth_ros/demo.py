"""The main job in one command (`hybrid-depth demo`, `make demo`): the whole system on the
bundled sample drive, over real ROS 2 topics.

1. Record the sample drive (a synthetic drive the model never saw) as a rosbag2, and the same
   drive seen by a second camera of another shape and field of view.
2. For each, start the depth node as its own process with the shipped model.
3. Replay the drive's image and camera_info into it at the recorded rate, and record every
   message the node publishes, as it arrives, into an output bag.
4. Score the depth the node published against the drive's ground truth, measure the latency
   from an image's arrival to its depth's and points' arrival, count dropped frames, and draw
   a montage (input | depth | ground truth | point cloud; the second camera beside).
Everything stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, its own domain).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from hybrid_depth_core.evaluation import visualize
from hybrid_depth_core.evaluation.metrics import Accumulator, Protocol
from hybrid_depth_core.atomic import new_output_directory
from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.networks.checkpoint import load_checkpoint, model_section
from hybrid_depth_core.synthetic.bag_writer import (CAMERA_INFO_TOPIC, DEPTH_GT_TOPIC, IMAGE_TOPIC,
                                                    write_drive_bag)
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.recordings.storage import bag_file_writer
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.evaluation.metrics import valid_mask
from hybrid_depth_core.messages.builders import TYPESTORE
from hybrid_depth_core.messages.depth import depth_to_metres
from hybrid_depth_core.messages.images import image_to_rgb
from hybrid_depth_core.messages.outputs import CLOUD_DTYPE, colorize
from hybrid_depth_core.runtime.node_config import (COLORIZED_TOPIC, DEPTH_INFO_TOPIC, DEPTH_TOPIC,
                                                   POINTS_TOPIC, NodeConfig,
                                                   parameter_file_values)
from hybrid_depth_core.messages.header import stamp_ns
from hybrid_depth_core.runtime.framing import plan
from hybrid_depth_ros.node import DIAGNOSTICS_TOPIC
from hybrid_depth_ros.play import play
from hybrid_depth_ros.shipped_files import use_large_images_profile

NAMESPACE = '/camera'
DEPTH, COLORIZED, POINTS = (f'{NAMESPACE}/{topic}'
                            for topic in (DEPTH_TOPIC, COLORIZED_TOPIC, POINTS_TOPIC))
OUTPUTS = {DEPTH: ('sensor_msgs/msg/Image', Image),
           f'{NAMESPACE}/{DEPTH_INFO_TOPIC}': ('sensor_msgs/msg/CameraInfo', CameraInfo),
           COLORIZED: ('sensor_msgs/msg/Image', Image),
           POINTS: ('sensor_msgs/msg/PointCloud2', PointCloud2)}
NODE_START_TIMEOUT_S = 180.0  # includes building the fused kernel on a first run
DRAIN_TIMEOUT_S = 10.0        # after the replay, the longest the node gets to finish
QUIET_S = 2.0                 # ... and it is done once nothing new arrived for this long
NODE_REPORT_S = 2.5           # the node reports its counts on /diagnostics once a second
EVALUATION = Protocol(max_depth=80.0, median_scaling=False)
SECOND_CAMERA = 'second_camera'  # its metrics' key and its recordings' directory


@dataclass(frozen=True)
class DemoConfig:
    out: Path
    weights: Path
    params_file: Path | None = None
    frames: int = 50
    seed: int = 0          # the sample drive: not a training street of the shipped model (1-40)
    width: int = 640
    height: int = 192
    rate: float = 1.0      # replay speed
    device: str | None = None  # None: the params file's (or the node's default, auto)
    # The same drive seen by another camera: (width, height, horizontal field of view in
    # degrees); None: none. The default is a Kinect-like 4:3 camera, narrower than the street's.
    second_camera: tuple[int, int, float] | None = (640, 480, 62.0)


def run_demo(config: DemoConfig, log=print) -> dict:
    """Write config.out (a new directory, complete or not at all) and return the metrics: the
    main camera's at the top level, the second camera's under 'second_camera'."""
    # The player (this process) and the node publish camera-sized messages: over shared memory
    # with a segment that holds them (config/fastdds_large_images.xml). Fast DDS reads it when
    # the process's first participant is made, so for the whole process, from here on.
    use_large_images_profile()
    if not config.weights.is_file():
        raise UserError(f'model weights {config.weights} do not exist')
    cameras = [(DriveConfig(width=config.width, height=config.height, frames=config.frames,
                            seed=config.seed), '')]
    if config.second_camera is not None:
        width, height, fov = config.second_camera
        cameras.append((DriveConfig(width=width, height=height, hfov_deg=fov,
                                    frames=config.frames, seed=config.seed), SECOND_CAMERA))
    with new_output_directory(config.out) as staging:
        staging.mkdir()
        log(f'1/4 recording the sample drive ({config.frames} frames, {config.width}x'
            f'{config.height}, seed {config.seed})'
            + (f' and the same drive seen by a second camera ({_camera_words(cameras[1][0])})'
               if len(cameras) > 1 else ''))
        for drive_config, where in cameras:
            (staging / where).mkdir(exist_ok=True)
            write_drive_bag(SyntheticDrive(drive_config), staging / where / 'sample_drive')
        log('2/4 starting the depth node and replaying the drive into it (a first start on a '
            'CPU compiles the cost-volume kernel: about 30 s)')
        runs = [run_node_on_bag(config.weights, staging / where / 'sample_drive',
                                config.params_file, config.rate, config.device, log)
                for _, where in cameras]
        log('3/4 writing what the node published to node_output/'
            + (f' and {SECOND_CAMERA}/node_output/' if len(cameras) > 1 else ''))
        for (_, where), (received, _) in zip(cameras, runs):
            _write_bag(staging / where / 'node_output', received)
        log('4/4 scoring depth against ground truth and drawing the montage')
        input_size, focal = _training_camera(config.weights)
        scored = []
        for (drive_config, where), (received, published) in zip(cameras, runs):
            drive = _read_drive(staging / where / 'sample_drive')
            metrics = _score(drive, received, published)
            camera = PinholeCamera.from_matrix(drive.K, drive_config.width, drive_config.height)
            metrics['model_input'] = list(plan(camera, input_size, focal).size)
            metrics['sample_drive'] = {'seed': config.seed, 'frames': config.frames,
                                       'size': [drive_config.width, drive_config.height],
                                       'hfov_deg': drive_config.hfov_deg}
            scored.append((drive, received, metrics))
        metrics = scored[0][2]
        metrics['depth_scale'] = node_parameter(config.params_file, 'depth_scale')
        metrics['weights'] = str(config.weights)
        if len(scored) > 1:
            metrics[SECOND_CAMERA] = scored[1][2]
        (staging / 'metrics.json').write_text(json.dumps(metrics, indent=2) + '\n')
        depth_range = (node_parameter(config.params_file, 'min_depth'),
                       node_parameter(config.params_file, 'max_depth'))
        visualize.write_png(staging / 'montage.png', _montage(scored, depth_range))
    return metrics


def _camera_words(drive: DriveConfig) -> str:
    return f'{drive.width}x{drive.height}, {drive.hfov_deg:g} degrees wide'


def _training_camera(weights: Path) -> tuple[tuple[int, int], tuple[float, float] | None]:
    """The network input size and training focal lengths the node frames images for."""
    section = model_section(load_checkpoint(weights), where=str(weights))
    return section.input_size, section.focal


@dataclass
class _Received:
    topic: str
    stamp_ns: int
    arrival: float  # time.monotonic() in this process
    raw: bytes


class Recorder:
    """Subscribes to the node's outputs and to its input image, keeping serialized messages
    and their arrival times."""

    def __init__(self, node):
        self.messages: deque[_Received] = deque()
        self.image_arrivals: dict[int, float] = {}
        # The node's own counts, from its /diagnostics: images that reached its callback, and
        # those it skipped because a newer one came first (the newest status).
        self.node_counts: dict[str, str] = {}
        self.node_counts_at = 0.0  # when they arrived (time.monotonic() in this process)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic, (msgtype, kind) in OUTPUTS.items():
            node.create_subscription(kind, topic, self._store(topic, msgtype), qos, raw=True)
        node.create_subscription(Image, IMAGE_TOPIC, self._on_image, qos, raw=True)
        node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics, 10)

    def _on_diagnostics(self, message) -> None:
        for status in message.status:
            if status.name.startswith(f'{NAMESPACE}/'):
                self.node_counts = {kv.key: kv.value for kv in status.values}
                self.node_counts_at = time.monotonic()

    def _store(self, topic: str, msgtype: str):
        def callback(raw: bytes) -> None:
            arrival = time.monotonic()
            stamp = stamp_ns(TYPESTORE.deserialize_cdr(raw, msgtype))
            self.messages.append(_Received(topic, stamp, arrival, raw))
        return callback

    def _on_image(self, raw: bytes) -> None:
        arrival = time.monotonic()
        self.image_arrivals[stamp_ns(TYPESTORE.deserialize_cdr(raw, 'sensor_msgs/msg/Image'))] = (
            arrival)

    def count(self, topic: str) -> int:
        return sum(message.topic == topic for message in list(self.messages))

    def latencies_ms(self, topic: str) -> np.ndarray:
        """Per output message of `topic`, in stamp order: its arrival minus the arrival of the
        image it was computed from (both seen by this process), milliseconds."""
        pairs = sorted((m.stamp_ns, m.arrival) for m in self.messages if m.topic == topic)
        return np.array([1000 * (arrival - self.image_arrivals[stamp])
                         for stamp, arrival in pairs if stamp in self.image_arrivals])


def run_node_on_bag(weights: Path, bag: Path, params_file: Path | None = None,
                    rate: float = 1.0, device: str | None = None, log=print
                    ) -> tuple[Recorder, int]:
    """Start the depth node as its own process, replay `bag`'s image and camera_info into it
    at `rate` x the recorded rate, and return what it published (with arrival times) and how
    many images were replayed. The node is stopped (SIGINT) before returning."""
    domain = random.SystemRandom().randint(1, 100)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1')
    command = [sys.executable, '-m', 'hybrid_depth_ros.cli', 'node',
               '--weights', str(weights), '--image', IMAGE_TOPIC,
               '--camera-info', CAMERA_INFO_TOPIC]
    if device is not None:  # else the params file decides
        command += ['--device', device]
    if params_file is not None:
        command += ['--params-file', str(params_file)]
    command += ['--', '-r', f'__ns:={NAMESPACE}']
    node_log: deque[str] = deque(maxlen=200)
    ready = threading.Event()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)

    def read_log():
        for line in process.stdout:
            node_log.append(line.rstrip())
            if 'network, input' in line:
                ready.set()
    threading.Thread(target=read_log, daemon=True).start()
    context = Context()
    try:
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while not ready.wait(0.2):
            if process.poll() is not None:
                raise UserError(f'the depth node exited at start: {_last_words(node_log)}')
            if time.monotonic() > deadline:
                raise UserError(f'the depth node did not start within '
                                f'{NODE_START_TIMEOUT_S:.0f} s: {_last_words(node_log)}')
        log('   node: ' + next(line for line in node_log if 'network, input' in line))
        with _environment(env):  # this process's nodes stay on this machine too
            rclpy.init(context=context, domain_id=domain)
        player = rclpy.create_node('hybrid_depth_demo_player', context=context)
        listener = rclpy.create_node('hybrid_depth_demo_recorder', context=context)
        recorder = Recorder(listener)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(listener)
        threading.Thread(target=executor.spin, daemon=True).start()
        summary = play(bag, player, rate=rate, topics=[IMAGE_TOPIC, CAMERA_INFO_TOPIC],
                       delay=10.0, log=lambda text: log('   ' + text))
        if summary.interrupted:  # a partial replay must not be scored as a whole one
            raise KeyboardInterrupt
        published = summary.published[IMAGE_TOPIC]
        depth_topic = DEPTH
        # The node serves the newest image and drops overtaken ones, so fewer depth images
        # than published is normal: wait until all arrived or the node has gone quiet.
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        last_count, last_change = -1, time.monotonic()
        while recorder.count(depth_topic) < published and time.monotonic() < deadline:
            if recorder.count(depth_topic) != last_count:
                last_count, last_change = recorder.count(depth_topic), time.monotonic()
            elif time.monotonic() - last_change > QUIET_S:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # the points and colorized image of the last frame
        # the node's counts cover the whole replay in a status sent after it
        replayed, deadline = time.monotonic(), time.monotonic() + NODE_REPORT_S
        while recorder.node_counts_at < replayed and time.monotonic() < deadline:
            time.sleep(0.1)
        executor.shutdown()
        if process.poll() is not None:
            raise UserError(f'the depth node exited during the replay: {_last_words(node_log)}')
        log(f'   published {published} images; received {recorder.count(depth_topic)} depth '
            f'images from the node')
        return recorder, published
    finally:
        rclpy.try_shutdown(context=context)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _last_words(node_log: deque[str]) -> str:
    lines = [line for line in node_log if line.strip()]
    return lines[-1] if lines else '(it printed nothing)'


def node_parameter(params_file: Path | None, name: str) -> float:
    """A numeric parameter the node runs with under `params_file` (else its default)."""
    values = parameter_file_values(params_file) if params_file is not None else {}
    return float(values.get(name, getattr(NodeConfig(), name)))


class _environment:
    """rcl reads ROS_AUTOMATIC_DISCOVERY_RANGE in rclpy.init (rcl_init): set it for that
    moment, without changing this process's environment for good."""

    def __init__(self, env: dict):
        self.values = {key: env[key] for key in ('ROS_AUTOMATIC_DISCOVERY_RANGE',)}

    def __enter__(self):
        self.saved = {key: os.environ.get(key) for key in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _write_bag(path: Path, recorder: Recorder) -> None:
    with bag_file_writer(path) as writer:
        connections = {topic: writer.add_connection(topic, msgtype, typestore=TYPESTORE)
                       for topic, (msgtype, _) in OUTPUTS.items()}
        for message in recorder.messages:
            writer.write(connections[message.topic], message.stamp_ns, message.raw)


def _by_stamp(recorder: Recorder, topic: str) -> dict[int, _Received]:
    return {m.stamp_ns: m for m in recorder.messages if m.topic == topic}


@dataclass
class _Drive:
    images: dict[int, np.ndarray]  # stamp -> RGB
    truths: dict[int, np.ndarray]  # stamp -> ground-truth depth (metres)
    K: np.ndarray


def _read_drive(bag: Path) -> _Drive:
    with Bag(bag) as reader:
        truths = {stamp_ns(item.message, item.time_ns): depth_to_metres(item.message)
                  for item in reader.messages([DEPTH_GT_TOPIC])}
        images = {stamp: rgb for stamp, rgb, _ in reader.images()}
        info = reader.camera_infos().nearest(min(images))
    return _Drive(images, truths, np.asarray(info.k, dtype=np.float64).reshape(3, 3))


def _score(drive: _Drive, recorder: Recorder, published: int) -> dict:
    depths = _by_stamp(recorder, DEPTH)
    scores = Accumulator(EVALUATION)
    truth_pixels = covered = 0
    for stamp, received in sorted(depths.items()):
        if stamp not in drive.truths:
            continue
        prediction = depth_to_metres(TYPESTORE.deserialize_cdr(received.raw,
                                                               'sensor_msgs/msg/Image'))
        # NaN where the node vouches for no depth (outside min_depth-max_depth, or dropped as
        # a flying pixel by edge_filter): left out of the scores, and counted in the coverage.
        truth = valid_mask(drive.truths[stamp], EVALUATION)
        truth_pixels += int(truth.sum())
        covered += int((truth & np.isfinite(prediction)).sum())
        scores.add(prediction, drive.truths[stamp])
    if not scores.per_image:
        raise UserError(f'the node published no depth for any of the {published} images')

    def latency(topic):
        values = recorder.latencies_ms(topic)
        return {'median_ms': float(np.median(values)),
                'p90_ms': float(np.percentile(values, 90))} if len(values) else None

    result = scores.summary()
    counts = recorder.node_counts
    return {
        'frames_published': published,
        # what the node's /diagnostics counted: images that reached its subscription callback,
        # and of those, the ones it left because a newer image came while it was busy
        'frames_reached_node': int(counts['images received']) if counts else None,
        'frames_skipped_by_node': (int(counts['images skipped (a newer one came first)'])
                                   if counts else None),
        'frames_with_depth': len(depths),
        'frames_dropped': published - len(depths),
        # of the pixels with ground truth (under the 80 m cap), the share with depth published
        'depth_coverage': covered / max(truth_pixels, 1),
        'metric_depth': result['unscaled'],
        'median_scaled': result['median_scaled'],
        'scale_ratio_median': result['scale_median'],
        'latency_image_to_depth': latency(DEPTH),
        'latency_image_to_points': latency(POINTS),
    }


def _montage(scored: list[tuple[_Drive, Recorder, dict]],
             depth_range: tuple[float, float]) -> np.ndarray:
    """The main camera's column and, beside it at half its width, the second camera's."""
    columns = [_column(*scored[0], depth_range, (
        'input: the sample drive (never trained on)',
        f'depth from the node (log colours, {depth_range[0]:g}-{depth_range[1]:g} m); '
        f'drive AbsRel {scored[0][2]["metric_depth"]["abs_rel"]:.3f}',
        'ground truth, same colours',
        "the node's point cloud, from 4 m above and 6 m behind the camera"))]
    if len(scored) > 1:
        drive, _, metrics = scored[1]
        width, height = metrics['sample_drive']['size']
        columns.append(_column(*scored[1], depth_range, (
            f'second camera: {width}x{height}, {metrics["sample_drive"]["hfov_deg"]:g} deg',
            f'its depth; AbsRel {metrics["metric_depth"]["abs_rel"]:.3f}',
            'ground truth', 'point cloud'), scale=columns[0].shape[1] / 2 / width))
    height = max(column.shape[0] for column in columns)
    return np.hstack([np.pad(column, ((0, height - column.shape[0]), (0, 0), (0, 0)))
                      for column in columns])


def _column(drive: _Drive, recorder: Recorder, metrics: dict, depth_range: tuple[float, float],
            titles: tuple[str, str, str, str], scale: float = 1.0) -> np.ndarray:
    """The frame in the middle of the drive: input, the node's colorized depth, the ground
    truth in the same colours, and the node's point cloud seen from above and behind; each
    panel resized by `scale`."""
    colorized = _by_stamp(recorder, COLORIZED)
    clouds = _by_stamp(recorder, POINTS)
    common = sorted(set(colorized) & set(clouds) & set(drive.images))
    if not common:
        raise UserError('the node published no colorized depth and point cloud for one frame')
    stamp = common[len(common) // 2]
    rgb = drive.images[stamp]
    depth_rgb = image_to_rgb(TYPESTORE.deserialize_cdr(colorized[stamp].raw,
                                                       'sensor_msgs/msg/Image'))
    truth = colorize(drive.truths[stamp], *depth_range)  # the node's colours
    cloud = TYPESTORE.deserialize_cdr(clouds[stamp].raw, 'sensor_msgs/msg/PointCloud2')
    points = np.frombuffer(bytes(cloud.data), CLOUD_DTYPE)
    xyz = np.stack([points['x'], points['y'], points['z']], 1).astype(np.float64)
    colours = np.stack([(points['rgb'] >> 16) & 255, (points['rgb'] >> 8) & 255,
                        points['rgb'] & 255], 1).astype(np.uint8)
    height, width = rgb.shape[:2]
    view = visualize.render_cloud(xyz, colours, width, height, drive.K)
    size = (round(width * scale), round(height * scale))
    panels = [rgb, depth_rgb, truth, view]
    if scale != 1.0:
        panels = [cv2.resize(panel, size, interpolation=cv2.INTER_AREA) for panel in panels]
    return visualize.montage(list(zip(titles, panels)))
