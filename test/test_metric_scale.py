"""Metric scale from the camera's measured motion: the TF tree, odometry and pose topics of a
bag, what goes wrong with them, the velocity loss, and a short training that learns the
measured lengths."""
import numpy as np
import pytest
import torch

from hybrid_depth_core.datasets.bag_dataset import BagDataset, BagSource
from hybrid_depth_core.recordings.bag_motion import MotionOptions, read_camera_motion
from hybrid_depth_core.synthetic.bag_writer import (BASE_FRAME, ODOM_TOPIC, T_BASE_CAMERA,
                                                    write_drive_bag)
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.synthetic.drive import R_BODY_OPTICAL, rotation_zyx
from hybrid_depth_core.recordings.tf_tree import (BadTransform, TransformTree, quaternion_matrix,
                                                  slerp)
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.training.losses import velocity_loss
from hybrid_depth_core.messages import builders as msgs
from hybrid_depth_core.networks import DepthModelConfig
from hybrid_depth_core.runtime.predictor import DepthPredictor, scale_warning
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.objective import SOURCE_FRAMES, LossConfig, SelfSupervisedObjective
from hybrid_depth_core.training.trainer import collapse_warning, train
from recorded_bags import write_bag
from test_rosbag import camera_messages

FRAMES = 8


@pytest.fixture(scope='module')
def drive():
    drive = SyntheticDrive(DriveConfig(width=64, height=32, frames=FRAMES, seed=5))
    return drive, [drive.render(i) for i in range(FRAMES)]


def motion_of(path, **options):
    with Bag(path) as bag:
        stamps = np.array([stamp for stamp, _, _ in bag.images()])
        return read_camera_motion(bag, stamps, MotionOptions(**options))


def odometry_bag(path, drive, poses=None, stamp_shift_ns=0, static=False, zero_rotation_at=None):
    """The drive's images with its base's odometry on /odom (and the mount on /tf_static)."""
    sequence, frames = drive
    base = sequence.poses @ np.linalg.inv(T_BASE_CAMERA) if poses is None else poses
    messages = camera_messages(frames, sequence.camera.K)
    for i, frame in enumerate(frames):
        header = msgs.header(frame.stamp_ns + stamp_shift_ns, 'odom')
        odometry = msgs.odometry(base[i], header, BASE_FRAME)
        if i == zero_rotation_at:
            q = odometry.pose.pose.orientation
            q.x = q.y = q.z = q.w = 0.0
        messages.append((ODOM_TOPIC, 'nav_msgs/msg/Odometry', odometry, frame.stamp_ns))
    if static:
        messages.insert(0, ('/tf_static', 'tf2_msgs/msg/TFMessage',
                            msgs.tf_message(T_BASE_CAMERA, msgs.header(0, BASE_FRAME), 'camera'),
                            frames[0].stamp_ns))
    return write_bag(path, messages)


def test_a_tf_chain_composes_a_rotated_mount_and_interpolates_between_stamps():
    tree = TransformTree()
    mount = np.eye(4)
    mount[:3, :3], mount[:3, 3] = R_BODY_OPTICAL, (0.5, 0.0, 1.0)
    w, z = np.cos(np.pi / 4), np.sin(np.pi / 4)  # a quarter turn about z
    tree.add('world', 'base', 0, (0, 0, 0), (0, 0, 0, 1), static=False)
    tree.add('world', 'base', 100_000_000, (1, 0, 0), (0, 0, z, w), static=False)
    tree.add('base', 'camera', 0, mount[:3, 3], msgs.rotation_to_quaternion(R_BODY_OPTICAL),
             static=True)
    poses, known = tree.lookup('world', 'camera', [50_000_000, 0, 150_000_000])
    assert known.tolist() == [True, True, False]  # never extrapolated
    # halfway: base at (0.5, 0, 0) turned 45 degrees; the camera 0.5 m ahead and 1 m above it
    yaw = rotation_zyx(np.pi / 4, 0, 0)
    expected = yaw @ np.array([0.5, 0.0, 1.0]) + (0.5, 0, 0)
    np.testing.assert_allclose(poses[0, :3, 3], expected, atol=1e-12)
    np.testing.assert_allclose(poses[0, :3, :3], yaw @ R_BODY_OPTICAL, atol=1e-12)
    np.testing.assert_allclose(poses[1], mount, atol=1e-12)
    tree.add('world', 'base', 400_000_000, (2, 0, 0), (0, 0, 0, 1), static=False)
    assert not tree.lookup('world', 'camera', [250_000_000])[1][0]  # a gap over 0.2 s
    # a fixed frame below the root: base -> camera is static, nothing moves
    assert not tree.moves('base', 'camera') and tree.moves('world', 'camera')


