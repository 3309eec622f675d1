"""The depth node's start and stop around a stand-in model (no network: these run in a second
each): num_threads sets torch's CPU threads before the model loads; the outputs' QoS follows
ROS 2's qos_overrides parameters, and bad overrides are one-line errors; stop() says whether
the inference thread ended, and a node whose thread is stuck in a frame still exits at once,
with exit code 0 and a line naming the thread; a node whose frames keep failing exits 1.

Run as a script, this file is that stuck node (see the end)."""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import cv2
import pytest
import rclpy
import torch
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import Image

import hybrid_depth_ros.node as node_module
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages.images import BadMessage
from hybrid_depth_ros.node import DepthNode, torch_threads
from hybrid_depth_ros.shipped_files import with_large_images_profile

DOMAIN = random.SystemRandom().randint(110, 200)  # apart from test_ros_node's 1-102
ENV = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
       'RCUTILS_LOGGING_BUFFERED_STREAM': '0', 'PYTHONUNBUFFERED': '1'}
STUCK = 'stand-in pipeline: stuck in a frame'
IMAGE_OVERRIDE = 'qos_overrides./depth/image.publisher.'  # rclpy's name: the resolved topic


class StandInPredictor:
    multi_frame, metric, depth_scale, device = False, True, 1.0, 'cpu'


class StuckPipeline:
    """process() blocks until `release` is set: a frame inside a long CUDA call."""
    entered = threading.Event()
    release = threading.Event()

    def __init__(self, predictor, config):
        pass

    def process(self, image, info, received_ns=None):
        StuckPipeline.entered.set()
        print(STUCK, flush=True)
        StuckPipeline.release.wait()
        raise BadMessage('released')


class FailingPipeline:
    """process() fails on every frame: a model that broke after start."""
    error: Exception = RuntimeError('stand-in: inference failed')

    def __init__(self, predictor, config):
        pass

    def process(self, image, info, received_ns=None):
        raise FailingPipeline.error


def use_stand_ins(patch):
    StuckPipeline.entered.clear()
    StuckPipeline.release.clear()
    patch.setattr(node_module, 'load_predictor', lambda config, warn=None: StandInPredictor())
    patch.setattr(node_module, 'describe', lambda predictor: 'stand-in network')
    patch.setattr(node_module, 'DepthPipeline', StuckPipeline)


@pytest.fixture
def start_node(monkeypatch):
    """start_node(*ros_args) -> a DepthNode in this process with the stand-in model. Afterwards
    the context is shut down and torch's thread count restored."""
    use_stand_ins(monkeypatch)
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    threads, cv2_threads, started = torch.get_num_threads(), cv2.getNumThreads(), []

    def start(*ros_args):
        context = Context()
        rclpy.init(context=context, domain_id=DOMAIN)
        started.append(context)
        node = DepthNode(context=context, cli_args=['--ros-args', *ros_args])
        started.append(node)
        return node

    yield start
    StuckPipeline.release.set()
    for each in reversed(started):
        if isinstance(each, DepthNode):
            each.stop()
        else:
            rclpy.try_shutdown(context=each)
    torch.set_num_threads(threads)
    cv2.setNumThreads(cv2_threads)


def test_num_threads_sets_torch_threads_and_zero_is_half_the_cores(start_node, monkeypatch):
    wanted = 3 if torch.get_num_threads() != 3 else 2
    start_node('-p', f'num_threads:={wanted}')
    assert torch.get_num_threads() == wanted and cv2.getNumThreads() == wanted
    start_node()  # 0: auto
    assert torch.get_num_threads() == torch_threads(0)
    for cores, threads in ((8, 4), (3, 1), (1, 1)):
        monkeypatch.setattr(os, 'sched_getaffinity', lambda pid, n=cores: set(range(n)))
        assert torch_threads(0) == threads
    assert torch_threads(5) == 5


