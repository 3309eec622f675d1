"""Dense depth hints (tracks/stereo.py): optical flow with a recording's true motion gives a
rendered room's and street's depth and agrees with the tracked hints; a camera that does not
move gives none; an error of the measured rotations is fitted away, and a pixel whose sources
disagree is dropped."""
import dataclasses

import cv2
import numpy as np

from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.synthetic.room import RoomWalk, RoomWalkConfig
from hybrid_depth_core.tracks import stereo
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


def test_dense_hints_with_the_true_motion_are_a_rendered_room_and_streets_depth():
    room = RoomWalk(RoomWalkConfig(width=320, height=240, frames=70, seed=1))
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=16, seed=3))
    # (scene, frames, least share of the pixels, median and 90th percentile error at most);
    # driving forward, the depth near the point it drives to is the roughest (benchmarks.md)
    for sequence, chosen, least, median, p90 in ((room, range(40, 56), 0.5, 0.02, 0.08),
                                                 (drive, range(16), 0.2, 0.05, 0.32)):
        frames, rgb, K, poses = _rendered(sequence, chosen)
        typical = float(np.nanmedian([f.depth for f in frames]))
        hints = stereo.dense_hints(rgb, K, poses, typical)
        assert hints.metric and hints.size[0] == stereo.WIDTH
        pixels = hints.size[0] * hints.size[1] / stereo.KEEP_EVERY ** 2
        assert all(len(d) >= least * pixels for d in hints.depths[1:-1])  # densely
        errors = np.concatenate(_errors(frames, hints, rgb.shape[2]))
        assert np.median(errors) < median and np.percentile(errors, 90) < p90
        assert min(a.min() for a in hints.angles if len(a)) > 0
        # they agree with the tracked hints of the same motion; scaled by 0.8, they do not
        tracked = recording_hints(rgb, K, poses, window=8)
        ratio, shared = stereo.agreement(tracked, hints)
        assert stereo.agrees(ratio, shared) and abs(ratio - 1) < 0.05
        off = dataclasses.replace(hints, depths=[0.8 * d for d in hints.depths])
        assert not stereo.agrees(*stereo.agreement(tracked, off))


def test_an_error_of_the_measured_rotations_is_fitted_away(monkeypatch):
    room = RoomWalk(RoomWalkConfig(width=320, height=240, frames=70, seed=1))
    frames, rgb, K, poses = _rendered(room, range(40, 52))
    rng = np.random.default_rng(0)
    for pose in poses:  # each camera turned 0.3 degrees about a random axis: a handheld's error
        axis = rng.normal(size=3)
        pose[:3, :3] = pose[:3, :3] @ cv2.Rodrigues(np.radians(0.3) * axis
                                                    / np.linalg.norm(axis))[0]
    typical = float(np.nanmedian([f.depth for f in frames]))
    fitted = stereo.dense_hints(rgb, K, poses, typical)
    monkeypatch.setattr(stereo, 'ROTATION_ROUNDS', 0)
    as_measured = stereo.dense_hints(rgb, K, poses, typical)
    errors = np.concatenate(_errors(frames, fitted, rgb.shape[2]))
    assert np.median(errors) < 0.05 and np.percentile(errors, 90) < 0.2
    # without the fit, the sources disagree and the check drops almost every pixel
    assert sum(map(len, fitted.depths)) > 20 * sum(map(len, as_measured.depths))


def test_a_pixel_whose_sources_disagree_is_dropped():
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    v, u = np.mgrid[0:48, 0:64]
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1) @ np.linalg.inv(K).T
    matches = []
    for x in (-0.2, 0.2, 0.3):  # a wall 2 m ahead, seen from 20 cm left, 20 and 30 cm right
        T = np.eye(4)
        T[0, 3] = -x
        landed = stereo.Match(np.zeros((u.size, 2)), np.ones(u.size, bool), K, T).project(
            rays, np.full(u.size, 0.5))
        found = (landed[:, 0] >= 0) & (landed[:, 0] <= 63)
        matches.append(stereo.Match(landed, found, K, T))
    matches[2].landed[(v.ravel() >= 10) & (v.ravel() < 20)] += [3.0, 0]  # a wrong match there
    depth = stereo.fitted_depth(matches, K, (64, 48))
    np.testing.assert_allclose(depth[30:, 10:50], 2.0, rtol=0.01)  # where all three agree
    assert not np.isfinite(depth[10:20, 10:50]).any()  # the wrong match disagrees: dropped
    assert not np.isfinite(depth[:, :4]).any()  # one source alone (the others out of view)


def test_a_camera_that_does_not_move_gives_no_dense_hints():
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=6, seed=3))
    frames, rgb, K, poses = _rendered(drive, range(6))
    still = np.repeat(poses[:1], len(frames), 0)
    hints = stereo.dense_hints(rgb, K, still, 10.0)
    assert sum(len(d) for d in hints.depths) == 0
    assert stereo.choose_sources(still, K[0], 0, 10.0, (320, 96)) == []


def test_dense_hints_that_disagree_with_the_tracked_ones_are_not_used(tmp_path, monkeypatch,
                                                                      capsys):
    from hybrid_depth_core.datasets import bag_dataset
    from hybrid_depth_core.datasets.bag_dataset import HINTS_WIDTH, BagDataset, BagSource
    from hybrid_depth_core.recordings.bag_motion import MotionOptions
    from hybrid_depth_core.synthetic.bag_writer import write_drive_bag

    drive = SyntheticDrive(DriveConfig(width=HINTS_WIDTH, height=96, frames=12, seed=3))
    write_drive_bag(drive, tmp_path / 'bag', progress=False)
    real = stereo.dense_hints

    def too_near(*args, **kwargs):  # what poses that do not fit the images give
        found = real(*args, **kwargs)
        return dataclasses.replace(found, depths=[0.7 * d for d in found.depths])
    monkeypatch.setattr(stereo, 'dense_hints', too_near)
    source = BagSource(tmp_path / 'bag', motion=MotionOptions())
    dataset = BagDataset([source], 224, 64, stride=1, progress=False, hints=True)
    assert 'dense depth hints not used' in capsys.readouterr().out
    frames = bag_dataset.hint_frames(source, dataset.recordings[0], None, progress=False)
    tracked = recording_hints(frames.rgb, frames.K, dataset.motion[0].poses,
                              bag_dataset.HINTS_WINDOW)
    metric = dataset.hints[0][1]
    for found, expected in zip(metric.depths, tracked.depths, strict=True):
        np.testing.assert_array_equal(found, expected)  # the tracked ones alone