def test_a_lookup_below_the_root_ignores_what_lies_above_and_what_is_broken_elsewhere():
    tree = TransformTree()
    for i in range(11):  # odom -> base at 10 Hz
        tree.add('odom', 'base', i * 100_000_000, (0.1 * i, 0, 0), (0, 0, 0, 1), static=False)
    tree.add('map', 'odom', 0, (5, 5, 0), (0, 0, 0, 1), static=False)  # localisation: 1 Hz
    tree.add('map', 'odom', 10**9, (6, 5, 0), (0, 0, 0, 1), static=False)
    tree.add('base', 'camera', 0, (0, 0, 1), (0, 0, 0, 1), static=True)
    tree.add('base', 'wheel', 0, (0, 0, 0), (0, 0, 0, 0), static=False)  # broken, off the chain
    poses, known = tree.lookup('odom', 'camera', [450_000_000])
    assert known[0]
    np.testing.assert_allclose(poses[0, :3, 3], (0.45, 0, 1), atol=1e-12)
    assert not tree.lookup('map', 'camera', [450_000_000])[1][0]  # map -> odom: 1 s apart
    with pytest.raises(BadTransform, match='zero-length quaternion'):
        tree.lookup('odom', 'wheel', [0])
    tree.add('camera', 'base', 0, (0, 0, 0), (0, 0, 0, 1), static=True)  # a second parent
    with pytest.raises(BadTransform, match="'base' has two parents"):
        tree.lookup('odom', 'camera', [0])


def test_slerp_takes_the_shorter_arc_whichever_sign_a_quaternion_has():
    q0 = np.array([0.0, 0.0, 0.0, 1.0])
    q1 = np.array([0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4)])  # 90 degrees about z
    for sign in (1, -1):
        half = slerp(q0[None], sign * q1[None], np.array([0.5]))[0]
        np.testing.assert_allclose(quaternion_matrix(half), rotation_zyx(np.pi / 4, 0, 0),
                                   atol=1e-12)


def test_a_tf_loop_a_still_source_and_a_static_topic_are_refused_by_name(tmp_path, drive):
    sequence, frames = drive
    messages = camera_messages(frames, sequence.camera.K)
    still = np.eye(4)
    for f in frames:  # odometry that never moves while the images do
        messages.append(('/odom', 'nav_msgs/msg/Odometry',
                         msgs.odometry(still, msgs.header(f.stamp_ns, 'odom'), 'camera'),
                         f.stamp_ns))
        messages.append(('/tf', 'tf2_msgs/msg/TFMessage',
                         msgs.tf_message(still, msgs.header(f.stamp_ns, 'a'), 'camera'),
                         f.stamp_ns))
        messages.append(('/tf', 'tf2_msgs/msg/TFMessage',
                         msgs.tf_message(still, msgs.header(f.stamp_ns, 'camera'), 'a'),
                         f.stamp_ns))
    messages.append(('/tf_static', 'tf2_msgs/msg/TFMessage',
                     msgs.tf_message(still, msgs.header(0, 'x'), 'y'), frames[0].stamp_ns))
    bag = write_bag(tmp_path / 'bag', messages)
    motion, report = motion_of(bag)
    assert motion is None
    assert "/tf: the TF tree has a loop through 'camera'" in report
    assert '/odom: the camera never moves 1 mm or more between two frames' in report
    with pytest.raises(UserError, match='/tf_static holds static transforms, not motion'):
        motion_of(bag, topic='/tf_static')


