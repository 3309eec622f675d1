"""`hybrid-depth demo`: node process, replay over DDS, recording, metrics and montage."""
import json

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.networks.checkpoint import load_checkpoint, model_section
from hybrid_depth_core.synthetic.bag_writer import DEPTH_GT_TOPIC
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages.header import stamp_ns
from hybrid_depth_core.messages.depth import depth_to_metres
from hybrid_depth_ros.demo import DemoConfig, run_demo

FRAMES = 6


def test_demo_runs_the_node_over_ros_and_reports_what_it_published(checkpoint, tmp_path):
    params = tmp_path / 'params.yaml'
    params.write_text('/**/hybrid_depth:\n  ros__parameters:\n    cloud_stride: 2\n'
                      '    device: cpu\n')
    out = tmp_path / 'demo'
    lines = []
    metrics = run_demo(DemoConfig(out=out, weights=checkpoint, params_file=params,
                                  frames=FRAMES, width=128, height=64, device='cpu',
                                  second_camera=(96, 72, 62.0)),
                       log=lines.append)
    assert sum('published 6 images' in line for line in lines) == 2, lines
    assert metrics['frames_published'] == FRAMES
    assert metrics['frames_with_depth'] + metrics['frames_dropped'] == FRAMES
    # every image reached the node (the shipped middleware profile); it served or skipped
    # each of them for a newer one (or, the first, had no camera_info yet)
    assert metrics['frames_reached_node'] == FRAMES
    assert metrics['frames_with_depth'] + metrics['frames_skipped_by_node'] <= FRAMES
    assert metrics['frames_with_depth'] >= 3
    assert metrics['latency_image_to_depth']['median_ms'] > 0
    assert json.loads((out / 'metrics.json').read_text()) == metrics
    assert metrics['depth_scale'] == 1.0  # the params file leaves it at the default
    # The network input the node framed each camera to: the training focal length, padded.
    section = model_section(load_checkpoint(checkpoint), 'checkpoint')
    for result, (width, height, fov) in ((metrics, (128, 64, 81.5)),
                                         (metrics['second_camera'], (96, 72, 62.0))):
        assert result['sample_drive']['size'] == [width, height]
        camera = PinholeCamera.from_fov(width, height, fov)
        resized = (width * section.focal[0] / camera.fx, height * section.focal[1] / camera.fy)
        assert [0 <= m - r < 32 for m, r in zip(result['model_input'], resized)] == [True] * 2
        assert result['frames_with_depth'] >= 3
    assert (out / 'second_camera' / 'sample_drive').is_dir()
    assert (out / 'second_camera' / 'node_output').is_dir()

    with AnyReader([out / 'node_output']) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        depth = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(
            connections=[c for c in reader.connections if c.topic == '/camera/depth/image'])]
    assert counts['/camera/depth/image'] == metrics['frames_with_depth']
    assert counts['/camera/depth/points'] >= 1 and counts['/camera/depth/colorized'] >= 1
    assert (depth[0].width, depth[0].height, depth[0].encoding) == (128, 64, '32FC1')
    # The reported AbsRel is the recorded depth's against the drive's ground truth, computed
    # here again by the textbook formula, over the pixels with depth (NaN = none: counted in
    # the coverage instead).
    with AnyReader([out / 'sample_drive']) as reader:
        truth = {stamp_ns(m): depth_to_metres(m) for m in (
            reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(
                connections=[c for c in reader.connections if c.topic == DEPTH_GT_TOPIC]))}
    errors, covered, pixels = [], 0, 0
    for message in depth:
        gt, predicted = truth[stamp_ns(message)], depth_to_metres(message)
        valid = np.isfinite(gt) & (gt > 1e-3) & (gt < 80)
        scored = valid & np.isfinite(predicted)
        pixels, covered = pixels + valid.sum(), covered + scored.sum()
        predicted = np.clip(predicted[scored], 1e-3, 80)
        errors.append(np.mean(np.abs(predicted - gt[scored]) / gt[scored]))
    assert metrics['metric_depth']['abs_rel'] == pytest.approx(np.mean(errors), rel=1e-6)
    assert metrics['depth_coverage'] == pytest.approx(covered / pixels)

    montage = cv2.imread(str(out / 'montage.png'))
    # The main camera's column, and the second's beside it at half the width (64x48 panels).
    assert montage.shape == (4 * (64 + 22), 128 + 64, 3)
    assert montage.std() > 10  # not blank
    assert sorted(p.name for p in out.iterdir()) == ['metrics.json', 'montage.png',
                                                     'node_output', 'sample_drive',
                                                     'second_camera']


def test_demo_refuses_missing_weights_before_doing_anything(tmp_path):
    with pytest.raises(UserError, match='do not exist'):
        run_demo(DemoConfig(out=tmp_path / 'demo', weights=tmp_path / 'none.pt'))
    assert not (tmp_path / 'demo').exists()
