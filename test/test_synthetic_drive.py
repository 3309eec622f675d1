"""The synthetic drive: view-consistent images, exact depth, KITTI-like motion, seeds."""
import cv2
import numpy as np
import pytest
import torch

from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive


def warp_into(target, source, K, depth_scale=1.0):
    """Synthesise `target` from `source` with target's GT depth (times depth_scale) and the GT
    poses. Returns the synthesised RGB and the mask of pixels visible in both frames."""
    height, width = target.depth.shape
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    z = target.depth.astype(np.float64) * depth_scale
    points = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z,
                       np.ones_like(z)], axis=-1)
    T_source_target = np.linalg.inv(source.T_world_cam) @ target.T_world_cam
    p = points @ T_source_target.T
    z_source = p[..., 2]
    map_u = (K[0, 0] * p[..., 0] / z_source + K[0, 2]).astype(np.float32)
    map_v = (K[1, 1] * p[..., 1] / z_source + K[1, 2]).astype(np.float32)
    synthesised = cv2.remap(source.rgb, map_u, map_v, cv2.INTER_LINEAR)
    # Visible in the source: the point's depth there agrees with the source's own depth map.
    seen = cv2.remap(np.nan_to_num(source.depth, nan=1e6), map_u, map_v, cv2.INTER_LINEAR,
                     borderValue=1e6)
    visible = (np.isfinite(z) & (z_source > 0) & (map_u >= 0) & (map_u <= width - 1)
               & (map_v >= 0) & (map_v <= height - 1)
               & (np.abs(seen - z_source) < 0.01 * z_source))
    return synthesised, visible


def photometric_error(a, b, mask):
    return float((np.abs(a.astype(np.float64) - b.astype(np.float64)) / 255.0)[mask].mean())


def view_synthesis_errors(pairs, K, wrong_scale: float) -> dict:
    """Over (source, target) frame pairs: the mean error of the target synthesised from the
    source with the true depth and pose ('true'), of the source unwarped ('unwarped'), of a
    depth `wrong_scale` times too far ('wrong'), and the mean share of visible pixels."""
    errors = {'true': [], 'unwarped': [], 'wrong': [], 'visible': []}
    for source, target in pairs:
        synthesised, visible = warp_into(target, source, K)
        wrong, _ = warp_into(target, source, K, depth_scale=wrong_scale)
        for name, image in (('true', synthesised), ('unwarped', source.rgb), ('wrong', wrong)):
            errors[name].append(photometric_error(image, target.rgb, visible))
        errors['visible'].append(visible.mean())
    return {name: float(np.mean(values)) for name, values in errors.items()}


@pytest.mark.parametrize('seed', [0, 7])
def test_gt_depth_and_pose_reproduce_the_next_frame(seed):
    """Self-supervision's premise: view synthesis with the true depth and pose reproduces the
    image (up to resampling), and clearly beats both no motion and a wrong depth."""
    drive = SyntheticDrive(DriveConfig(width=640, height=192, frames=8, seed=seed))
    e = view_synthesis_errors([(drive.render(i), drive.render(i + 1)) for i in (0, 3, 6)],
                              drive.camera.K, wrong_scale=1.25)
    print(f'seed {seed}: mean |I_t+1 - warp(I_t)| = {e["true"]:.4f} with GT, '
          f'{e["unwarped"]:.4f} unwarped, {e["wrong"]:.4f} with depth x1.25; '
          f'{e["visible"]:.0%} of pixels visible')
    assert e['visible'] > 0.8
    assert e['true'] < 0.008                     # about 2 grey levels of 255
    assert e['true'] < e['unwarped'] / 8
    assert e['true'] < e['wrong'] / 3