def test_a_pose_with_covariance_topic_is_read_as_the_cameras_pose(tmp_path, drive):
    sequence, frames = drive
    messages = camera_messages(frames, sequence.camera.K)
    for pose, f in zip(sequence.poses, frames):
        stamped = msgs.pose_stamped(pose, msgs.header(f.stamp_ns, 'map'))
        message = msgs.TYPESTORE.types['geometry_msgs/msg/PoseWithCovarianceStamped'](
            header=stamped.header, pose=msgs.TYPESTORE.types[
                'geometry_msgs/msg/PoseWithCovariance'](pose=stamped.pose,
                                                        covariance=np.zeros(36)))
        messages.append(('/vio/pose', 'geometry_msgs/msg/PoseWithCovarianceStamped', message,
                         f.stamp_ns))
    motion, report = motion_of(write_bag(tmp_path / 'bag', messages))
    np.testing.assert_allclose(motion.poses, sequence.poses, atol=1e-9)
    assert report.startswith('motion from /vio/pose (map -> camera)')
    assert "its pose is taken as the camera's own" in report


@pytest.mark.parametrize('recorded, topic, source', [
    ('tf', '', '/tf (world -> camera_optical_frame)'),
    ('tf', '/camera/pose', '/camera/pose (world -> camera_optical_frame)'),
    ('odom', '', '/odom (odom -> base_link) and /tf_static (base_link -> camera_optical_frame)'),
])
def test_the_sample_bags_motion_is_the_drives_exact_camera_poses(tmp_path, drive, recorded, topic,
                                                                 source):
    bag = write_drive_bag(drive[0], tmp_path / 'bag', motion=recorded, progress=False).path
    motion, report = motion_of(bag, topic=topic)
    np.testing.assert_allclose(motion.poses, drive[0].poses, atol=1e-9)
    steps = np.linalg.norm(np.diff(drive[0].poses[:, :3, 3], axis=0), axis=1)
    assert motion.distance(2, 3) == pytest.approx(steps[2])
    assert report.startswith(f'motion from {source}: {FRAMES} of {FRAMES} frames, median '
                             f'{np.median(steps):.3f} m per frame')


def test_the_fixed_frame_can_be_chosen_and_must_exist_and_move(tmp_path, drive):
    bag = write_drive_bag(drive[0], tmp_path / 'bag', progress=False).path
    motion, _ = motion_of(bag, frame='world')
    np.testing.assert_allclose(motion.poses, drive[0].poses, atol=1e-9)
    with pytest.raises(UserError, match="/tf: the TF tree has no frame 'map'"):
        motion_of(bag, topic='/tf', frame='map')
    with pytest.raises(UserError, match='nothing moves between base_link and camera_optical'):
        motion_of(bag, topic='/tf', frame='base_link')


def test_odometry_without_the_mount_stands_in_with_the_bases_distances(tmp_path, drive):
    motion, report = motion_of(odometry_bag(tmp_path / 'bag', drive))
    base = drive[0].poses @ np.linalg.inv(T_BASE_CAMERA)
    np.testing.assert_allclose(motion.poses[:, :3, 3], base[:, :3, 3], atol=1e-9)
    assert "no static transform from base_link to 'camera'" in report
    with_mount, report = motion_of(odometry_bag(tmp_path / 'mounted', drive, static=True))
    np.testing.assert_allclose(with_mount.poses, drive[0].poses, atol=1e-9)


def test_a_tf_tree_without_the_camera_trains_without_motion_or_stops_if_asked(tmp_path, drive):
    sequence, frames = drive
    messages = camera_messages(frames, sequence.camera.K)  # frame_id 'camera'
    messages += [('/tf', 'tf2_msgs/msg/TFMessage',
                  msgs.tf_message(pose, msgs.header(f.stamp_ns, 'world'), BASE_FRAME),
                  f.stamp_ns) for pose, f in zip(sequence.poses, frames)]
    bag = write_bag(tmp_path / 'bag', messages)
    motion, report = motion_of(bag)
    assert motion is None
    assert "/tf: the TF tree has no frame 'camera'" in report and 'trained without' in report
    with pytest.raises(UserError, match=f"bag {bag}: /tf: the TF tree has no frame 'camera'"):
        motion_of(bag, topic='/tf')
    with pytest.raises(UserError, match="no motion topic '/odom'; motion topics in it: /tf"):
        motion_of(bag, topic='/odom')


def test_odometry_in_another_time_base_or_with_a_broken_quaternion_is_named(tmp_path, drive):
    motion, report = motion_of(odometry_bag(tmp_path / 'late', drive,
                                            stamp_shift_ns=1000 * 10**9))
    assert motion is None and '/odom: its stamps' in report and 'never overlap' in report
    broken = odometry_bag(tmp_path / 'broken', drive, zero_rotation_at=3)
    motion, report = motion_of(broken)
    assert motion is None and 'non-finite or zero-length quaternion' in report
    with pytest.raises(UserError, match='/odom: transform odom -> base_link has a non-finite '
                                        'or zero-length quaternion'):
        motion_of(broken, topic='/odom')


