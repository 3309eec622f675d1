"""DepthPredictor: checkpoint in, metric depth out, at the input's own size; a stream matches
each frame against its keyframe."""
import numpy as np
import pytest
import torch

from hybrid_depth_core.tracks import image_motion as motion
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.runtime.keyframes import Keyframes
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.networks.checkpoint import load_checkpoint, save_checkpoint
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train
from moving_images import camera_matrix, shifted_frames


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


def stream_all(predictor, frames, K):
    """Depths and keyframe ages of `frames` streamed in order."""
    depths, ages = [], []
    for rgb in frames:
        depths.append(predictor.stream(rgb, K))
        ages.append(predictor.last_lookup_age)
    return depths, ages


def test_a_stream_matches_against_the_latest_frame_that_moved_enough(checkpoint):
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    # A slow camera: 0.4 x MATCHING_MOTION a frame, then it stops (the last frame repeats).
    frames = shifted_frames([0, 0.4, 0.8, 1.2, 1.6, 1.6], 240, 160)
    K = camera_matrix(240, 160)
    depths, ages = stream_all(predictor, frames, K)
    # 3 frames back is the first with enough motion; after the stop, 4 frames back.
    assert ages == [None, None, None, 3, 3, 4]
    for rgb, depth, age, index in zip(frames, depths, ages, range(len(frames))):
        lookup = None if age is None else frames[index - age]
        np.testing.assert_array_equal(depth, predictor.predict(rgb, K, previous=lookup))
    assert not np.array_equal(depths[3], predictor.predict(frames[3], K, previous=frames[2]))


def test_a_static_or_textureless_camera_streams_single_frame(checkpoint):
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    K = camera_matrix(240, 160)
    still = shifted_frames([0] * 4, 240, 160)
    grey = [np.full((160, 240, 3), value, np.uint8) for value in (90, 100, 110, 120)]
    for frames in (still, grey):
        predictor.reset()
        depths, ages = stream_all(predictor, frames, K)
        assert ages == [None] * 4
        np.testing.assert_array_equal(depths[-1], predictor.predict(frames[-1], K))


def test_reset_and_a_new_size_start_the_sequence_over(checkpoint):
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    K = camera_matrix(240, 160)
    frames = shifted_frames([0, 1.5, 3, 4.5], 240, 160)
    assert stream_all(predictor, frames[:2], K)[1] == [None, 1]
    predictor.reset()
    assert predictor.last_lookup_age is None
    assert stream_all(predictor, frames[2:], K)[1] == [None, 1]  # frames[1] is forgotten
    half = [np.ascontiguousarray(frame[::2, ::2]) for frame in frames]  # same aspect ratio
    assert stream_all(predictor, half[:2], K / np.array([[2], [2], [1]]))[1] == [None, 1]


def test_a_frame_that_was_not_kept_is_no_part_of_the_sequence():
    keyframes = Keyframes()
    frames, t0 = shifted_frames([0, 1.5, 3], 240, 160), 10**9
    assert keyframes.choose(frames[0], t0, 'camera') == (None, None)
    keyframes.keep('first')
    assert keyframes.choose(frames[1], t0 + 5 * 10**8, 'camera') == (1, 'first')  # not kept
    # More than MAX_LOOKUP_GAP_NS after the last kept frame, if not after the unkept one.
    assert keyframes.choose(frames[2], t0 + 12 * 10**8, 'camera') == (None, None)


def test_a_single_frame_model_never_tracks_motion(checkpoint, monkeypatch):
    pushes = []
    monkeypatch.setattr(motion.MotionTracker, 'push', lambda self, rgb: pushes.append(1))
    loaded = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    single = DepthPredictor(loaded.model, None, (96, 64), torch.device('cpu'))
    assert not single.multi_frame
    frames = shifted_frames([0, 1.5, 3], 240, 160)
    depths, ages = stream_all(single, frames, camera_matrix(240, 160))
    assert ages == [None] * 3 and not pushes
    np.testing.assert_array_equal(depths[-1], single.predict(frames[-1],
                                                             camera_matrix(240, 160)))


