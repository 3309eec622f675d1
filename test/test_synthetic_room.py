"""The synthetic room walk: analytic depth, view consistency, depth range, handheld motion,
seeds, and `hybrid-depth sample --scene room`."""
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from test_cli import run as run_cli
from test_synthetic_drive import view_synthesis_errors

from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.synthetic import RenderedSequence, RoomWalk, RoomWalkConfig
from hybrid_depth_core.synthetic.drive import R_BODY_OPTICAL, rotation_zyx
from hybrid_depth_core.synthetic.scene import Boxes, Material, Poles, Scene

ROOM = ((0.0, 0.0, 0.0), (4.0, 5.0, 2.5))  # inner corners of a bare room
EYE = (1.0, 2.5, 1.3)                      # the camera, 3 m from the wall x = 4


def _bare_room() -> Scene:
    """Floor, ceiling and four walls as 0.1 m slabs around ROOM, no ground plane."""
    (x0, y0, z0), (x1, y1, z1) = ROOM
    t = 0.1
    slabs = [((x0 - t, y0 - t, z0 - t), (x1 + t, y1 + t, z0), Material.FLOOR_WOOD),
             ((x0 - t, y0 - t, z1), (x1 + t, y1 + t, z1 + t), Material.CEILING),
             ((x0 - t, y0, z0), (x0, y1, z1), Material.WALL),
             ((x1, y0, z0), (x1 + t, y1, z1), Material.WALL),
             ((x0, y0 - t, z0), (x1, y0, z1), Material.WALL),
             ((x0, y1, z0), (x1, y1 + t, z1), Material.WALL)]
    lo, hi, material = zip(*slabs)
    boxes = Boxes(lo=np.array(lo), hi=np.array(hi), material=np.array(material),
                  color=np.full((6, 3), 0.6, np.float32),
                  pattern=np.tile(np.float32([3.0, 7.0, 0.15, 1.2]), (6, 1)))
    poles = Poles(center=np.zeros((0, 2)), radius=np.zeros(0), height=np.zeros(0),
                  color=np.zeros((0, 3), np.float32), pattern=np.zeros((0, 2), np.float32))
    return Scene(road_half_width=0.0, sidewalk_width=0.0, boxes=boxes, poles=poles,
                 sun=np.array([0.0, 0.0, 1.0]), ground_plane=False)


@pytest.mark.parametrize('yaw_deg', [0.0, 20.0])
def test_depth_on_a_wall_is_the_analytic_ray_plane_depth(yaw_deg):
    """Facing the wall x = 4 from 3 m, turned by `yaw`: pixel (u, v) has the world direction
    (cos yaw + a sin yaw, ...) per unit depth, a = (u - cx) / fx, so depth 3 / (cos + a sin)."""
    config = RoomWalkConfig(width=64, height=48, frames=1)
    camera = PinholeCamera.from_fov(64, 48, config.hfov_deg, config.principal_offset)
    yaw = np.radians(yaw_deg)
    pose = np.eye(4)
    pose[:3, :3] = rotation_zyx(yaw, 0.0, 0.0) @ R_BODY_OPTICAL
    pose[:3, 3] = EYE
    frame = RenderedSequence(config, camera, pose[None], _bare_room(), 20.0).render(0)

    a = (np.arange(camera.width) - camera.cx) / camera.fx
    b = (np.arange(camera.height) - camera.cy) / camera.fy
    depth = (ROOM[1][0] - EYE[0]) / (np.cos(yaw) + a * np.sin(yaw))
    y = EYE[1] + depth * (np.sin(yaw) - a * np.cos(yaw))       # where each column meets it
    z = EYE[2] - depth[None, :] * b[:, None]
    on_wall = (z > 0.01) & (z < ROOM[1][2] - 0.01) & (y > 0.01) & (y < ROOM[1][1] - 0.01)
    assert on_wall.mean() > 0.5
    expected = np.broadcast_to(depth, frame.depth.shape)
    np.testing.assert_allclose(frame.depth[on_wall], expected[on_wall], rtol=0, atol=1e-6)
    v, u = int(round(camera.cy)), int(round(camera.cx))
    assert frame.depth[v, u] == pytest.approx(3.0 / (np.cos(yaw) + a[u] * np.sin(yaw)), abs=1e-6)
    # Rows that miss the wall see the floor or the ceiling, nearer: the room is closed.
    assert not np.isnan(frame.depth).any() and np.all(frame.depth[~on_wall] <= expected[~on_wall]
                                                      + 1e-6)
    assert frame.rgb.std() > 2  # the plaster is not flat