def test_a_jump_far_beyond_the_median_step_is_not_used_as_a_distance(tmp_path, drive):
    base = drive[0].poses @ np.linalg.inv(T_BASE_CAMERA)
    base[4:, 0, 3] += 500.0  # the odometry resets mid-bag
    motion, report = motion_of(odometry_bag(tmp_path / 'jump', drive, poses=base, static=True))
    assert np.isnan(motion.distance(3, 4)) and np.isfinite(motion.distance(4, 5))
    assert np.isfinite(motion.distance(1, 3))
    assert '1 jump(s) over 20x the median step' in report


def test_the_velocity_loss_compares_lengths_where_the_distance_is_known():
    translation = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]], requires_grad=True)
    loss = velocity_loss(translation, torch.tensor([4.0, float('nan')]))
    loss.backward()
    assert loss.item() == pytest.approx(1.0)  # | 5 - 4 |, over the one known pair
    np.testing.assert_allclose(translation.grad.numpy(), [[0.6, 0.8, 0.0], [0, 0, 0]])
    nothing = velocity_loss(translation, torch.full((2,), float('nan')))
    assert nothing.item() == 0.0


def test_a_short_training_brings_the_pose_lengths_to_the_measured_ones(tmp_path):
    drive = SyntheticDrive(DriveConfig(width=128, height=64, frames=10, seed=2))
    bag = write_drive_bag(drive, tmp_path / 'bag', progress=False).path
    dataset = BagDataset([BagSource(bag, motion=MotionOptions())], 64, 64, stride=1,
                         val_fraction=0.0, progress=False)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    measured = torch.stack([batch[('distance', f)] for f in SOURCE_FRAMES])

    def length_error(objective):
        with torch.no_grad():
            poses = objective._poses(batch)
        lengths = torch.stack([poses[f][:, :3, 3].norm(dim=-1) for f in SOURCE_FRAMES])
        return float(((lengths - measured).abs() / measured).mean())

    errors = {}
    for weight in (0.0, LossConfig().velocity):
        torch.manual_seed(0)
        objective = SelfSupervisedObjective(DepthModelConfig(arch='resnet18'),
                                            LossConfig(velocity=weight))
        objective.pose.decoder.start_moving((0.0, 0.0, -0.2))  # forward, far too slowly
        start = length_error(objective)
        optimizer = torch.optim.Adam(objective.parameters(), lr=1e-3)
        for _ in range(12):
            loss, terms, _ = objective(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        errors[weight] = length_error(objective)
    assert start > 0.7
    assert errors[LossConfig().velocity] < 0.35 < errors[0.0]


def test_a_checkpoint_says_whether_it_learnt_metres(tmp_path, checkpoint):
    assert DepthPredictor.from_checkpoint(checkpoint, device='cpu').metric  # synthetic: exact
    config = load_config(None, ['data.seeds=[3]', 'data.frames_per_drive=4', 'data.width=96',
                                'data.height=64', 'batch_size=2', 'data.motion=false'])
    relative = train(config, tmp_path / 'run', max_steps=1, progress=False)
    predictor = DepthPredictor.from_checkpoint(relative, device='cpu')
    assert not predictor.metric
    assert 'up to scale' in scale_warning(predictor, str(relative))
    predictor.depth_scale = 3.0  # the user gave the scale: nothing to say
    assert scale_warning(predictor, str(relative)) is None


def test_training_warns_when_the_teachers_depth_ended_at_an_end_of_the_range():
    objective = SelfSupervisedObjective(DepthModelConfig(arch='resnet18', multi_frame=True),
                                        LossConfig())
    depth_range = objective.depth.cost_volume.depth_range
    depth_range.copy_(torch.tensor([0.1, 0.113]))  # the room run of docs/benchmarks.md
    assert "range's floor (model.min_depth 0.1 m)" in collapse_warning(objective)
    depth_range.copy_(torch.tensor([95.0, 110.0]))
    assert "range's ceiling (model.max_depth 100 m)" in collapse_warning(objective)
    depth_range.copy_(torch.tensor([4.8, 63.6]))  # the street run
    assert collapse_warning(objective) is None
