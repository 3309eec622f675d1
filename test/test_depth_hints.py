"""Depth hints from a recording's own geometry (tracks/hints.py): on a rendered drive with its
exact motion, triangulated tracks give the rendered depth; a point seen from too narrow a
baseline, or tracked wrongly, is not a hint."""
import numpy as np

from hybrid_depth_core.data.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.tracks.hints import MIN_ANGLE_DEG, recording_hints, triangulate


def test_hints_on_a_rendered_drive_are_its_depth():
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=20, seed=3))
    frames = list(drive)
    rgb = np.stack([f.rgb for f in frames])
    poses = np.stack([f.T_world_cam for f in frames])
    K = np.repeat(drive.camera.K[None], len(frames), 0)
    hints = recording_hints(rgb, K, poses, window=6)
    counts = [len(d) for d in hints.depths]
    assert min(counts) > 10 and '0 of 20 images without any' in hints.report()
    errors = []
    for frame, pixels, depths in zip(frames, hints.pixels, hints.depths):
        for (u, v), z in zip(pixels, depths):
            # corners sit on edges: the nearer of the rendered depths around the pixel
            patch = frame.depth[max(0, round(v) - 1):round(v) + 2,
                                max(0, round(u) - 1):round(u) + 2]
            patch = patch[np.isfinite(patch)]
            if len(patch):
                errors.append(np.min(np.abs(patch - z) / patch))
    assert np.median(errors) < 0.05
    assert all(np.all(a >= MIN_ANGLE_DEG) for a in hints.angles)
    # without motion (every pose the same) nothing is triangulated
    still = recording_hints(rgb, K, np.repeat(poses[:1], len(frames), 0), window=6)
    assert sum(len(d) for d in still.depths) == 0


def test_triangulation_keeps_only_points_that_reproject_in_every_view():
    K = np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    poses = np.tile(np.eye(4), (4, 1, 1))
    poses[:, 0, 3] = [0.0, 0.1, 0.2, 0.3]  # a camera moving right, 10 cm a frame
    point = np.array([0.2, -0.1, 2.0])
    projected = [(K @ (point - pose[:3, 3]))[:2] / (point - pose[:3, 3])[2] for pose in poses]
    points = np.array([projected, projected])
    points[1, 2] += [3.0, 0.0]  # one view of the second track 3 pixels off
    X, good, angles = triangulate(points, np.ones((2, 4), bool), K, poses)
    np.testing.assert_allclose(X[0], point, atol=1e-9)
    assert good.tolist() == [True, False] and angles[0] > MIN_ANGLE_DEG
