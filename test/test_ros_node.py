"""The depth node end to end over real DDS: the node runs in its own process (started the way
users start it, `hybrid-depth node`, with a small multi-frame checkpoint), this test
publishes images and camera_info and receives every output; then malformed input, after each
of which the node still answers the next good frame; each image paired with the camera_info of
its own stamp; a driver's zero stamps that still let frames be matched; then a clean shutdown.
Start-up errors (bad weights) end the process with one line and a non-zero code. In this
process: a calibration published once, latched, before the node starts; the compressed
transport.

A random ROS_DOMAIN_ID and localhost-only discovery keep parallel runs apart."""
import argparse
import array
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import rclpy
import torch
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from hybrid_depth_ros.cli import node as cli_node
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.networks.checkpoint import ModelSection, save_checkpoint
from hybrid_depth_core.config_dicts import to_dict
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.objective import SelfSupervisedObjective
from hybrid_depth_core.runtime.node_config import NodeConfig
from hybrid_depth_core.runtime.loader import load_predictor
from hybrid_depth_ros.node import DepthNode

# A 4:3 camera through a 10:3 model (320x96) trained at this camera's focal length: the image
# keeps its size and aspect ratio, padded to 192x128 for the network, and the depth comes back
# at 168x126, every pixel seen.
WIDTH, HEIGHT, FRAME_ID = 168, 126, 'e2e_camera_optical'
MODEL_SIZE = (320, 96)
DOMAIN = random.SystemRandom().randint(1, 100)
ENV = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
       'RCUTILS_LOGGING_BUFFERED_STREAM': '0', 'PYTHONUNBUFFERED': '1'}
OUTPUTS = {'/depth/image': Image, '/depth/camera_info': CameraInfo, '/depth/colorized': Image,
           '/depth/points': PointCloud2}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A multi-frame checkpoint (MODEL_SIZE input) in the layout `hybrid-depth train` writes:
    its model section, config and the objective's state, untrained. Even one training step
    costs more than the rest of this module on a busy CPU; test_predictor covers train ->
    from_checkpoint."""
    torch.manual_seed(0)
    config = load_config(None, [f'data.width={MODEL_SIZE[0]}', f'data.height={MODEL_SIZE[1]}'])
    objective = SelfSupervisedObjective(config.model, config.loss)
    path = tmp_path_factory.mktemp('run') / 'last.pt'
    focal = (DRIVE.camera.fx, DRIVE.camera.fy)
    save_checkpoint(path, {'model': ModelSection(config.model, MODEL_SIZE, False, None,
                                                 focal).to_dict(),
                           'config': to_dict(config), 'step': 0,
                           'objective': objective.state_dict()})
    return path


class Log:
    """The node's output, read line by line in a thread."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip('\n'))

    def wait_for(self, text: str, timeout: float, start: int = 0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines[start:]):
                return True
            time.sleep(0.05)
        return False

    def __str__(self):
        return '\n'.join(self.lines)


