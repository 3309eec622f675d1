"""DepthPredictor: checkpoint in, metric depth out, at the input's own size."""
import numpy as np
import pytest
import torch

from hybrid_depth_core.data.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.predictor import DepthPredictor
from hybrid_depth_core.training.checkpoint import load_checkpoint, save_checkpoint
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train


def test_predict_returns_positive_depth_at_the_input_size(checkpoint):
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    assert predictor.multi_frame and (predictor.width, predictor.height) == (96, 64)
    drive = SyntheticDrive(DriveConfig(width=150, height=70, frames=2, seed=9))
    first, second = drive.render(0), drive.render(1)
    alone = predictor.predict(first.rgb, drive.camera.K)
    streamed = predictor.predict(second.rgb, drive.camera.K, previous=first.rgb)
    for depth in (alone, streamed):
        assert depth.shape == (70, 150) and depth.dtype == np.float32
        assert np.isfinite(depth).all() and (depth > 0).all()
    assert not np.allclose(streamed, predictor.predict(second.rgb, drive.camera.K))


def test_streaming_uses_the_previous_call_as_the_lookup_frame(checkpoint):
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    drive = SyntheticDrive(DriveConfig(width=96, height=64, frames=2, seed=4))
    first, second = drive.render(0), drive.render(1)
    K = drive.camera.K
    np.testing.assert_array_equal(predictor.stream(first.rgb, K), predictor.predict(first.rgb, K))
    np.testing.assert_array_equal(predictor.stream(second.rgb, K),
                                  predictor.predict(second.rgb, K, previous=first.rgb))
    predictor.reset()
    np.testing.assert_array_equal(predictor.stream(second.rgb, K),
                                  predictor.predict(second.rgb, K))
    np.testing.assert_array_equal(predictor.stream(first.rgb, K, use_previous=False),
                                  predictor.predict(first.rgb, K))


def test_a_streamed_multi_frame_step_encodes_only_the_new_frame(checkpoint):
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    encoded = []
    predictor.model.encoder.register_forward_hook(lambda module, inputs, output:
                                                  encoded.append(inputs[0].shape))
    drive = SyntheticDrive(DriveConfig(width=96, height=64, frames=3, seed=4))
    for index in range(3):
        predictor.stream(drive.render(index).rgb, drive.camera.K)
    assert len(encoded) == 3  # predict(..., previous=...) would encode 1 + 2 + 2 frames


def test_channels_last_gives_the_depth_of_the_standard_layout(checkpoint):
    drive = SyntheticDrive(DriveConfig(width=96, height=64, frames=2, seed=5))
    depths = {}
    for layout in (torch.contiguous_format, torch.channels_last):
        loaded = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
        predictor = DepthPredictor(loaded.model, loaded.pose, (96, 64), torch.device('cpu'),
                                   memory_format=layout)
        assert predictor.to_tensor(drive.render(0).rgb).is_contiguous(memory_format=layout)
        depths[layout] = [predictor.stream(drive.render(i).rgb, drive.camera.K) for i in (0, 1)]
    for nchw, nhwc in zip(depths[torch.contiguous_format], depths[torch.channels_last]):
        np.testing.assert_allclose(nhwc, nchw, rtol=1e-4)


def test_a_compiled_stream_gives_the_eager_depth_and_keeps_the_cpu_kernel(checkpoint,
                                                                          monkeypatch):
    from hybrid_depth_core.networks import plane_sweep
    kernel_calls = []
    kernel = plane_sweep._fused_cost_if_built
    monkeypatch.setattr(plane_sweep, '_fused_cost_if_built',
                        lambda *inputs: kernel_calls.append(1) or kernel(*inputs))
    drive = SyntheticDrive(DriveConfig(width=96, height=64, frames=3, seed=6))
    depths = {}
    for compiled in (False, True):
        predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu', compile=compiled)
        depths[compiled] = [predictor.stream(drive.render(i).rgb, drive.camera.K)
                            for i in range(3)]
    for eager, compiled in zip(depths[False], depths[True]):
        np.testing.assert_allclose(compiled, eager, rtol=1e-4)
    # Under torch.compile the matching still calls the eager C++ kernel path (a graph break).
    assert len(kernel_calls) == 4  # frames 2 and 3, eager then compiled


def test_a_pooled_pose_network_is_rebuilt_from_its_checkpoint(tmp_path):
    config = load_config(None, ['data.seeds=[3]', 'data.frames_per_drive=4', 'data.width=128',
                                'data.height=64', 'batch_size=2', 'num_workers=0',
                                'model.multi_frame=true', 'model.pose_downsample=2'])
    predictor = DepthPredictor.from_checkpoint(train(config, tmp_path, max_steps=1,
                                                     progress=False), device='cpu')
    assert predictor.pose.downsample == 2
    drive = SyntheticDrive(DriveConfig(width=128, height=64, frames=2, seed=4))
    depth = predictor.predict(drive.render(1).rgb, drive.camera.K, previous=drive.render(0).rgb)
    assert np.isfinite(depth).all() and (depth > 0).all()


def test_predict_rejects_bad_inputs_with_the_input_named(checkpoint):
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    image = np.zeros((64, 96, 3), np.uint8)
    K = np.array([[50.0, 0, 48], [0, 50, 32], [0, 0, 1]])
    with pytest.raises(ValueError, match='rgb must be an'):
        predictor.predict(image.astype(np.float32), K)
    with pytest.raises(ValueError, match='K must be'):
        predictor.predict(image, np.zeros((3, 3)))
    with pytest.raises(ValueError, match='previous frame and current frame differ'):
        predictor.predict(image, K, previous=np.zeros((32, 96, 3), np.uint8))


def test_weights_that_do_not_fit_their_config_are_named_in_one_error(checkpoint, tmp_path):
    state = load_checkpoint(checkpoint)
    state['config']['model']['arch'] = 'resnet18'  # the weights are a hybrid's
    mismatched = tmp_path / 'mismatched.pt'
    save_checkpoint(mismatched, state)
    with pytest.raises(UserError, match='do not fit the network'):
        DepthPredictor.from_checkpoint(mismatched, device='cpu')
    del state['config']
    save_checkpoint(mismatched, state)
    with pytest.raises(UserError, match='config must be a mapping'):
        DepthPredictor.from_checkpoint(mismatched, device='cpu')
