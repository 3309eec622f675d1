"""Metrics and protocols against values computed by hand; evaluation runs that match each
frame against its keyframe."""
import math

import numpy as np
import pytest

from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.tracks.image_motion import MAX_MATCHING_GAP
from hybrid_depth_core.evaluation.drivers import KeyframeRun, evaluate_synthetic
from hybrid_depth_core.evaluation.metrics import (KITTI_EIGEN, Accumulator, Protocol,
                                                  depth_metrics, evaluate_image, valid_mask)
from moving_images import camera_matrix, shifted_frames


def test_metrics_of_a_hand_made_pair():
    prediction, gt = np.array([1.0, 3.0, 2.0]), np.array([1.0, 2.0, 4.0])
    m = depth_metrics(prediction, gt)
    assert m['abs_rel'] == pytest.approx((0 + 1 / 2 + 2 / 4) / 3)
    assert m['sq_rel'] == pytest.approx((0 + 1 / 2 + 4 / 4) / 3)
    assert m['rmse'] == pytest.approx(math.sqrt((0 + 1 + 4) / 3))
    assert m['rmse_log'] == pytest.approx(math.sqrt((0 + math.log(1.5) ** 2
                                                     + math.log(2) ** 2) / 3))
    # max ratios 1, 1.5, 2 -> below 1.25: 1 of 3; below 1.5625: 2; below 1.953: 2.
    assert (m['a1'], m['a2'], m['a3']) == pytest.approx((1 / 3, 2 / 3, 2 / 3))


def test_median_scaling_removes_a_global_scale_and_reports_it():
    gt = np.random.default_rng(0).uniform(2, 50, size=(20, 30))
    metrics, ratio = evaluate_image(gt / 4, gt, Protocol())
    assert ratio == pytest.approx(4.0) and metrics['abs_rel'] == pytest.approx(0, abs=1e-12)
    metrics, ratio = evaluate_image(gt / 4, gt, Protocol(median_scaling=False))
    assert ratio == 1.0 and metrics['abs_rel'] == pytest.approx(0.75)


def test_invalid_ground_truth_and_caps_are_excluded():
    gt = np.array([[np.nan, 0.0, 5.0, 100.0]])
    assert valid_mask(gt, Protocol(max_depth=80)).tolist() == [[False, False, True, False]]
    assert evaluate_image(np.ones((1, 4)), np.full((1, 4), np.nan), Protocol()) is None


def test_garg_crop_keeps_the_central_lower_region():
    mask = valid_mask(np.full((375, 1242), 10.0), KITTI_EIGEN)
    rows, cols = np.nonzero(mask)
    # int(0.40810811 * 375) = 153 .. int(0.99189189 * 375) = 371 exclusive; likewise columns.
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (153, 370, 44, 1196)


def test_accumulator_averages_images_and_summarises_scale():
    accumulator = Accumulator(Protocol())
    gt = np.full((4, 4), 10.0)
    accumulator.add(gt / 2, gt)
    accumulator.add(gt / 2 * np.array([[1.0, 1.0, 1.0, 2.0]]), gt)
    result = accumulator.summary()
    assert result['images'] == 2
    assert result['abs_rel'] == pytest.approx((0 + 0.25 * 1.0) / 2)  # 1 of 4 pixels off by 2x
    assert result['median_scaled']['abs_rel'] == result['abs_rel']
    # as predicted: every pixel of the first at half the truth, 3 of 4 of the second
    assert result['unscaled']['abs_rel'] == pytest.approx((0.5 + 0.75 * 0.5) / 2)
    assert result['scale_median'] == pytest.approx(2.0)
    unscaled = Accumulator(Protocol(median_scaling=False))
    unscaled.add(gt / 2, gt)
    assert unscaled.summary()['abs_rel'] == pytest.approx(0.5)
    with pytest.raises(ValueError, match='no image'):
        Accumulator(Protocol()).summary()


def test_keyframe_run_passes_each_frames_keyframe_as_previous():
    frames = shifted_frames([0, 0.6, 1.2, 1.2, 1.8], 120, 80)
    calls = []

    def predict(rgb, K, previous, turn):
        calls.append(previous)
        assert (turn is None) == (previous is None)
        return np.ones(rgb.shape[:2], np.float32)
    run = KeyframeRun(predict)
    ages = [run(rgb, camera_matrix(120, 80))[1] for rgb in frames]
    assert ages == [None, None, 2, 3, 3]  # the repeat and too little motion are skipped
    assert [previous is None if age is None else previous is frames[index - age]
            for index, (age, previous) in enumerate(zip(ages, calls))] == [True] * 5
    run.reset()
    assert run(frames[4], camera_matrix(120, 80))[1] is None
    calls.clear()
    alone = KeyframeRun(predict, keyframes=False)
    assert [alone(rgb, camera_matrix(120, 80))[1] for rgb in frames] == [None] * 5
    assert calls == [None] * 5


def test_keyframe_run_breaks_sequences_where_the_node_does():
    # Each frame moves 1.5 x MATCHING_MOTION: within a sequence its keyframe is the previous.
    frames = shifted_frames([1.5 * i for i in range(8)], 120, 80)
    K, t0, step = camera_matrix(120, 80), 10**9, 10**8
    camera = PinholeCamera.from_matrix(K, 120, 80)
    zoomed = PinholeCamera.from_matrix(K * [[1.1], [1.1], [1]], 120, 80)
    run = KeyframeRun(lambda rgb, K, previous, turn: np.ones(rgb.shape[:2], np.float32))
    stamps_and_cameras = [(t0, ('cam', camera)), (t0 + step, ('cam', camera)),
                          (t0 + step // 2, ('cam', camera)),      # stamps went back
                          (t0 + 3 * step // 2, ('cam', camera)),
                          (t0 + 30 * step, ('cam', camera)),      # a gap of seconds
                          (t0 + 31 * step, ('other', camera)),    # another frame id
                          (t0 + 32 * step, ('other', zoomed)),    # other intrinsics
                          (t0 + 33 * step, ('other', zoomed))]
    ages = [run(rgb, K, stamp, identity)[1]
            for rgb, (stamp, identity) in zip(frames, stamps_and_cameras)]
    assert ages == [None, 1, None, 1, None, None, None, 1]


def test_synthetic_evaluation_reports_the_images_matched_against_a_keyframe():
    seen = []

    def predict(rgb, K, previous, turn):
        seen.append(previous is not None)
        return np.ones(rgb.shape[:2], np.float32)
    result = evaluate_synthetic(predict, [1000, 1001], 8, 96, 64, progress=False)
    assert result['images'] == 16 and not seen[0] and not seen[8]  # each drive starts alone
    assert result['keyframe_images'] == sum(seen) > 0
    assert 1 <= result['keyframe_age_median'] <= MAX_MATCHING_GAP
    seen.clear()
    alone = evaluate_synthetic(predict, [1000], 3, 96, 64, progress=False, keyframes=False)
    assert not any(seen) and alone['keyframe_images'] == 0
    assert alone['keyframe_age_median'] is None
