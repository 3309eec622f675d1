"""Depth hints from a recording's own geometry (tracks/hints.py): on a rendered drive and room
with their exact motion, triangulated tracks give the rendered depth, and from the images alone
the depth up to scale; a point seen from too narrow a baseline, or tracked wrongly, is not a
hint; the hint loss (losses.hint_loss) pulls depth to a hint only where Depth Hints' rule
says so."""
import dataclasses

import numpy as np
import pytest
import torch

from hybrid_depth_core.training import losses
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.synthetic.room import RoomWalk, RoomWalkConfig
from hybrid_depth_core.tracks.hints import (MIN_ANGLE_DEG, hint_map, recording_hints,
                                            triangulate)


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
    assert np.median(errors) < 0.03
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


def _nearest_truth_ratios(frames, hints):
    """Per frame, hint / rendered depth at each hint (the nearest of the 3x3 rendered depths
    around it: corners sit on edges)."""
    ratios = []
    for frame, pixels, depths in zip(frames, hints.pixels, hints.depths):
        found = []
        for (u, v), z in zip(pixels, depths):
            patch = frame.depth[max(0, round(v) - 1):round(v) + 2,
                                max(0, round(u) - 1):round(u) + 2]
            patch = patch[np.isfinite(patch)]
            if len(patch):
                found.append(patch[np.argmin(np.abs(patch - z))] / z)
        ratios.append(np.array(found))
    return ratios


def _rendered(sequence, chosen=None):
    frames = [sequence.render(index) for index in (chosen or range(len(sequence)))]
    rgb = np.stack([f.rgb for f in frames])
    poses = np.stack([f.T_world_cam for f in frames])
    return frames, rgb, np.repeat(sequence.camera.K[None], len(frames), 0), poses


def test_hints_in_a_rendered_room_with_its_true_motion_are_its_depth():
    walk = RoomWalk(RoomWalkConfig(width=640, height=480, frames=70, seed=1))
    frames, rgb, K, poses = _rendered(walk, range(40, 64))  # walking at about 1 cm a frame
    hints = recording_hints(rgb, K, poses, window=8)
    ratios = np.concatenate(_nearest_truth_ratios(frames, hints))
    assert hints.metric and len(ratios) > 100
    assert np.median(np.abs(1 / ratios - 1)) < 0.03


def test_hints_from_the_images_alone_are_the_depth_up_to_one_scale_per_image():
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=20, seed=3))
    frames, rgb, K, _ = _rendered(drive)
    hints = recording_hints(rgb, K, None, window=6)
    assert not hints.metric
    per_image = [np.median(np.abs(r / np.median(r) - 1))
                 for r in _nearest_truth_ratios(frames, hints) if len(r) >= 10]
    assert len(per_image) >= 15 and np.median(per_image) < 0.08


def test_a_point_seen_over_too_short_a_baseline_is_not_a_hint():
    K = np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    point = np.array([0.2, -0.1, 2.0])
    for step, kept in ((0.1, True), (0.005, False)):  # 8.6 and 0.43 degrees between the rays
        poses = np.tile(np.eye(4), (4, 1, 1))
        poses[:, 0, 3] = step * np.arange(4)
        projected = [(K @ (point - pose[:3, 3]))[:2] / (point - pose[:3, 3])[2]
                     for pose in poses]
        _, good, angles = triangulate(np.array([projected]), np.ones((1, 4), bool), K, poses)
        assert good.tolist() == [kept] and (angles[0] >= MIN_ANGLE_DEG) == kept


def test_a_hint_map_puts_each_hint_in_its_pixel_at_the_training_size_the_nearer_winning():
    pixels = np.array([[10.0, 4.0], [10.2, 4.1], [30.0, 20.0], [400.0, 4.0]])
    depths = np.array([3.0, 2.0, 5.0, 1.0])
    depth = hint_map(pixels, depths, (0.5, 0.5), 64, 32)  # hints found on 128x64 frames
    assert depth[2, 5] == 2.0 and depth[10, 15] == 5.0  # ((u + 0.5) / 2 - 0.5) rounded
    assert np.isfinite(depth).sum() == 2  # the fourth is outside


