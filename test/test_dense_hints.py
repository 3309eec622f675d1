"""Dense depth hints (tracks/stereo.py): plane-sweep stereo with a recording's true motion gives
a rendered room's and street's depth and agrees with the tracked hints; a camera that does not
move gives none; the multi-view geometric check keeps a depth only where another frame agrees
with it."""
import dataclasses

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
    for sequence, chosen, least in ((room, range(40, 56), 0.03), (drive, range(16), 0.15)):
        frames, rgb, K, poses = _rendered(sequence, chosen)
        typical = float(np.nanmedian([f.depth for f in frames]))
        hints = stereo.dense_hints(rgb, K, poses, typical)
        assert hints.metric and hints.size[0] == stereo.WIDTH
        pixels = hints.size[0] * hints.size[1]
        assert all(len(d) >= least * pixels for d in hints.depths)  # every frame, densely
        errors = np.concatenate(_errors(frames, hints, rgb.shape[2]))
        assert np.median(errors) < 0.03 and np.percentile(errors, 90) < 0.12
        assert min(a.min() for a in hints.angles) > 0
        # they agree with the tracked hints of the same motion; scaled by 0.8, they do not
        tracked = recording_hints(rgb, K, poses, window=8)
        ratio, shared = stereo.agreement(tracked, hints)
        assert stereo.agrees(ratio, shared) and abs(ratio - 1) < 0.03
        off = dataclasses.replace(hints, depths=[0.8 * d for d in hints.depths])
        assert not stereo.agrees(*stereo.agreement(tracked, off))


def test_a_camera_that_does_not_move_gives_no_dense_hints():
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=6, seed=3))
    frames, rgb, K, poses = _rendered(drive, range(6))
    still = np.repeat(poses[:1], len(frames), 0)
    hints = stereo.dense_hints(rgb, K, still, 10.0)
    assert sum(len(d) for d in hints.depths) == 0
    assert stereo.choose_sources(still, K[0], 0, 10.0, (320, 96)) == []


def test_the_geometric_check_keeps_a_depth_only_where_another_frame_agrees():
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    T_other_this = np.eye(4)
    T_other_this[0, 3] = -0.2  # the other camera 20 cm to the right: a wall 2 m ahead in both
    wall = np.full((48, 64), 2.0, np.float32)
    kept = stereo.consistent(wall, K, [wall], [K], [T_other_this])
    assert np.isfinite(kept[:, 5:]).all()  # where the other frame sees the wall too (5 px on)
    assert not np.isfinite(kept[:, :5]).any()  # the left edge is out of its view
    wrong = wall.copy()
    wrong[10:20, 10:20] = 2.2  # a match 10% off
    kept = stereo.consistent(wrong, K, [wall], [K], [T_other_this])
    assert not np.isfinite(kept[12:18, 12:18]).any() and np.isfinite(kept[30:40, 10:20]).all()
    assert not np.isfinite(stereo.consistent(wall, K, [], [], [])).any()  # no one to agree


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