def test_outputs_are_reliable_depth_1_volatile_unless_qos_overrides_say_otherwise(start_node):
    node = start_node('-r', f'__node:=depth_qos_{os.getpid()}',
                      '-p', f'{IMAGE_OVERRIDE}reliability:=best_effort',
                      '-p', f'{IMAGE_OVERRIDE}depth:=3')
    assert node.get_parameter(f'{IMAGE_OVERRIDE}reliability').value == 'best_effort'
    profiles = {p.topic_name: p.qos_profile for p in node.publishers
                if p.topic_name.startswith('/depth/')}
    assert set(profiles) == {'/depth/image', '/depth/camera_info', '/depth/colorized',
                             '/depth/points'}
    for topic, qos in profiles.items():
        overridden = topic == '/depth/image'
        assert qos.reliability == (ReliabilityPolicy.BEST_EFFORT if overridden
                                   else ReliabilityPolicy.RELIABLE), topic
        assert qos.depth == (3 if overridden else 1), topic
        assert qos.durability == DurabilityPolicy.VOLATILE, topic
    # What DDS announces to subscribers (the graph does not carry the depth). Only this node's:
    # the graph may still list the nodes of earlier tests, or of other tests on this domain.
    for topic, reliability in (('/depth/image', ReliabilityPolicy.BEST_EFFORT),
                               ('/depth/camera_info', ReliabilityPolicy.RELIABLE)):
        announced, = [info for info in node.get_publishers_info_by_topic(topic)
                      if info.node_name == node.get_name()]
        assert announced.qos_profile.reliability == reliability, topic


@pytest.mark.parametrize('override, problem', [
    ('reliability:=sometimes', 'Unexpected QoS override for policy `reliability`: `sometimes`'),
    pytest.param('depth:=0', 'depth 0 with history keep_last must be at least 1',
                 marks=pytest.mark.filterwarnings('ignore:A zero depth')),  # rclpy's own
    ('depth:=deep', "qos_overrides./depth/image.publisher.depth' to 'deep'.*expecting type"),
])
def test_bad_qos_overrides_are_one_line_user_errors(start_node, override, problem):
    with pytest.raises(UserError, match=problem) as error:
        start_node('-p', IMAGE_OVERRIDE + override)
    assert '\n' not in str(error.value)


def test_the_image_input_is_best_effort_depth_1_unless_qos_overrides_say_otherwise(start_node):
    """A camera driver publishing reliably keeps every image when the input is made reliable
    too (docs/ros_node.md); the override is ROS 2's standard parameter for subscriptions."""
    default = start_node('-r', f'__node:=depth_input_{os.getpid()}')
    overridden = start_node('-r', f'__node:=depth_input_qos_{os.getpid()}',
                            '-p', 'qos_overrides./image.subscription.reliability:=reliable',
                            '-p', 'qos_overrides./image.subscription.depth:=5')
    for node, reliability, depth in ((default, ReliabilityPolicy.BEST_EFFORT, 1),
                                     (overridden, ReliabilityPolicy.RELIABLE, 5)):
        qos = next(s.qos_profile for s in node.subscriptions if s.topic_name == '/image')
        assert (qos.reliability, qos.depth) == (reliability, depth)
    with pytest.raises(UserError, match='depth 0 with history keep_last must be at least 1'):
        start_node('-r', f'__node:=depth_input_bad_{os.getpid()}',
                   '-p', 'qos_overrides./image.subscription.depth:=0')


