"""Dense depth hints (tracks/dense_hints.py): plane-sweep stereo and optical flow with a
recording's true motion give a rendered room's and street's depth and agree with the tracked
hints; a camera that does not move gives none; the plane sweep's multi-view geometric check
keeps a depth only where another frame agrees with it; the flow fits an error of the measured
rotations away and drops a pixel whose sources disagree; the plane sweep is chosen for a camera
that drives toward what it sees, the flow otherwise."""
import dataclasses

import cv2
import numpy as np
import pytest

from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.synthetic.room import RoomWalk, RoomWalkConfig
from hybrid_depth_core.tracks import dense_hints, flow_stereo, sweep_stereo
from hybrid_depth_core.tracks.hints import recording_hints


def _rendered(sequence, chosen):
    frames = [sequence.render(index) for index in chosen]
    rgb = np.stack([f.rgb for f in frames])
    poses = np.stack([f.T_world_cam for f in frames])
    return frames, rgb, np.repeat(sequence.camera.K[None], len(frames), 0), poses


def _errors(frames, hints, width):
    """|hint / rendered depth - 1| per frame, the rendered depth at each hint's pixel."""
    scale = width / hints.size[0]
    errors = []
    for frame, pixels, depths in zip(frames, hints.pixels, hints.depths):
        u = np.round((pixels[:, 0] + 0.5) * scale - 0.5).astype(int)
        v = np.round((pixels[:, 1] + 0.5) * scale - 0.5).astype(int)
        truth = frame.depth[v, u]
        known = np.isfinite(truth)
        errors.append(np.abs(depths[known] / truth[known] - 1))
    return errors


# (matcher, {scene: (least share of the pixels per frame, median error, 90th percentile)}):
# driving forward, the flow is roughest near the point it drives to (benchmarks.md)
ACCURACY = [(sweep_stereo, {'room': (0.03, 0.03, 0.12), 'drive': (0.15, 0.03, 0.12)}),
            (flow_stereo, {'room': (0.5, 0.02, 0.08), 'drive': (0.2, 0.05, 0.32)})]


@pytest.mark.parametrize('matcher, bounds', ACCURACY, ids=['plane sweep', 'flow'])
def test_dense_hints_with_the_true_motion_are_a_rendered_room_and_streets_depth(matcher,
                                                                                bounds):
    room = RoomWalk(RoomWalkConfig(width=320, height=240, frames=70, seed=1))
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=16, seed=3))
    for name, sequence, chosen in (('room', room, range(40, 56)), ('drive', drive, range(16))):
        least, median, p90 = bounds[name]
        frames, rgb, K, poses = _rendered(sequence, chosen)
        typical = float(np.nanmedian([f.depth for f in frames]))
        hints = matcher.dense_hints(rgb, K, poses, typical)
        assert hints.metric and hints.size[0] == matcher.WIDTH
        pixels = hints.size[0] * hints.size[1] / getattr(matcher, 'KEEP_EVERY', 1) ** 2
        assert all(len(d) >= least * pixels for d in hints.depths[1:-1])  # densely
        errors = np.concatenate(_errors(frames, hints, rgb.shape[2]))
        assert np.median(errors) < median and np.percentile(errors, 90) < p90
        assert min(a.min() for a in hints.angles if len(a)) > 0
        # they agree with the tracked hints of the same motion; scaled by 0.8, they do not
        tracked = recording_hints(rgb, K, poses, window=8)
        ratio, shared = dense_hints.agreement(tracked, hints)
        assert dense_hints.agrees(ratio, shared, matcher) and abs(ratio - 1) < 0.05
        off = dataclasses.replace(hints, depths=[0.8 * d for d in hints.depths])
        assert not dense_hints.agrees(*dense_hints.agreement(tracked, off), matcher)


def test_the_plane_sweep_drives_toward_what_it_sees_and_the_flow_takes_the_rest():
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=30, seed=3))
    K, size = drive.camera.K, (320, 96)
    forward = np.stack([drive.render(i).T_world_cam for i in range(30)])
    assert dense_hints.matcher_for(forward, K, size) is sweep_stereo
    # the same drive seen by a camera turned 90 degrees to the side: the point it drives to
    # is out of view
    sideways = forward @ np.diag([1.0, 1, 1, 1])
    sideways[:, :3, :3] = forward[:, :3, :3] @ cv2.Rodrigues(np.array([0, np.pi / 2, 0]))[0]
    assert dense_hints.matcher_for(sideways, K, size) is flow_stereo
    # a handheld camera in a room moves every which way; one that only turns has no heading
    room = RoomWalk(RoomWalkConfig(width=320, height=240, frames=400, seed=1))
    assert dense_hints.matcher_for(room.poses, room.camera.K, (320, 240)) is flow_stereo
    turning = np.repeat(forward[:1], 30, 0)
    for index, pose in enumerate(turning):
        pose[:3, :3] = pose[:3, :3] @ cv2.Rodrigues(np.array([0, 0.02 * index, 0]))[0]
    assert not dense_hints.travel_heading(turning).any()
    assert dense_hints.matcher_for(turning, K, size) is flow_stereo


