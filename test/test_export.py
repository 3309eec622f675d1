"""ONNX export: the graph onnxruntime runs gives the node's depth."""
import numpy as np
import onnxruntime
import pytest
import torch

from hybrid_depth_ros.cli import main
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.deploy.export import export_onnx
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.networks.checkpoint import load_checkpoint
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train


def test_exported_stream_matches_the_predictor_frame_by_frame(checkpoint, tmp_path):
    first_graph, step_graph = tmp_path / 'first.onnx', tmp_path / 'step.onnx'
    export_onnx(checkpoint, first_graph)
    report = export_onnx(checkpoint, step_graph, multi_frame=True)
    assert report.inputs == ['image', 'previous_image', 'previous_features', 'K']
    first = onnxruntime.InferenceSession(str(first_graph))
    step = onnxruntime.InferenceSession(str(step_graph))

    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    drive = SyntheticDrive(DriveConfig(width=96, height=64, frames=3, seed=21))  # unseen
    K = drive.camera.K.astype(np.float32)[None]
    previous, previous_rgb = None, None
    for index in range(3):
        rgb = drive.render(index).rgb
        # The step graph matches whatever frame it is given (a keyframe chooser is the
        # caller's): here the previous one.
        expected = predictor.predict(rgb, drive.camera.K, previous_rgb)
        previous_rgb = rgb
        image = predictor.to_tensor(rgb).numpy()
        if previous is None:
            depth, features = first.run(None, {'image': image})
        else:
            depth, features = step.run(None, {'image': image, 'previous_image': previous[0],
                                              'previous_features': previous[1], 'K': K})
        np.testing.assert_allclose(depth[0, 0], expected, rtol=1e-4)
        previous = (image, features)


def test_export_refuses_a_multi_frame_graph_of_a_single_frame_model(tmp_path):
    config = load_config(None, ['data.seeds=[3]', 'data.frames_per_drive=4', 'data.width=64',
                                'data.height=64', 'batch_size=2', 'num_workers=0',
                                'model.multi_frame=false'])
    single = train(config, tmp_path / 'run', max_steps=1, progress=False)
    with pytest.raises(UserError, match='single-frame model'):
        export_onnx(single, tmp_path / 'x.onnx', multi_frame=True)
    assert not (tmp_path / 'x.onnx').exists()


def test_fp16_weights_load_like_the_checkpoint_and_give_its_depth(checkpoint, tmp_path):
    out = tmp_path / 'model_fp16.pt'
    assert main(['export', '--checkpoint', str(checkpoint), '--weights', str(out)]) == 0
    state, original = load_checkpoint(out), load_checkpoint(checkpoint)
    # No optimiser; what inference reads travels with the weights: a metric model stays metric.
    assert set(state) == {'format', 'model', 'config', 'step', 'scale', 'objective'}
    assert state['model'] == original['model'] and state['scale'] == original['scale']
    weights = state['objective']
    assert weights and all(key.startswith(('depth.', 'pose.')) for key in weights)
    assert weights['depth.encoder.conv1.weight'].dtype == torch.float16
    assert weights['depth.cost_volume.depth_range'].dtype == torch.float32  # a buffer
    drive = SyntheticDrive(DriveConfig(width=96, height=64, frames=2, seed=22))
    depths = []
    for path in (checkpoint, out):
        predictor = DepthPredictor.from_checkpoint(path, device='cpu')
        depths.append(predictor.predict(drive.render(1).rgb, drive.camera.K,
                                        previous=drive.render(0).rgb))
    np.testing.assert_allclose(depths[1], depths[0], rtol=5e-3)
    # An existing output is refused without --force, and a directory is named at once.
    assert main(['export', '--checkpoint', str(checkpoint), '--weights', str(out)]) == 1
    assert main(['export', '--checkpoint', str(checkpoint), '--weights', str(tmp_path)]) == 1