def test_diagnostics_warn_without_images_and_report_errors_while_inference_fails(
        start_node, monkeypatch):
    monkeypatch.setattr(node_module, 'DepthPipeline', FailingPipeline)
    node = start_node('-r', f'__node:=depth_diagnostics_{os.getpid()}',
                      '-p', 'max_failures:=100000')
    peer = rclpy.create_node('diagnostics_peer', context=node.context)
    statuses, images = [], peer.create_publisher(Image, 'image', 10)
    peer.create_subscription(DiagnosticArray, '/diagnostics',
                             lambda m: statuses.extend(s for s in m.status
                                                       if 'depth_diagnostics' in s.name), 10)
    executor = SingleThreadedExecutor(context=node.context)
    for each in (node, peer):
        executor.add_node(each)

    def spin_until(condition, publish=False):
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, [s.message for s in statuses]
            if publish:
                images.publish(Image())
            executor.spin_once(timeout_sec=0.05)
    spin_until(lambda: statuses)
    first = statuses[0]
    assert first.level == DiagnosticStatus.WARN and first.hardware_id == 'cpu'
    assert first.message == 'no image received yet on /image'
    assert first.name == f'/depth_diagnostics_{os.getpid()}: depth'
    spin_until(lambda: statuses[-1].level == DiagnosticStatus.ERROR, publish=True)
    failing = statuses[-1]
    assert failing.message == 'inference failing: RuntimeError: stand-in: inference failed'
    values = {kv.key: kv.value for kv in failing.values}
    assert int(values['images received']) > 0 and int(values['failed frames']) > 0
    assert values['depth images published'] == '0' and values['device'] == 'cpu'
    executor.shutdown()


def test_two_cameras_under_two_namespaces_keep_their_topics_apart(start_node):
    """What launch/two_cameras.launch.py starts: the same node twice, in /front and /rear,
    each remapped to its camera."""
    nodes = {camera: start_node('-r', f'__ns:=/{camera}', '-r', f'image:=/{camera}/image_raw',
                                '-r', f'camera_info:=/{camera}/camera_info')
             for camera in ('front', 'rear')}
    for camera, node in nodes.items():
        assert node.get_fully_qualified_name() == f'/{camera}/hybrid_depth'
        assert {s.topic_name for s in node.subscriptions} == {f'/{camera}/image_raw',
                                                              f'/{camera}/camera_info'}
        published = {p.topic_name for p in node.publishers}
        assert {f'/{camera}/depth/image', f'/{camera}/depth/points',
                f'/{camera}/depth/camera_info', '/diagnostics'} <= published
        other = 'rear' if camera == 'front' else 'front'
        assert not any(topic.startswith(f'/{other}/') for topic in published)


CAMERA = """
import sys, time
import numpy as np, rclpy
from sensor_msgs.msg import Image
topic, width, height, count = sys.argv[1], *map(int, sys.argv[2:])
rclpy.init()
node = rclpy.create_node('large_camera')
publisher = node.create_publisher(Image, topic, 10)  # a driver's default: reliable, depth 10
while publisher.get_subscription_count() == 0:
    time.sleep(0.05)
time.sleep(0.5)
data = np.random.default_rng(0).integers(0, 256, width * height * 3, np.uint8).tobytes()
start = time.monotonic()
for index in range(count):
    publisher.publish(Image(width=width, height=height, encoding='rgb8', step=3 * width,
                            data=data))
    time.sleep(max(0.0, start + (index + 1) / 30 - time.monotonic()))
"""


@pytest.mark.parametrize('width, height', [(640, 480), (1280, 720)])
def test_large_images_at_30_hz_all_reach_the_callback(start_node, width, height):
    """A camera process publishing rgb8 at 30 Hz with a driver's default QoS, under the shipped
    Fast DDS profile (as launch/depth.launch.py and the demo run it): the images reach the
    node's subscription callback. docs/benchmarks.md measures 300 of 300 on a quiet machine,
    and about a third without the profile; here, on a CI machine busy with this suite, at
    least 95% (without the profile this test got 27 of 60)."""
    node = start_node('-r', f'__node:=depth_large_{width}_{os.getpid()}',
                      '-r', f'image:=/large_{width}/image_raw')
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    sent = 60
    camera = subprocess.Popen([sys.executable, '-c', CAMERA, f'/large_{width}/image_raw',
                               str(width), str(height), str(sent)],
                              env=with_large_images_profile(ENV), stderr=subprocess.PIPE,
                              text=True)
    try:
        deadline = time.monotonic() + 60
        while camera.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.01)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
    finally:
        if camera.poll() is None:
            camera.kill()
        executor.shutdown()
    assert camera.wait() == 0, camera.stderr.read()
    assert node._stats.totals['received'] >= 0.95 * sent