def test_frames_have_texture_depth_and_sky():
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=2, seed=3))
    frame = drive.render(1)
    assert frame.rgb.shape == (96, 320, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (96, 320) and frame.depth.dtype == np.float32
    sky = np.isnan(frame.depth)
    assert 0.01 < sky.mean() < 0.5
    assert np.all(frame.depth[~sky] > 0) and np.all(frame.depth[~sky] <= drive.config.max_depth)
    assert (sky[: 96 // 3].mean() > sky[-96 // 3:].mean())  # the sky is up
    # Rich texture where the photometric loss needs it: local contrast on the ground ahead.
    gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    assert np.abs(cv2.Laplacian(gray, cv2.CV_64F))[-30:].mean() > 2.0
    assert frame.stamp_ns - drive.render(0).stamp_ns == 100_000_000  # 10 Hz


def test_trajectory_is_kitti_like():
    drive = SyntheticDrive(DriveConfig(width=64, height=32, frames=120, seed=5))
    positions = drive.poses[:, :3, 3]
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert steps.min() >= 0.5 - 1e-6 and steps.max() <= 1.5 + 0.05
    forward = drive.poses[:, :3, 2]  # optical z axis in the world
    yaw = np.degrees(np.arctan2(forward[:, 1], forward[:, 0]))
    assert np.abs(yaw).max() < 8.0 and np.abs(np.diff(yaw)).max() < 1.0
    assert np.allclose(positions[:, 2], 1.65, atol=0.05)
    R = drive.poses[:, :3, :3]
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1.0)


def test_seeds_give_different_scenes_and_the_same_seed_the_same_frames():
    def first_frame(seed):
        return SyntheticDrive(DriveConfig(width=96, height=48, frames=1, seed=seed)).render(0)
    a, b, again = first_frame(1), first_frame(2), first_frame(1)
    assert np.array_equal(a.rgb, again.rgb)
    assert np.array_equal(a.depth, again.depth, equal_nan=True)
    assert np.abs(a.rgb.astype(int) - b.rgb).mean() > 10


def test_principal_point_is_not_the_image_centre():
    camera = SyntheticDrive(DriveConfig(width=640, height=192, frames=1)).camera
    assert abs(camera.cx - 319.5) > 2 and abs(camera.cy - 95.5) > 2
    assert camera.fx == pytest.approx(0.58 * 640, rel=0.01)  # KITTI-like field of view


@pytest.mark.parametrize('kwargs, message', [
    (dict(width=8), 'width and height'),
    (dict(frames=0), 'frames'),
    (dict(camera_height=5.0), 'camera_height'),
    (dict(speed=(2.0, 1.0)), 'speed'),
])
def test_bad_config_is_rejected_with_the_field_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DriveConfig(**kwargs)


def test_training_windows_rooms_and_variety():
    """Synthetic training data (issue 22): windows of a taller render with K following them,
    room walks with their own stride, and drives whose camera height and speed vary."""
    from hybrid_depth_core.datasets.samples import AugmentConfig
    from hybrid_depth_core.datasets.synthetic_dataset import SyntheticDataset
    plain = SyntheticDataset((5,), 14, 96, 64, progress=False, render_height=128)
    rgb, depth, K = plain.drives[0]
    t = plain.index[0][1]
    sample = plain[0]  # no augmentation: the centred window
    np.testing.assert_array_equal(sample['depth_gt'][0].numpy(), depth[t, 32:96])
    assert sample[('K', 0)][1, 2].item() == pytest.approx(K[1, 2] - 32, abs=1e-4)
    varied = SyntheticDataset((5,), 14, 96, 64, AugmentConfig(flip_probability=0), progress=False,
                              render_height=128, variety=True, room_seeds=(2,))
    tops = set()
    for item in range(len(varied)):
        drive, t = varied.index[item]
        sample = varied[item]
        gt = sample['depth_gt'][0].numpy()
        full = varied.drives[drive][1][t]
        top = next(row for row in range(65) if np.array_equal(full[row:row + 64], gt,
                                                              equal_nan=True))
        tops.add(top)
        assert sample[('K', 0)][1, 2].item() == pytest.approx(
            varied.drives[drive][2][1, 2] - top, abs=1e-4)
    assert len(tops) > 5  # the window moves
    level = SyntheticDataset((5,), 14, 96, 64, AugmentConfig(flip_probability=0),
                             progress=False, render_height=128, centred_windows=True)
    for item in range(len(level)):  # augmented, yet every window about the middle row
        t = level.index[item][1]
        np.testing.assert_array_equal(level[item]['depth_gt'][0].numpy(),
                                      level.drives[0][1][t, 32:96])
    street, room = varied.strides  # a walk moves centimetres a frame, a car about a metre
    assert room > street
    speeds = {SyntheticDataset((s,), 3, 64, 64, progress=False, variety=True,
                               frame_stride=1).motion[0].distance(0, 1) for s in (1, 2, 3)}
    assert len(speeds) == 3  # each drive's own speed


def test_window_heights_are_drawn_per_batch_and_repeat_on_resume():
    """Issue 22: batches of taller windows (a 4:3 camera's view at the training focal length)
    among the usual ones, every item of a batch the same height, the draw repeatable."""
    from hybrid_depth_core.datasets.synthetic_dataset import SyntheticDataset
    from hybrid_depth_core.training.sampling import EpochSampler, WindowHeightBatches
    dataset = SyntheticDataset((5,), 14, 96, 64, progress=False, render_height=128,
                               window_heights=(64, 128), frame_stride=1)
    rgb, depth, K = dataset.drives[0]
    tall = dataset[(0, 128)]
    assert tuple(tall[('color', 0, 0)].shape[-2:]) == (128, 96)
    np.testing.assert_array_equal(tall['depth_gt'][0].numpy(), depth[dataset.index[0][1]])
    assert tall[('K', 0)][1, 2].item() == pytest.approx(K[1, 2], abs=1e-4)
    with pytest.raises(ValueError, match='160 rows does not fit frames rendered 128'):
        dataset[(0, 160)]

    def batches(start=0):
        sampler = EpochSampler(len(dataset), seed=4)
        sampler.set_position(1, start)
        return list(WindowHeightBatches(
            torch.utils.data.BatchSampler(sampler, 2, drop_last=True), (64, 128), seed=4))
    drawn = batches()
    heights = [{rows for _, rows in batch} for batch in drawn]
    assert all(len(h) == 1 for h in heights) and set.union(*heights) == {64, 128}
    assert batches(start=4) == drawn[2:]  # resumed mid-epoch: the same batches, same heights
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=drawn)
    assert {tuple(b[('color', 0, 0)].shape[-2:]) for b in loader} == {(64, 96), (128, 96)}


def test_window_heights_are_checked_against_the_render():
    from hybrid_depth_core.datasets.sources import DataConfig
    for heights in ((64, 160), (64, 100)):  # taller than the render; not a multiple of 32
        with pytest.raises(ValueError, match='multiples of 32 from 64 up to the render height'):
            DataConfig(width=96, height=64, render_height=128, window_heights=heights)
    with pytest.raises(ValueError, match='synthetic data only'):
        DataConfig(source='bag', width=96, height=64, window_heights=(64,))