@pytest.mark.parametrize('seed', [0, 3])
def test_gt_depth_and_pose_reproduce_a_later_frame(seed):
    """As for the street: view synthesis with the true depth and pose reproduces the image, and
    clearly beats no motion and a depth 1.3x too far. Pairs 8 frames apart that moved >= 6 cm
    (much of the walk is turning, where depth hardly matters)."""
    walk = RoomWalk(RoomWalkConfig(width=320, height=240, seed=seed))
    position = walk.poses[:, :3, 3]
    pairs = [i for i in range(0, len(walk) - 8, 7)
             if np.linalg.norm(position[i + 8] - position[i]) > 0.06][:3]
    assert len(pairs) == 3
    e = view_synthesis_errors([(walk.render(i), walk.render(i + 8)) for i in pairs],
                              walk.camera.K, wrong_scale=1.3)
    print(f'seed {seed}: mean |I_t+8 - warp(I_t)| = {e["true"]:.4f} with GT, '
          f'{e["unwarped"]:.4f} unwarped, {e["wrong"]:.4f} with depth x1.3; '
          f'{e["visible"]:.0%} of pixels visible')
    assert e['visible'] > 0.6
    assert e['true'] < 0.006                     # under 2 grey levels of 255
    assert e['true'] < e['unwarped'] / 8
    assert e['true'] < e['wrong'] / 2.5


@pytest.mark.parametrize('seed', [0, 1, 2, 5])
def test_every_pixel_hits_a_surface_at_indoor_range(seed):
    walk = RoomWalk(RoomWalkConfig(width=64, height=48, seed=seed))
    depths = np.stack([walk.render(i).depth for i in range(0, len(walk), 40)])
    assert not np.isnan(depths).any()                  # no sky indoors
    assert depths.min() >= 0.5                         # never closer to anything
    assert depths.max() <= 9.0
    assert np.median(depths) > 1.0
    clearance = walk.room.clearance(walk.poses[:, :2, 3])
    assert clearance.min() >= walk.config.room.clearance - 0.01
    height = walk.poses[:, 2, 3]
    assert height.min() >= 1.0 - 0.01 and height.max() <= 1.6 + 0.01


def test_the_walk_is_slow_smooth_turns_a_lot_and_stops():
    steps, turns, sideways, stops = [], [], [], []
    for seed in range(4):
        poses = RoomWalk(RoomWalkConfig(width=16, height=16, seed=seed)).poses
        R = poses[:, :3, :3]
        assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-12)
        motion = np.diff(poses[:, :3, 3], axis=0)
        step = np.linalg.norm(motion, axis=1)
        assert step.max() < 0.025                      # under 0.75 m/s at 30 Hz
        assert np.abs(np.diff(motion, axis=0)).max() < 0.005  # no jumps
        relative = np.einsum('nji,njk->nik', R[:-1], R[1:])
        angle = np.degrees(np.arccos(np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2,
                                             -1, 1)))
        assert angle.max() < 4.0
        forward = poses[:, :3, 2]
        yaw = np.degrees(np.unwrap(np.arctan2(forward[:, 1], forward[:, 0])))
        assert yaw.max() - yaw.min() > 60              # looks around
        still = np.all(poses[1:] == poses[:-1], axis=(1, 2))
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], still, [0]]))))[::2]
        assert len(runs) >= 1 and all(10 <= run + 1 <= 31 for run in runs)
        moving = step > 1e-3
        in_camera = np.einsum('nji,nj->ni', R[:-1][moving], motion[moving])
        sideways.append(np.abs(in_camera[:, 0]) > np.abs(in_camera[:, 2]))
        steps.append(step)
        turns.append(angle)
        stops.append(len(runs))
    steps, turns = np.concatenate(steps), np.concatenate(turns)
    assert 0.001 < np.median(steps) < 0.015            # millimetres per frame
    assert 0.2 < np.median(turns) < 1.5                # degrees per frame
    assert 0.25 < np.concatenate(sideways).mean() < 0.75
    assert sum(stops) >= 6