def test_stop_says_whether_the_inference_thread_ended(start_node):
    node = start_node('-p', 'fallback_fov:=60.0')
    feeder = rclpy.create_node('feeder', context=node.context)
    images = feeder.create_publisher(Image, 'image', 10)
    executor = SingleThreadedExecutor(context=node.context)
    for each in (node, feeder):
        executor.add_node(each)
    deadline = time.monotonic() + 20
    while not StuckPipeline.entered.is_set():
        assert time.monotonic() < deadline, 'the image never reached the inference thread'
        images.publish(Image())
        executor.spin_once(timeout_sec=0.1)
    executor.shutdown()
    start = time.monotonic()
    assert node.stop(timeout=0.5) is False
    assert time.monotonic() - start < 3
    assert node.worker_report(0.5).startswith(
        "the inference thread 'hybrid_depth_inference' did not stop within 0.5 s: it has been "
        'in one frame for')
    StuckPipeline.release.set()
    assert node.stop(timeout=10) is True


def test_a_node_whose_inference_thread_is_stuck_still_exits_at_once():
    process = subprocess.Popen([sys.executable, __file__], env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:  # until the thread is stuck (or the process ended)
            lines.append(line.rstrip('\n'))
            if STUCK in line:
                break
        assert STUCK in lines[-1], '\n'.join(lines)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=20)  # STOP_TIMEOUT_S is 1 s there
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = '\n'.join(lines) + '\n' + rest
    assert process.returncode == 0, output
    assert ("hybrid_depth: the inference thread 'hybrid_depth_inference' did not stop within "
            "1 s: it has been in one frame for" in output), output
    assert 'exiting without waiting for it' in output, output
    assert 'Traceback' not in output, output


@pytest.mark.parametrize('failure, expected', [
    ('failing', 'inference failed on 5 frames in a row (max_failures), the last with '
                'RuntimeError: stand-in: inference failed'),
    ('device-error', 'inference failed with a device error, which does not recover: '
                     'AcceleratorError: CUDA error: an illegal memory access (stand-in)')])
def test_a_node_whose_inference_keeps_failing_exits_non_zero(failure, expected):
    """So that `respawn` or a supervisor acts: after max_failures frames in a row, or at once on
    a device error."""
    result = subprocess.run([sys.executable, __file__, failure], env=ENV, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f'hybrid_depth: error: {expected}', result.stderr
    frames_failed = result.stderr.count('frame failed')  # logged, throttled to one a 5 s
    assert 1 <= frames_failed <= 2 and 'Traceback' not in result.stderr


if __name__ == '__main__':
    # main() as users run it, with a stand-in model: `failing` / `device-error`, fed an image
    # every 10 ms, whose frames fail (max_failures 5); with no argument, the stuck node, whose
    # frame never ends, given one image as it starts, and a 1 s stop timeout.
    use_stand_ins(pytest.MonkeyPatch())
    node_module.STOP_TIMEOUT_S = 1.0
    failing = sys.argv[1:]

    class FedNode(DepthNode):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._on_image(Image())
            if failing:
                self.create_timer(0.01, lambda: self._on_image(Image()))

    if failing:
        node_module.DepthPipeline = FailingPipeline
        if failing == ['device-error']:
            FailingPipeline.error = torch.AcceleratorError(
                'CUDA error: an illegal memory access (stand-in)')
    node_module.DepthNode = FedNode
    sys.exit(node_module.main(['--ros-args', '-p', 'max_failures:=5'] if failing else []))