def test_the_hint_loss_pulls_depth_to_a_hint_only_where_the_hint_reprojects_better():
    depth = torch.full((1, 1, 2, 3), 2.0, requires_grad=True)
    hints = torch.full((1, 1, 2, 3), torch.nan)
    hints[0, 0, 0, 0], hints[0, 0, 1, 2] = 1.0, 4.0
    depth_error = torch.full((1, 1, 2, 3), 0.2)
    hint_error = torch.full((1, 1, 2, 3), 0.3)
    hint_error[0, 0, 0, 0] = 0.1  # only the first hint synthesises the target better
    loss, used = losses.hint_loss(depth, hints, depth_error, hint_error)
    assert used.flatten().tolist() == [1, 0, 0, 0, 0, 0]
    assert loss.item() == pytest.approx(np.log(2.0))
    loss.backward()
    moved = depth.grad.flatten()
    assert moved[0] > 0 and (moved[1:] == 0).all()  # a step down, towards the hint of 1 m
    # "always": every hint, whatever the errors
    depth.grad = None
    loss, used = losses.hint_loss(depth, hints, None, None)
    loss.backward()
    assert used.sum() == 2 and depth.grad[0, 0, 1, 2] < 0  # up, towards 4 m
    # no hint the rule takes: no loss and no gradient at all
    depth.grad = None
    loss, used = losses.hint_loss(depth, hints, torch.zeros_like(depth_error), hint_error)
    loss.backward()
    assert loss.item() == 0 and used.sum() == 0 and (depth.grad == 0).all()


def test_the_leash_pulls_a_depth_run_off_its_hint_back_where_the_hint_term_cannot():
    from hybrid_depth_core.networks import disp_to_depth

    def logit_of(depth):  # the sigmoid input that gives `depth` in 0.1-10 m
        disparity = (1 / depth - 1 / 10) / (1 / 0.1 - 1 / 10)
        return float(np.log(disparity / (1 - disparity)))
    # pixels with a 1 m hint: saturated at the far end, at 5 m, at 1.5 m (within twice the
    # hint), at 0.3 m, saturated at the near end; one without a hint at the far end; hints
    # whose twice (6 m) or half (0.15 m) is out of range at that end
    logits = torch.tensor([-25.0, logit_of(5.0), logit_of(1.5), logit_of(0.3), 25.0, -25.0,
                           -25.0, 25.0]).view(1, 1, 2, 4).requires_grad_(True)
    hints = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, torch.nan, 6.0, 0.15]).view(1, 1, 2, 4)
    leash = losses.hint_leash(logits, hints, 0.1, 10.0)
    leash.backward()
    pull = logits.grad.flatten() * 7  # per hint: seven of them
    # full strength at either end: up towards nearer where too far, down where too near
    assert pull[:2].tolist() == pytest.approx([-1, -1]) and pull[3:5].tolist() == [1, 1]
    assert pull[2] == 0 and pull[5] == 0  # within twice the hint; no hint
    assert pull[6] == 0 and pull[7] == 0  # that end of the range is within the factor
    # where the pull is, the log-depth hint term has next to no gradient left
    logits.grad = None
    depth = disp_to_depth(torch.sigmoid(logits), 0.1, 10.0)
    losses.hint_loss(depth, hints, None, None)[0].backward()
    grad = logits.grad.flatten().abs()
    assert 0 < grad[0] < 1e-8 < grad[1] and grad[4] < 1e-8 < grad[3]
    # no metric hint: nothing
    assert losses.hint_leash(logits, torch.full_like(hints, torch.nan), 0.1, 10.0) == 0


