"""The sample bag, read back by an independent reader (rosbags AnyReader + rosbags-image)."""
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.image import message_to_cvimage

from hybrid_depth_core.synthetic.bag_writer import T_BASE_CAMERA, write_drive_bag
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages import builders

FRAMES = 3


@pytest.fixture(scope='module')
def drive():
    return SyntheticDrive(DriveConfig(width=96, height=48, frames=FRAMES, seed=4))


def read_bag(path: Path) -> dict[str, list]:
    """topic -> [(log time, message type, message)] in recording order."""
    messages: dict[str, list] = {}
    with AnyReader([path]) as reader:
        for connection, stamp, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            messages.setdefault(connection.topic, []).append((stamp, connection.msgtype, message))
    return messages


def quaternion_to_rotation(q) -> np.ndarray:
    x, y, z, w = q.x, q.y, q.z, q.w
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def transform_matrix(transform) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = quaternion_to_rotation(transform.rotation)
    T[:3, 3] = (transform.translation.x, transform.translation.y, transform.translation.z)
    return T


@pytest.mark.parametrize('storage, compressed', [('mcap', False), ('sqlite3', False),
                                                 ('mcap', True), ('sqlite3', True)])
def test_bag_reads_back_with_exact_content(tmp_path, drive, storage, compressed):
    out = tmp_path / 'drive'
    summary = write_drive_bag(drive, out, storage=storage, compressed=compressed, progress=False)
    assert summary.path == out and summary.size_bytes > 0
    assert [p.name for p in tmp_path.iterdir()] == ['drive']  # no staging directory left
    bag = read_bag(out)
    image_topic = '/camera/image_raw/compressed' if compressed else '/camera/image_raw'
    assert set(bag) == {image_topic, '/camera/camera_info', '/camera/depth_gt', '/camera/pose',
                        '/tf', '/tf_static'}
    # the camera mount, once, before the first image (as robot_state_publisher latches it)
    (log_time, _, mount), = bag.pop('/tf_static')
    assert log_time == drive.render(0).stamp_ns
    mount = mount.transforms[0]
    assert (mount.header.frame_id, mount.child_frame_id) == ('base_link', 'camera_optical_frame')
    assert all(len(messages) == FRAMES for messages in bag.values())
    assert bag[image_topic][0][1] == ('sensor_msgs/msg/CompressedImage' if compressed
                                      else 'sensor_msgs/msg/Image')

    for i in range(FRAMES):
        frame = drive.render(i)
        stamp = frame.stamp_ns
        for topic, messages in bag.items():
            log_time, _, message = messages[i]
            header = message.transforms[0].header if topic == '/tf' else message.header
            assert log_time == stamp
            assert header.stamp.sec * 10**9 + header.stamp.nanosec == stamp
            in_world = topic in ('/camera/pose', '/tf')
            expected_frame = 'world' if in_world else 'camera_optical_frame'
            assert header.frame_id == expected_frame

        rgb = message_to_cvimage(bag[image_topic][i][2], 'rgb8')
        if compressed:
            assert bag[image_topic][i][2].format.startswith('rgb8; jpeg compressed')
            assert np.abs(rgb.astype(int) - frame.rgb).mean() < 4  # JPEG at quality 90
        else:
            assert np.array_equal(rgb, frame.rgb)

        depth_msg = bag['/camera/depth_gt'][i][2]
        assert (depth_msg.encoding, depth_msg.step, depth_msg.is_bigendian) == ('32FC1', 96 * 4, 0)
        depth = message_to_cvimage(depth_msg)
        assert depth.dtype == np.float32
        assert np.array_equal(depth, frame.depth, equal_nan=True)

        info = bag['/camera/camera_info'][i][2]
        assert (info.width, info.height) == (96, 48)
        np.testing.assert_allclose(info.k.reshape(3, 3), drive.camera.K)
        np.testing.assert_allclose(info.p.reshape(3, 4)[:, :3], drive.camera.K)
        assert np.all(info.p.reshape(3, 4)[:, 3] == 0)

        pose = bag['/camera/pose'][i][2].pose
        np.testing.assert_allclose([pose.position.x, pose.position.y, pose.position.z],
                                   frame.T_world_cam[:3, 3])
        np.testing.assert_allclose(quaternion_to_rotation(pose.orientation),
                                   frame.T_world_cam[:3, :3], atol=1e-12)
        # /tf carries the robot's base; through the mount it is the camera's pose again
        transform = bag['/tf'][i][2].transforms[0]
        assert transform.child_frame_id == 'base_link'
        T_base_camera = transform_matrix(mount.transform)
        np.testing.assert_allclose(T_base_camera, T_BASE_CAMERA, atol=1e-12)
        np.testing.assert_allclose(transform_matrix(transform.transform) @ T_base_camera,
                                   frame.T_world_cam, atol=1e-9)


def test_refuses_to_overwrite_and_leaves_existing_output_untouched(tmp_path, drive):
    out = tmp_path / 'drive'
    out.mkdir()
    (out / 'keep.txt').write_text('mine')
    with pytest.raises(UserError, match='already exists'):
        write_drive_bag(drive, out, progress=False)
    assert [p.name for p in out.iterdir()] == ['keep.txt']
    assert (out / 'keep.txt').read_text() == 'mine'


class _FailingDrive(SyntheticDrive):
    def render(self, index):
        if index == 2:
            raise RuntimeError('simulated crash while rendering')
        return super().render(index)


def test_a_crash_mid_write_leaves_no_bag_under_the_final_name(tmp_path):
    drive = _FailingDrive(DriveConfig(width=32, height=16, frames=4))
    out = tmp_path / 'drive'
    with pytest.raises(RuntimeError, match='simulated crash'):
        write_drive_bag(drive, out, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the bag nor its staging directory


def test_quaternion_round_trip_covers_every_branch():
    rng = np.random.default_rng(0)
    angles = [0.0, np.pi, np.pi / 2, -np.pi + 1e-3]
    axes = [np.array(a, float) for a in ([1, 0, 0], [0, 1, 0], [0, 0, 1])]
    axes += [a / np.linalg.norm(a) for a in rng.normal(size=(5, 3))]
    for axis in axes:
        for angle in angles:
            K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
            R = np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K
            q = builders.rotation_to_quaternion(R)
            assert q[3] >= 0
            as_msg = type('Q', (), dict(zip('xyzw', q)))
            np.testing.assert_allclose(quaternion_to_rotation(as_msg), R, atol=1e-12)