def test_kinect_like_camera_and_stamps():
    walk = RoomWalk(RoomWalkConfig(frames=2, seed=1))
    camera = walk.camera
    assert (camera.width, camera.height) == (640, 480) and len(walk) == 2
    hfov = np.degrees(2 * np.arctan(camera.width / 2 / camera.fx))
    assert hfov == pytest.approx(62.0, abs=0.1) and camera.fx == camera.fy
    assert abs(camera.cx - 319.5) > 2 and abs(camera.cy - 239.5) > 2
    assert walk.stamp_ns(1) - walk.stamp_ns(0) == round(1e9 / 30)


def test_seeds_give_different_rooms_and_the_same_seed_the_same_frames():
    def frame(seed):
        return RoomWalk(RoomWalkConfig(width=64, height=48, frames=30, seed=seed)).render(29)
    a, b, again = frame(1), frame(2), frame(1)
    assert np.array_equal(a.rgb, again.rgb) and np.array_equal(a.depth, again.depth)
    assert np.array_equal(a.T_world_cam, again.T_world_cam)
    assert np.abs(a.rgb.astype(int) - b.rgb).mean() > 10


@pytest.mark.parametrize('kwargs, message', [
    (dict(width=8), 'width and height'),
    (dict(frames=0), 'frames'),
    (dict(camera_height=(1.0, 2.5)), 'camera_height'),
    (dict(speed=(0.6, 0.2)), 'speed'),
    (dict(turn_rate=(0.0, 10.0)), 'turn_rate'),
    (dict(stop_frames=(20, 10)), 'stop_frames'),
])
def test_bad_config_is_rejected_with_the_field_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RoomWalkConfig(**kwargs)


def test_sample_command_writes_a_room_bag(tmp_path):
    out = tmp_path / 'room'
    result = run_cli('sample', out, '--scene', 'room', '--frames', 2, '--width', 64,
                     '--height', 48, '--seed', 4)
    assert result.returncode == 0, result.stderr
    assert 'room' in result.stdout
    with AnyReader([out]) as reader:
        assert {c.topic for c in reader.connections} == {
            '/camera/image_raw', '/camera/camera_info', '/camera/depth_gt', '/camera/pose',
            '/tf', '/tf_static'}
        messages = {}
        for connection, _, raw in reader.messages():
            messages.setdefault(connection.topic, []).append(
                reader.deserialize(raw, connection.msgtype))
    assert len(messages.pop('/tf_static')) == 1  # the camera mount, once
    assert all(len(topic) == 2 for topic in messages.values())
    image, depth, info = (messages[t][0] for t in ('/camera/image_raw', '/camera/depth_gt',
                                                   '/camera/camera_info'))
    assert (image.width, image.height) == (64, 48) and image.width * 3 == image.height * 4
    assert (depth.encoding, depth.width, depth.height) == ('32FC1', 64, 48)
    assert (info.width, info.height) == (64, 48)
    values = np.frombuffer(bytes(depth.data), np.float32)
    assert np.all(np.isfinite(values)) and values.min() >= 0.5


def test_sample_defaults_follow_the_scene():
    from hybrid_depth_ros.cli import build_parser
    from hybrid_depth_ros.cli.sample import make_sequence

    def sequence(*args):
        return make_sequence(build_parser().parse_args(['sample', 'out', *args]))
    room = sequence('--scene', 'room', '--frames', '3').config
    assert (room.width, room.height, room.frames) == (640, 480, 3)
    assert RoomWalkConfig().frames == 400
    street = sequence('--width', '320').config
    assert (street.width, street.height, street.frames) == (320, 192, 50)