def test_an_error_of_the_measured_rotations_is_fitted_away(monkeypatch):
    room = RoomWalk(RoomWalkConfig(width=320, height=240, frames=70, seed=1))
    frames, rgb, K, poses = _rendered(room, range(40, 52))
    rng = np.random.default_rng(0)
    for pose in poses:  # each camera turned 0.3 degrees about a random axis: a handheld's error
        axis = rng.normal(size=3)
        pose[:3, :3] = pose[:3, :3] @ cv2.Rodrigues(np.radians(0.3) * axis
                                                    / np.linalg.norm(axis))[0]
    typical = float(np.nanmedian([f.depth for f in frames]))
    fitted = flow_stereo.dense_hints(rgb, K, poses, typical)
    monkeypatch.setattr(flow_stereo, 'ROTATION_ROUNDS', 0)
    as_measured = flow_stereo.dense_hints(rgb, K, poses, typical)
    errors = np.concatenate(_errors(frames, fitted, rgb.shape[2]))
    assert np.median(errors) < 0.05 and np.percentile(errors, 90) < 0.2
    # without the fit, the sources disagree and the check drops almost every pixel
    assert sum(map(len, fitted.depths)) > 20 * sum(map(len, as_measured.depths))


def test_a_flow_pixel_whose_sources_disagree_is_dropped():
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    v, u = np.mgrid[0:48, 0:64]
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1) @ np.linalg.inv(K).T
    matches = []
    for x in (-0.2, 0.2, 0.3):  # a wall 2 m ahead, seen from 20 cm left, 20 and 30 cm right
        T = np.eye(4)
        T[0, 3] = -x
        landed = flow_stereo.Match(np.zeros((u.size, 2)), np.ones(u.size, bool), K, T).project(
            rays, np.full(u.size, 0.5))
        found = (landed[:, 0] >= 0) & (landed[:, 0] <= 63)
        matches.append(flow_stereo.Match(landed, found, K, T))
    matches[2].landed[(v.ravel() >= 10) & (v.ravel() < 20)] += [3.0, 0]  # a wrong match there
    depth = flow_stereo.fitted_depth(matches, K, (64, 48))
    np.testing.assert_allclose(depth[30:, 10:50], 2.0, rtol=0.01)  # where all three agree
    assert not np.isfinite(depth[10:20, 10:50]).any()  # the wrong match disagrees: dropped
    assert not np.isfinite(depth[:, :4]).any()  # one source alone (the others out of view)


@pytest.mark.parametrize('matcher', [sweep_stereo, flow_stereo], ids=['plane sweep', 'flow'])
def test_a_camera_that_does_not_move_gives_no_dense_hints(matcher):
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=6, seed=3))
    frames, rgb, K, poses = _rendered(drive, range(6))
    still = np.repeat(poses[:1], len(frames), 0)
    hints = matcher.dense_hints(rgb, K, still, 10.0)
    assert sum(len(d) for d in hints.depths) == 0
    assert matcher.choose_sources(still, K[0], 0, 10.0, (320, 96)) == []


def test_the_geometric_check_keeps_a_depth_only_where_another_frame_agrees():
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    T_other_this = np.eye(4)
    T_other_this[0, 3] = -0.2  # the other camera 20 cm to the right: a wall 2 m ahead in both
    wall = np.full((48, 64), 2.0, np.float32)
    kept = sweep_stereo.consistent(wall, K, [wall], [K], [T_other_this])
    assert np.isfinite(kept[:, 5:]).all()  # where the other frame sees the wall too (5 px on)
    assert not np.isfinite(kept[:, :5]).any()  # the left edge is out of its view
    wrong = wall.copy()
    wrong[10:20, 10:20] = 2.2  # a match 10% off
    kept = sweep_stereo.consistent(wrong, K, [wall], [K], [T_other_this])
    assert not np.isfinite(kept[12:18, 12:18]).any() and np.isfinite(kept[30:40, 10:20]).all()
    assert not np.isfinite(sweep_stereo.consistent(wall, K, [], [], [])).any()  # no one to agree


def test_dense_hints_that_disagree_with_the_tracked_ones_are_not_used(tmp_path, monkeypatch,
                                                                      capsys):
    from hybrid_depth_core.datasets import bag_dataset
    from hybrid_depth_core.datasets.bag_dataset import HINTS_WIDTH, BagDataset, BagSource
    from hybrid_depth_core.recordings.bag_motion import MotionOptions
    from hybrid_depth_core.synthetic.bag_writer import write_drive_bag

    drive = SyntheticDrive(DriveConfig(width=HINTS_WIDTH, height=96, frames=12, seed=3))
    write_drive_bag(drive, tmp_path / 'bag', progress=False)
    real = sweep_stereo.dense_hints  # the drive's matcher

    def too_near(*args, **kwargs):  # what poses that do not fit the images give
        found = real(*args, **kwargs)
        return dataclasses.replace(found, depths=[0.7 * d for d in found.depths])
    monkeypatch.setattr(sweep_stereo, 'dense_hints', too_near)
    source = BagSource(tmp_path / 'bag', motion=MotionOptions())
    dataset = BagDataset([source], 224, 64, stride=1, progress=False, hints=True)
    assert 'dense depth hints not used' in capsys.readouterr().out
    frames = bag_dataset.hint_frames(source, dataset.recordings[0], None, progress=False)
    tracked = recording_hints(frames.rgb, frames.K, dataset.motion[0].poses,
                              bag_dataset.HINTS_WINDOW)
    metric = dataset.hints[0][1]
    for found, expected in zip(metric.depths, tracked.depths, strict=True):
        np.testing.assert_array_equal(found, expected)  # the tracked ones alone
