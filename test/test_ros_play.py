"""`hybrid-depth play`: a recorded drive is republished over DDS byte for byte, in order, at
the recorded rate scaled by --rate, once or repeatedly."""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CameraInfo, Image

from hybrid_depth_core.synthetic.bag_writer import write_drive_bag
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages import builders as msgs
from hybrid_depth_ros.play import play
from recorded_bags import grey_image, write_bag

DOMAIN = random.SystemRandom().randint(1, 100)
FRAMES = 5
DRIVE = SyntheticDrive(DriveConfig(width=32, height=16, frames=FRAMES, seed=2))


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp('bags') / 'drive'
    write_drive_bag(DRIVE, path, progress=False)
    return path


@pytest.fixture(scope='module')
def ros():
    """A context, a subscriber node receiving the camera topics, and a publisher node."""
    context = Context()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        rclpy.init(context=context, domain_id=DOMAIN)
        listener = rclpy.create_node('play_listener', context=context)
        player = rclpy.create_node('play_player', context=context)
    received = {'images': [], 'infos': []}  # (arrival time, message)
    listener.create_subscription(Image, '/camera/image_raw',
                                 lambda m: received['images'].append((time.monotonic(), m)), 50)
    listener.create_subscription(CameraInfo, '/camera/camera_info',
                                 lambda m: received['infos'].append((time.monotonic(), m)), 50)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    threading.Thread(target=executor.spin, daemon=True).start()
    yield player, received
    executor.shutdown()
    rclpy.try_shutdown(context=context)


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_replays_every_message_byte_for_byte_and_can_repeat(bag, ros):
    player, received = ros
    for messages in received.values():
        messages.clear()
    summary = play(bag, player, rate=5.0, repeat=2, delay=10.0,
                   topics=['/camera/image_raw', '/camera/camera_info'], log=lambda line: None)
    assert summary.loops == 2
    assert dict(summary.published) == {'/camera/image_raw': 2 * FRAMES,
                                       '/camera/camera_info': 2 * FRAMES}
    assert wait_until(lambda: len(received['images']) == 2 * FRAMES, timeout=10)
    images = [message for _, message in received['images']]
    for index, message in enumerate(images):
        frame = DRIVE.render(index % FRAMES)
        assert message.header.stamp.sec * 10**9 + message.header.stamp.nanosec == frame.stamp_ns
        assert message.header.frame_id == 'camera_optical_frame'
        np.testing.assert_array_equal(
            np.frombuffer(bytes(message.data), np.uint8).reshape(16, 32, 3), frame.rgb)
    assert wait_until(lambda: len(received['infos']) == 2 * FRAMES, timeout=10)
    np.testing.assert_allclose(received['infos'][0][1].k.reshape(3, 3), DRIVE.camera.K)


def test_command_line_replays_at_the_recorded_rate_scaled(bag, ros):
    _, received = ros
    for messages in received.values():
        messages.clear()
    env = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    rate = 0.5  # 10 Hz recorded: frames 0.2 s apart
    result = subprocess.run(
        [sys.executable, '-m', 'hybrid_depth_ros.cli', 'play', str(bag), '--rate', str(rate),
         '--delay', '10', '--topics', '/camera/image_raw'],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f'published {FRAMES} messages (/camera/image_raw {FRAMES}) in 1 complete' in \
        result.stdout
    assert wait_until(lambda: len(received['images']) == FRAMES, timeout=10)
    arrivals = [arrival for arrival, _ in received['images']]
    recorded = (FRAMES - 1) * 0.1 / rate
    # Never faster than scheduled; slower only by scheduling noise on a busy machine.
    assert recorded * 0.9 <= arrivals[-1] - arrivals[0] <= recorded + 1.5
    assert received['infos'] == []  # --topics left it out


def test_a_grey_camera_is_replayed_as_recorded(ros, tmp_path):
    """mono8, as KITTI's and many machine-vision cameras record: the node downstream takes it
    (test_real_recordings)."""
    player, received = ros
    for messages in received.values():
        messages.clear()
    frames = [DRIVE.render(i) for i in range(3)]
    bag = write_bag(tmp_path / 'grey', [
        ('/camera/image_raw', 'sensor_msgs/msg/Image',
         grey_image(f.rgb, msgs.header(f.stamp_ns, 'camera')), f.stamp_ns) for f in frames])
    summary = play(bag, player, rate=5.0, delay=10.0, log=lambda line: None)
    assert dict(summary.published) == {'/camera/image_raw': 3}
    assert wait_until(lambda: len(received['images']) == 3, timeout=10)
    for (_, message), frame in zip(received['images'], frames):
        assert message.encoding == 'mono8' and message.step == 32
        np.testing.assert_array_equal(np.frombuffer(bytes(message.data), np.uint8).reshape(16, 32),
                                      cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY))


def test_bad_bags_and_topics_are_user_errors(bag, ros, tmp_path):
    player, _ = ros
    with pytest.raises(UserError, match='cannot read bag'):
        play(tmp_path / 'missing', player, log=lambda line: None)
    with pytest.raises(UserError, match='has no topic /nope; it has /camera/camera_info'):
        play(bag, player, topics=['/nope'], log=lambda line: None)
    result = subprocess.run([sys.executable, '-m', 'hybrid_depth_ros.cli', 'play',
                             str(tmp_path / 'missing')], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith('hybrid-depth play: error: cannot read bag')


def test_a_looping_replay_ends_cleanly_on_sigterm(bag, ros):
    _, received = ros
    received['images'].clear()
    env = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    process = subprocess.Popen(
        [sys.executable, '-m', 'hybrid_depth_ros.cli', 'play', str(bag), '--loop', '--rate',
         '10', '--topics', '/camera/image_raw'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(received['images']) > FRAMES, timeout=30)  # looped
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert 'complete pass(es); interrupted' in stdout and 'Traceback' not in stderr


def test_a_damaged_chunk_is_an_error_or_skipped_with_allow_partial_bags(ros, tmp_path):
    from test_damaged_recordings import TOPIC, chunked_bag, damage_chunk
    player, received = ros
    bag = chunked_bag(tmp_path / 'chunks', 'zstd')
    lost = damage_chunk(bag, 0.5)
    with pytest.raises(UserError, match=f'bag {bag} is damaged.*--allow-partial-bags'):
        play(bag, player, rate=100.0, delay=0.0, log=lambda line: None)
    received['images'].clear()
    summary = play(bag, player, rate=100.0, delay=5.0, log=lambda line: None,
                   allow_partial=True)
    assert dict(summary.published) == {TOPIC: 24 - len(lost)}  # the chunks after it too

    def frames():  # (the failed replay's first images may still arrive)
        return {(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec - 10**9) // 10**8
                for _, m in received['images']}
    expected = set(range(24)) - lost
    assert wait_until(lambda: expected <= frames(), timeout=10), frames()