def test_metric_hints_give_their_shape_at_each_images_own_scale_and_their_metres_apart():
    from hybrid_depth_core.networks import DepthModelConfig
    from hybrid_depth_core.training.objective import LossConfig, SelfSupervisedObjective

    truth = torch.rand(2, 1, 8, 12, generator=torch.Generator().manual_seed(0)) + 1
    hints = torch.full_like(truth, torch.nan)
    hints[..., ::3, ::3] = truth[..., ::3, ::3]
    # each image at a wrong scale of its own, the shape right
    depth = truth * torch.tensor([2.0, 0.5]).view(-1, 1, 1, 1)

    def terms(**weights):
        objective = SelfSupervisedObjective(DepthModelConfig(arch='resnet18', multi_frame=False),
                                            LossConfig(hints_rule='always', **weights))
        found = objective._hints({'metric_hints': hints}, depth, poses={})
        return {name: (losses.hint_loss(depth, hint, None, None)[0].item(), weight)
                for name, (hint, _, weight) in found.items()}

    found = terms(hints=10, metric_hints=1)
    assert found['loss/metric_hints_shape'] == (pytest.approx(0, abs=1e-6), 10)
    assert found['loss/metric_hints'] == (pytest.approx(np.log(2)), 1)
    assert set(terms(hints=10, metric_hints=0)) == {'loss/metric_hints_shape'}
    assert terms(hints=0, metric_hints=1) == {}  # hints 0: no hints at all


def test_a_bags_hints_come_from_its_images_and_motion_are_cached_and_reach_both_networks(
        tmp_path, monkeypatch):
    from hybrid_depth_core.datasets import bag_dataset
    from hybrid_depth_core.datasets.bag_dataset import HINTS_WIDTH, BagDataset, BagSource
    from hybrid_depth_core.recordings.bag_motion import MotionOptions
    from hybrid_depth_core.synthetic.bag_writer import write_drive_bag
    from hybrid_depth_core.networks import DepthModelConfig
    from hybrid_depth_core.training.objective import LossConfig, SelfSupervisedObjective
    from hybrid_depth_core.tracks import sweep_stereo

    drive = SyntheticDrive(DriveConfig(width=HINTS_WIDTH, height=96, frames=16, seed=3))
    write_drive_bag(drive, tmp_path / 'bag', progress=False)
    rendered = drive.render
    monkeypatch.setattr(drive, 'render', lambda index: dataclasses.replace(
        rendered(index), depth=3 * rendered(index).depth))  # ground truth three times as deep
    write_drive_bag(drive, tmp_path / 'deeper', progress=False)
    cache = tmp_path / 'cache'

    def build(bag, hints=True):
        return BagDataset([BagSource(tmp_path / bag, motion=MotionOptions())], 224, 64,
                          stride=1, cache_dir=cache,
                          progress=False, hints=hints)
    dataset = build('bag')
    hints, metric = dataset.hints[0]  # from the images alone, and with the bag's /tf
    assert not hints.metric and sum(len(d) for d in hints.depths) > 100
    assert metric.metric and sum(len(d) for d in metric.depths) > 100
    frames = np.stack([f.rgb for f in drive])
    K = np.repeat(drive.camera.K[None], 16, 0)
    alone = recording_hints(frames, K, None, bag_dataset.HINTS_WINDOW)
    for found, expected in zip(hints.depths + hints.pixels, alone.depths + alone.pixels,
                               strict=True):
        np.testing.assert_allclose(found, expected, rtol=1e-6)
    # the metric ones: the tracks' and, many more, plane-sweep stereo's (the drive's matcher)
    poses = np.stack([f.T_world_cam for f in drive])
    tracked = recording_hints(frames, K, poses, bag_dataset.HINTS_WINDOW)
    assert (sum(len(d) for d in metric.depths) - sum(len(d) for d in tracked.depths)
            > 10 * len(frames))
    assert len(list(cache.glob('*.hints.npz'))) == 2

    def assert_same(kinds, expected_kinds):
        for kind, expected in zip(kinds, expected_kinds, strict=True):
            assert (kind.metric, kind.size) == (expected.metric, expected.size)
            for found, wanted in zip(kind.depths + kind.pixels, expected.depths + expected.pixels,
                                     strict=True):
                np.testing.assert_array_equal(found, wanted)
    # the ground-truth topic plays no part (its own cache entries: another bag)
    assert_same(build('deeper').hints[0], dataset.hints[0])
    # a second run reads the cache
    monkeypatch.setattr(bag_dataset, 'recording_hints', lambda *args: 1 / 0)
    monkeypatch.setattr(sweep_stereo, 'dense_hints', lambda *args, **kwargs: 1 / 0)
    assert_same(build('bag').hints[0], dataset.hints[0])
    assert 'hints' not in build('bag', hints=False)[0]

    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    for key in ('hints', 'metric_hints'):
        assert batch[key].shape == (len(dataset), 1, 64, 224)
        assert torch.isfinite(batch[key]).sum() > 50
    torch.manual_seed(0)
    objective = SelfSupervisedObjective(DepthModelConfig(arch='resnet18', multi_frame=True),
                                        LossConfig())
    _, terms, _ = objective(batch)
    for key in ('hints', 'metric_hints'):
        assert terms[f'loss/{key}'] > 0 and terms[f'loss/multi_frame_{key}'] > 0
        assert 0 < terms[f'used/{key}'] <= 1
    # the student's hint term reaches the student only, the teacher's the teacher only
    terms['loss/multi_frame_hints'].backward(retain_graph=True)
    assert objective.depth.encoder.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in objective.pose.parameters())
    assert all(p.grad is None for p in objective.teacher.parameters())
    terms['loss/metric_hints'].backward()
    assert objective.teacher.encoder.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in objective.pose.parameters())
    off = SelfSupervisedObjective(DepthModelConfig(arch='resnet18', multi_frame=True),
                                  LossConfig(hints=0))
    assert not any('hints' in name for name in off(batch)[1])