def test_a_streamed_multi_frame_step_encodes_only_the_new_frame(checkpoint):
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    encoded = []
    predictor.model.encoder.register_forward_hook(lambda module, inputs, output:
                                                  encoded.append(inputs[0].shape))
    _, ages = stream_all(predictor, shifted_frames([0, 1.5, 3], 240, 160),
                         camera_matrix(240, 160))
    assert ages == [None, 1, 1]
    assert len(encoded) == 3  # predict(..., previous=...) would encode 1 + 2 + 2 frames


def test_channels_last_gives_the_depth_of_the_standard_layout(checkpoint):
    frames, K = shifted_frames([0, 1.5], 96, 64, seed=5), camera_matrix(96, 64)
    depths = {}
    for layout in (torch.contiguous_format, torch.channels_last):
        loaded = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
        predictor = DepthPredictor(loaded.model, loaded.pose, (96, 64), torch.device('cpu'),
                                   memory_format=layout)
        assert predictor.to_tensor(frames[0]).is_contiguous(memory_format=layout)
        depths[layout], ages = stream_all(predictor, frames, K)
        assert ages == [None, 1]
    for nchw, nhwc in zip(depths[torch.contiguous_format], depths[torch.channels_last]):
        np.testing.assert_allclose(nhwc, nchw, rtol=1e-4)


def test_a_compiled_stream_gives_the_eager_depth_and_keeps_the_cpu_kernel(checkpoint,
                                                                          monkeypatch):
    from hybrid_depth_core.networks import plane_sweep
    kernel_calls = []
    kernel = plane_sweep._fused_cost_if_built
    monkeypatch.setattr(plane_sweep, '_fused_cost_if_built',
                        lambda *inputs: kernel_calls.append(1) or kernel(*inputs))
    from torch._dynamo.utils import counters
    frames, K = shifted_frames([0, 1.5, 3], 96, 64, seed=6), camera_matrix(96, 64)
    depths, warnings = {}, []
    for compiled in (False, True):
        predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu', compile=compiled,
                                                   warn=warnings.append)
        # The first sight of a camera compiles its input size through the stream's graphs:
        # streaming its frames then compiles nothing more.
        predictor.framing(96, 64, K)
        graphs = counters['stats']['unique_graphs']
        depths[compiled], ages = stream_all(predictor, frames, K)
        assert ages == [None, 1, 1]
        assert counters['stats']['unique_graphs'] == graphs
    assert warnings == ['compiling the network for a 96x64 input (camera 96x64); frames wait']
    for eager, compiled in zip(depths[False], depths[True]):
        np.testing.assert_allclose(compiled, eager, rtol=1e-4)
    # Under torch.compile the matching still calls the eager C++ kernel path (a graph break).
    assert len(kernel_calls) == 5  # frames 2 and 3 eager; the compiled warm-up, frames 2, 3


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
    state['model']['network']['arch'] = 'resnet18'  # the weights are a hybrid's
    mismatched = tmp_path / 'mismatched.pt'
    save_checkpoint(mismatched, state)
    with pytest.raises(UserError, match='do not fit the network'):
        DepthPredictor.from_checkpoint(mismatched, device='cpu')
    del state['model'], state['config']
    save_checkpoint(mismatched, state)
    with pytest.raises(UserError, match='neither a model section nor a training config'):
        DepthPredictor.from_checkpoint(mismatched, device='cpu')


def test_a_checkpoint_from_before_the_model_section_loads_from_its_training_config(
        checkpoint, tmp_path):
    state = load_checkpoint(checkpoint)
    assert state['model']['input_size'] == [state['config']['data']['width'],
                                            state['config']['data']['height']]
    del state['model']
    old = tmp_path / 'old.pt'
    save_checkpoint(old, state)
    new, before = (DepthPredictor.from_checkpoint(path, device="cpu")
                   for path in (checkpoint, old))
    assert (before.width, before.height, before.metric) == (new.width, new.height, new.metric)
    assert before.model.config == new.model.config
    # The old checkpoint does not know its training camera: it resizes to its input size. At
    # that size and the training focal length, the new one frames the image as it is.
    assert before.focal is None and new.focal is not None
    rgb = np.random.default_rng(0).integers(0, 255, (new.height, new.width, 3), np.uint8)
    K = np.array([[new.focal[0], 0, new.width / 2], [0, new.focal[1], new.height / 2],
                  [0, 0, 1]])
    np.testing.assert_array_equal(before.predict(rgb, K), new.predict(rgb, K))
