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
from sensor_msgs.msg import Image

import hybrid_depth_ros.node as node_module
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages.images import BadMessage
from hybrid_depth_ros.node import DepthNode, torch_threads

DOMAIN = random.SystemRandom().randint(110, 200)  # apart from test_ros_node's 1-102
ENV = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
       'RCUTILS_LOGGING_BUFFERED_STREAM': '0', 'PYTHONUNBUFFERED': '1'}
STUCK = 'stand-in pipeline: stuck in a frame'
IMAGE_OVERRIDE = 'qos_overrides./depth/image.publisher.'  # rclpy's name: the resolved topic


class StandInPredictor:
    multi_frame, metric, depth_scale = False, True, 1.0


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