def test_a_flipped_sample_flips_its_hints_with_its_frames():
    from hybrid_depth_core.datasets.samples import AugmentConfig, make_sample
    frames = {f: np.zeros((16, 24, 3), np.uint8) for f in (-1, 0, 1)}
    hints = np.full((16, 24), np.nan, np.float32)
    hints[1, 0] = 2.5
    K = np.array([[5.0, 0, 2.5], [0, 5.0, 1.5], [0, 0, 1]])
    flipped = make_sample(frames, K, np.random.default_rng(0),
                          AugmentConfig(flip_probability=1, color_jitter_probability=0),
                          hints={False: hints})['hints']
    assert flipped[0, 1, 23] == 2.5 and torch.isfinite(flipped).sum() == 1


def test_bags_with_and_without_motion_train_together(tmp_path):
    from hybrid_depth_core.datasets.bag_dataset import HINTS_WIDTH, BagDataset, BagSource
    from hybrid_depth_core.recordings.bag_motion import MotionOptions
    from hybrid_depth_core.synthetic.bag_writer import write_drive_bag

    drive = SyntheticDrive(DriveConfig(width=HINTS_WIDTH, height=96, frames=12, seed=4))
    write_drive_bag(drive, tmp_path / 'moving', progress=False)
    write_drive_bag(drive, tmp_path / 'still', motion='none', progress=False)
    dataset = BagDataset([BagSource(tmp_path / name, motion=MotionOptions())
                          for name in ('moving', 'still')], 224, 64, stride=1, progress=False,
                         hints=True)
    assert [len(kinds) for kinds in dataset.hints] == [2, 1]
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    which = [w for w, _ in dataset.items]
    metric_seen = torch.isfinite(batch['metric_hints']).flatten(1).any(1).tolist()
    assert not any(seen for seen, w in zip(metric_seen, which) if w == 1)
    assert any(seen for seen, w in zip(metric_seen, which) if w == 0)