class Peer:
    """The test's side of the DDS link: publishers of the camera, subscribers of the node."""

    def __init__(self, context: Context):
        self.node = rclpy.create_node('depth_node_e2e', context=context)
        self.image = self.node.create_publisher(Image, '/cam/image_raw', 10)
        self.info = self.node.create_publisher(CameraInfo, '/cam/camera_info', 10)
        self.received: dict[str, dict[int, object]] = {topic: {} for topic in OUTPUTS}
        self._condition = threading.Condition()
        for topic, kind in OUTPUTS.items():
            self.node.create_subscription(kind, topic, lambda msg, t=topic: self._store(t, msg),
                                          10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _store(self, topic, msg):
        with self._condition:
            self.received[topic][msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec] = msg
            self._condition.notify_all()

    def wait_for(self, stamp_ns: int, topics, timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(
                lambda: all(stamp_ns in self.received[t] for t in topics), timeout)


@pytest.fixture(scope='module')
def peer():
    context = Context()
    with pytest.MonkeyPatch.context() as patch:  # rcl reads it when the context starts
        patch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        rclpy.init(context=context, domain_id=DOMAIN)
        peer = Peer(context)
    yield peer
    peer.executor.shutdown()
    rclpy.try_shutdown(context=context)


@pytest.fixture(scope='module')
def node_process(checkpoint, peer):
    process = subprocess.Popen(
        [sys.executable, '-m', 'hybrid_depth_ros.cli', 'node', '--weights', str(checkpoint),
         '--device', 'cpu', '--image', '/cam/image_raw', '--camera-info', '/cam/camera_info',
         '--', '--ros-args', '-p', 'cloud_stride:=2', '-p', 'min_depth:=0.001',
         '-p', 'max_depth:=1000.0'],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = Log(process.stdout)
    try:
        assert log.wait_for('multi-frame network', timeout=60), f'node did not start:\n{log}'
        deadline = time.monotonic() + 20  # discovery: the node's subscriptions match ours
        while (peer.image.get_subscription_count() == 0
               or peer.info.get_subscription_count() == 0):
            assert time.monotonic() < deadline, f'node not discovered:\n{log}'
            time.sleep(0.05)
        yield SimpleNamespace(process=process, log=log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, f'node exit code {process.returncode}:\n{log}'
    assert 'Traceback' not in str(log), str(log)
    # The peer's camera_info publisher is volatile: the node makes no transient-local
    # subscription for it, so neither side warns of incompatible QoS.
    assert 'incompatible QoS' not in str(log), str(log)


@pytest.fixture
def torch_threads_kept():
    """An in-process node sets torch's thread count (num_threads); give the rest of the test
    session its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


DRIVE = SyntheticDrive(DriveConfig(width=WIDTH, height=HEIGHT, frames=3, seed=8))
STAMPS = iter(range(10**9, 10**12, 10**8))  # unique, increasing (10 Hz) stamps


def frame_messages(index=0, **changes):
    """A good (image, camera_info) pair with a fresh stamp; `changes` break one field:
    image_<field> or info_<field>."""
    stamp = next(STAMPS)
    rgb = DRIVE.render(index).rgb
    K = DRIVE.camera.K
    image = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3,
                  data=array.array('B', rgb.tobytes()))
    info = CameraInfo(height=HEIGHT, width=WIDTH, distortion_model='plumb_bob', d=[0.0] * 5,
                      k=K.reshape(-1).tolist(), r=np.eye(3).reshape(-1).tolist(),
                      p=np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist())
    for message in (image, info):
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp, 10**9)
        message.header.frame_id = FRAME_ID
    for key, value in changes.items():
        target, field = key.split('_', 1)
        setattr(image if target == 'image' else info, field, value)
    return stamp, image, info


def send(peer, image, info):
    peer.info.publish(info)
    time.sleep(0.2)  # let the calibration arrive before the image that needs it
    peer.image.publish(image)


def serve(peer, index=0, timeout=20.0) -> int:
    """Publish good frames until one is answered on every output; its stamp."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stamp, image, info = frame_messages(index)
        send(peer, image, info)
        if peer.wait_for(stamp, OUTPUTS, timeout=5):
            return stamp
    raise AssertionError('the node answered no good frame')


def test_waits_for_camera_info_then_publishes_every_output(peer, node_process):
    stamp, image, _ = frame_messages()
    deadline = time.monotonic() + 10
    warned = False
    while not warned and time.monotonic() < deadline:
        peer.image.publish(image)  # again until discovery lets a best-effort message through
        warned = node_process.log.wait_for('no camera_info received yet', timeout=0.5)
    assert warned, str(node_process.log)
    assert stamp not in peer.received['/depth/image']

    stamps = [serve(peer, index) for index in range(3)]  # a moving sequence: multi-frame
    for stamp in stamps:
        messages = {topic: peer.received[topic][stamp] for topic in OUTPUTS}
        for msg in messages.values():
            assert msg.header.frame_id == FRAME_ID
        depth, info, colorized, points = messages.values()
        assert (depth.encoding, depth.width, depth.height, depth.step) == (
            '32FC1', WIDTH, HEIGHT, WIDTH * 4)
        assert (info.width, info.height) == (WIDTH, HEIGHT)
        np.testing.assert_allclose(info.k.reshape(3, 3), DRIVE.camera.K)
        assert (colorized.encoding, colorized.width, colorized.height) == ('rgb8', WIDTH, HEIGHT)
        assert (points.width, points.height, points.point_step) == (WIDTH // 2, HEIGHT // 2, 32)
        metres = np.frombuffer(bytes(depth.data), '<f4').reshape(HEIGHT, WIDTH)
        assert np.isfinite(metres).all() and (metres > 0).all()
        xyz = np.frombuffer(bytes(points.data), '<f4').reshape(HEIGHT // 2, WIDTH // 2, 8)
        np.testing.assert_array_equal(xyz[..., 2], metres[::2, ::2])  # same depth, same stamp
    assert node_process.log.wait_for('Hz, latency', timeout=5)  # the once-a-second summary


MALFORMED = [
    ({'image_encoding': 'rgb9'}, "unsupported image encoding 'rgb9'"),
    ({'image_data': bytes(100)}, 'bytes but step * height'),
    ({'image_height': 0, 'image_width': 0, 'image_step': 0, 'image_data': b''}, 'zero size'),
    ({'info_k': [0.0] * 9}, 'k is all zero'),
    ({'info_k': [float('nan')] * 9}, 'NaN or infinite'),
    ({'info_width': 100}, f'camera_info describes a 100x{HEIGHT} image but the image is '
                          f'{WIDTH}x{HEIGHT}'),
]


def test_malformed_input_is_reported_and_the_next_good_frame_served(peer, node_process):
    for changes, problem in MALFORMED:
        start = len(node_process.log.lines)
        for _ in range(3):  # best effort: resend if lost
            stamp, image, info = frame_messages(**changes)
            send(peer, image, info)
            if node_process.log.wait_for(problem, timeout=5, start=start):
                break
        else:
            raise AssertionError(f'no error naming {problem!r}:\n{node_process.log}')
        assert stamp not in peer.received['/depth/image']
        serve(peer)
    assert node_process.process.poll() is None


def test_the_calibration_of_the_image_stamp_wins_over_a_newer_one(peer, node_process):
    """A camera that changes zoom per frame: the image pairs with the camera_info of its own
    stamp, not with the newest. fx/cx tells them apart whatever the output size."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stamp, image, own = frame_messages()
        _, _, newer = frame_messages()
        newer.header.stamp.sec, newer.header.stamp.nanosec = divmod(stamp + 1, 10**9)
        newer.k[0], newer.p[0] = 2 * own.k[0], 2 * own.p[0]  # zoomed in
        peer.info.publish(own)
        peer.info.publish(newer)
        time.sleep(0.2)
        peer.image.publish(image)
        if peer.wait_for(stamp, ['/depth/camera_info'], timeout=5):
            break
    else:
        raise AssertionError(f'no depth/camera_info:\n{node_process.log}')
    out = peer.received['/depth/camera_info'][stamp]
    assert out.k[0] / out.k[2] == pytest.approx(own.k[0] / own.k[2])


def test_zero_stamps_still_match_earlier_frames(peer, node_process):
    """A driver that leaves header.stamp 0: the node warns once and times frames by their
    arrival, so multi-frame matching still finds a sequence (the summary line counts the frames
    matched against an earlier one); the outputs keep stamp 0."""
    log = node_process.log
    time.sleep(1.5)  # an idle summary interval: the next summaries count only the frames below
    start = len(log.lines)
    for index in (0, 1, 2, 1, 0):  # moving back and forth: each frame differs from the last
        for _ in range(5):  # best effort: resend if lost
            _, image, info = frame_messages(index)
            for message in (image, info):
                message.header.stamp.sec = message.header.stamp.nanosec = 0
            for received in peer.received.values():
                received.pop(0, None)
            send(peer, image, info)
            if peer.wait_for(0, OUTPUTS, timeout=5):
                break
        else:
            raise AssertionError(f'no answer to a zero-stamped frame:\n{log}')
    assert log.wait_for('sends header.stamp 0', timeout=1, start=start), str(log)
    assert sum('header.stamp 0' in line for line in log.lines) == 1  # warned once
    time.sleep(1.5)  # the last summary
    matched = [int(n) for line in log.lines[start:]
               for n in re.findall(r'multi-frame (\d+) of', line)]
    assert sum(matched) >= 1, str(log)


def test_weights_that_do_not_fit_stop_the_node_with_one_line(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state['model']['network']['arch'] = 'resnet18'  # the weights are the hybrid's
    mismatched = tmp_path / 'mismatched.pt'
    save_checkpoint(mismatched, {k: v for k, v in state.items() if k != 'format'})
    with pytest.raises(UserError, match='do not fit the network'):
        load_predictor(NodeConfig(weights=str(mismatched)))
    result = subprocess.run(
        [sys.executable, '-m', 'hybrid_depth_ros.node', '--ros-args', '-p',
         f'weights:={mismatched}'], env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'do not fit the network' in lines[0], result.stderr


def test_without_weights_the_node_refuses_to_start_with_one_line():
    result = subprocess.run([sys.executable, '-m', 'hybrid_depth_ros.node'], env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'parameter weights is empty' in lines[0], result.stderr
    assert 'random_weights:=true' in lines[0]


@pytest.mark.parametrize('when', ['before', 'after'])
def test_latched_calibration_published_before_or_after_the_node_starts_is_used(
        checkpoint, torch_threads_kept, when):
    """A camera_info published once, reliable + transient local, before the node exists or
    after it started: the node (in this process) gets it and answers images with no other
    camera_info. The calibration comes from another participant (its own context), as from a
    driver's process: within one participant DDS would hand it to any local subscription."""
    # Topics of each case's own: the graph may still show the other case's latched publisher.
    camera = f'/latched_{when}'
    context, driver, domain = Context(), Context(), DOMAIN + 2  # neither the node process's
    with pytest.MonkeyPatch.context() as patch:                  # domain nor the next
        patch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        rclpy.init(context=context, domain_id=domain)
        rclpy.init(context=driver, domain_id=domain)
        peer = rclpy.create_node('latched_peer', context=context)
        calibration = rclpy.create_node('latched_calibration', context=driver)

        def publish_latched():
            latched = calibration.create_publisher(
                CameraInfo, f'{camera}/camera_info',
                QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL))
            latched.publish(info)
            return latched
        _, _, info = frame_messages()
        if when == 'before':
            publish_latched()
        node = DepthNode(context=context, cli_args=[
            '--ros-args', '-r', f'image:={camera}/image',
            '-r', f'camera_info:={camera}/camera_info',
            '-p', f'weights:={checkpoint}', '-p', 'device:=cpu', '-p', 'min_depth:=0.001',
            '-p', 'max_depth:=1000.0', '-p', 'colorized:=false', '-p', 'publish_points:=false'])
    executor = SingleThreadedExecutor(context=context)
    try:
        received = []
        peer.create_subscription(CameraInfo, '/depth/camera_info', received.append,
                                 qos_profile_sensor_data)
        images = peer.create_publisher(Image, f'{camera}/image', 10)
        for each in (node, peer):
            executor.add_node(each)

        def durabilities():
            return {info.qos_profile.durability
                    for info in node.get_subscriptions_info_by_topic(f'{camera}/camera_info')}
        assert durabilities() == {DurabilityPolicy.VOLATILE} or when == 'before'
        if when == 'after':
            for _ in range(5):  # the node runs a while without calibration
                executor.spin_once(timeout_sec=0.1)
            publish_latched()
            # The node sees the latched publisher in the graph and subscribes to its history
            # (the message may also reach the volatile subscription, if it matched in time).
            deadline = time.monotonic() + 10
            while DurabilityPolicy.TRANSIENT_LOCAL not in durabilities() \
                    and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            stamp, image, _ = frame_messages()  # its camera_info is never sent
            images.publish(image)
            end = time.monotonic() + 2
            while not received and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
        assert received, 'no depth with the latched camera_info'
        assert received[0].header.frame_id == FRAME_ID
        assert received[0].k[0] / received[0].k[2] == pytest.approx(info.k[0] / info.k[2])
        assert DurabilityPolicy.TRANSIENT_LOCAL in durabilities()
    finally:
        node.stop()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
        rclpy.try_shutdown(context=driver)


def test_compressed_transport_follows_the_image_remapping_in_process(torch_threads_kept):
    """The node in this process, subscribing to <remapped image>/compressed; outputs that are
    switched off are not advertised."""
    context, domain = Context(), DOMAIN + 1  # not the node process's domain (<= 101)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        rclpy.init(context=context, domain_id=domain)
        node = DepthNode(context=context, cli_args=[
            '--ros-args', '-r', 'image:=/cam/image_raw', '-r', 'camera_info:=/cam/camera_info',
            '-p', 'image_transport:=compressed', '-p', 'random_weights:=true',
            '-p', 'device:=cpu', '-p', 'min_depth:=0.001', '-p', 'colorized:=false',
            '-p', 'publish_points:=false'])
        peer = rclpy.create_node('compressed_peer', context=context)
    executor = SingleThreadedExecutor(context=context)
    try:
        assert '/cam/image_raw/compressed' in {s.topic_name for s in node.subscriptions}
        assert {p.topic_name for p in node.publishers} >= {'/depth/image', '/depth/camera_info'}
        assert not {p.topic_name for p in node.publishers} & {'/depth/points', '/depth/colorized'}
        received = []
        peer.create_subscription(Image, '/depth/image', received.append, qos_profile_sensor_data)
        jpeg = peer.create_publisher(CompressedImage, '/cam/image_raw/compressed', 10)
        info = peer.create_publisher(CameraInfo, '/cam/camera_info', 10)
        for each in (node, peer):
            executor.add_node(each)
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            stamp, image, camera_info = frame_messages()
            rgb = np.frombuffer(bytes(image.data), np.uint8).reshape(HEIGHT, WIDTH, 3)
            compressed = CompressedImage(header=image.header, format='rgb8; jpeg compressed bgr8',
                                         data=array.array('B', cv2.imencode(
                                             '.jpg', rgb[..., ::-1])[1].tobytes()))
            info.publish(camera_info)
            executor.spin_once(timeout_sec=0.2)
            jpeg.publish(compressed)
            end = time.monotonic() + 3
            while not received and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
        assert received, 'no depth from the compressed image'
        assert (received[0].width, received[0].height) == (WIDTH, HEIGHT)
        assert received[0].header.frame_id == FRAME_ID
    finally:
        node.stop()
        executor.shutdown()
        rclpy.try_shutdown(context=context)


def test_command_line_shortcuts_become_ros_arguments(tmp_path):
    parser = argparse.ArgumentParser()
    cli_node.add_parser(parser.add_subparsers())
    args = parser.parse_args(['node', '--weights', 'w.pt', '--params-file', 'p.yaml',
                              '--device', 'cuda', '--image', '/a', '--camera-info', '/b',
                              '--', '--ros-args', '-p', 'cloud_stride:=4'])
    assert cli_node.ros_arguments(args) == [
        '--ros-args', '--params-file', 'p.yaml', '-p', 'weights:=w.pt', '-p', 'device:=cuda',
        '-r', 'image:=/a', '-r', 'camera_info:=/b', '--ros-args', '-p', 'cloud_stride:=4']
    assert cli_node.ros_arguments(parser.parse_args(['node'])) == []
