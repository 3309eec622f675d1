"""The turn prior: the camera's rotation between two frames, measured on tracked corners, is
what the pose network corrects, in training samples and in a stream alike."""
import cv2
import numpy as np
import pytest
import torch

from hybrid_depth_core.tracks.image_motion import pair_turns, turn
from hybrid_depth_core.datasets.samples import AugmentConfig, make_sample, triplet_turns
from hybrid_depth_core.synthetic import RoomWalk, RoomWalkConfig
from hybrid_depth_core.deploy.export import export_onnx
from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.networks import PoseNet
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.objective import LossConfig, SelfSupervisedObjective
from hybrid_depth_core.training.trainer import train


def degrees(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))


def rotation(axis, angle_deg: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.radians(angle_deg)
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    pixels = points @ K.T
    return (pixels[:, :2] / pixels[:, 2:]).astype(np.float32)


@pytest.fixture(scope='module')
def turn_checkpoint(tmp_path_factory):
    """A multi-frame checkpoint trained (two steps) with the turn prior."""
    config = load_config(None, ['data.seeds=[3]', 'data.frames_per_drive=4', 'data.width=96',
                                'data.height=64', 'batch_size=2', 'num_workers=0',
                                'model.turn_prior=true'])
    return train(config, tmp_path_factory.mktemp('run'), max_steps=2, progress=False)


@pytest.fixture(scope='module')
def walk():
    """A handheld camera in a room: turns of several degrees between frames 5 apart."""
    room = RoomWalk(RoomWalkConfig(width=160, height=120, frames=40, seed=2))
    return room, [room.render(i).rgb for i in range(len(room))]


def test_a_turn_is_exact_without_translation_and_close_with_some():
    rng = np.random.default_rng(0)
    K = np.array([[130.0, 0, 80], [0, 130, 60], [0, 0, 1]])
    depth = rng.uniform(1, 8, 200)
    points = np.c_[rng.uniform(-0.5, 0.5, (200, 2)) * depth[:, None], depth]
    R = rotation([0.3, 1, 0.1], 15)
    earlier = project(points, K)
    assert degrees(turn(earlier, project(points @ R.T, K), K).T @ R) < 0.01
    # 5 cm sideways at 1-8 m: a sideways step looks like a turn, by up to the parallax angle;
    # the error stays below that of the median corner
    moved = project(points @ R.T + [0.05, 0, 0.02], K)
    assert degrees(turn(earlier, moved, K).T @ R) < np.degrees(np.median(0.05 / depth))
    np.testing.assert_array_equal(turn(earlier[:5], moved[:5], K), np.eye(3))  # too few


def test_tracked_turns_of_a_handheld_walk_match_its_true_rotation(walk):
    room, frames = walk
    turns = pair_turns(frames, [room.camera.K] * len(frames), 5)
    np.testing.assert_array_equal(turns[:5], np.tile(np.eye(3), (5, 1, 1)))
    true = [(np.linalg.inv(room.poses[i]) @ room.poses[i - 5])[:3, :3]
            for i in range(5, len(frames))]
    errors = [degrees(measured.T @ R) for measured, R in zip(turns[5:], true)]
    sizes = [degrees(R) for R in true]
    assert np.median(sizes) > 2  # the walk does turn
    assert np.median(errors) < 0.25 * np.median(sizes) and np.max(errors) < 3


def test_a_flipped_sample_carries_the_turns_of_the_mirrored_frames(walk):
    room, frames = walk
    triplet = {-1: frames[10], 0: frames[15], 1: frames[20]}
    flip = AugmentConfig(color_jitter_probability=0, flip_probability=1)
    flipped = make_sample(triplet, room.camera.K, np.random.default_rng(0), flip,
                          turns=triplet_turns(triplet, room.camera.K))
    mirrored = {f: np.ascontiguousarray(image[:, ::-1]) for f, image in triplet.items()}
    K = room.camera.K.copy()
    K[0, 2] = (frames[0].shape[1] - 1) - K[0, 2]
    # measured on the mirrored frames
    measured = make_sample(mirrored, K, None, None, turns=triplet_turns(mirrored, K))
    plain = make_sample(triplet, room.camera.K, None, None,
                        turns=triplet_turns(triplet, room.camera.K))
    for f in (-1, 1):
        assert degrees(plain[('turn', f)].numpy()) > 2
        assert degrees(flipped[('turn', f)].numpy().T @ measured[('turn', f)].numpy()) < 0.5


def test_the_pose_network_corrects_the_turn_it_is_given():
    torch.manual_seed(0)
    pose = PoseNet().eval()
    earlier, later = torch.rand(2, 3, 64, 96), torch.rand(2, 3, 64, 96)
    R = torch.from_numpy(rotation([0, 1, 0], 12)).float().expand(2, 3, 3)
    with torch.no_grad():
        plain, turned = pose(earlier, later), pose(earlier, later, R)
    torch.testing.assert_close(turned[:, :3, :3], plain[:, :3, :3] @ R)
    torch.testing.assert_close(turned[:, :, 3], plain[:, :, 3])
    assert degrees(turned[0, :3, :3].numpy()) > 11  # the untrained network corrects little


def test_training_corrects_each_pairs_own_turn(walk):
    room, frames = walk
    config = load_config(None, ['model.turn_prior=true']).model
    torch.manual_seed(0)
    objective = SelfSupervisedObjective(config, LossConfig()).eval()
    turns = {-1: rotation([0, 1, 0], 8), 1: rotation([1, 0, 0], -5)}  # told apart by axis
    triplet = {f: frames[10 + 5 * f] for f in (-1, 0, 1)}
    batch = torch.utils.data.default_collate(
        [make_sample(triplet, room.camera.K, None, None, turns=turns)])
    with torch.no_grad():
        poses = objective._poses(batch)
        aug = {f: batch[('color_aug', f, 0)] for f in (-1, 0, 1)}
        earlier = objective.pose(aug[-1], aug[0])[0, :3, :3].numpy()  # the correction alone
        later = objective.pose(aug[0], aug[1])[0, :3, :3].numpy()
    # T_source_target: the pair (-1, 0) inverted, the pair (0, 1) as the network gives it
    np.testing.assert_allclose(poses[-1][0, :3, :3].numpy(), (earlier @ turns[-1]).T,
                               atol=1e-5)
    np.testing.assert_allclose(poses[1][0, :3, :3].numpy(), later @ turns[1], atol=1e-5)


def test_a_stream_gives_the_pose_network_the_turn_from_its_keyframe(turn_checkpoint, walk):
    room, frames = walk
    predictor = DepthPredictor.from_checkpoint(turn_checkpoint, device='cpu')
    assert predictor.turn_prior
    given = []
    predictor.pose.register_forward_hook(lambda module, args, output: given.append(args[2]))
    checked = 0
    for index, rgb in enumerate(frames[:20]):
        predictor.stream(rgb, room.camera.K)
        age = predictor.last_lookup_age
        if age is None:
            continue
        true = (np.linalg.inv(room.poses[index]) @ room.poses[index - age])[:3, :3]
        assert degrees(given[-1][0].numpy().T @ true) < 2
        checked += 1
    assert checked >= 5
    with pytest.raises(ValueError, match='turn must be a finite 3x3'):
        predictor.predict(frames[1], room.camera.K, frames[0], turn=np.eye(2))


def test_the_exported_step_of_a_turn_prior_model_takes_the_turn(turn_checkpoint, walk, tmp_path):
    onnxruntime = pytest.importorskip('onnxruntime')
    room, frames = walk
    report = export_onnx(turn_checkpoint, tmp_path / 'step.onnx', multi_frame=True)
    assert report.inputs == ['image', 'previous_image', 'previous_features', 'K', 'turn']
    loaded = DepthPredictor.from_checkpoint(turn_checkpoint, device='cpu')
    # The exported step takes images at the training input size; a predictor that resizes to
    # it (no training camera: no framing) gives predict() exactly those inputs.
    predictor = DepthPredictor(loaded.model, loaded.pose, (loaded.width, loaded.height),
                               loaded.device)
    size = (predictor.width, predictor.height)
    previous, current = (cv2.resize(frames[i], size, interpolation=cv2.INTER_AREA)
                         for i in (10, 15))
    K = scale_intrinsics(room.camera.K, size[0] / frames[0].shape[1],
                         size[1] / frames[0].shape[0])
    with torch.no_grad():
        _, features = predictor.model.encoder(predictor.to_tensor(previous))
    measured = pair_turns([previous, current], [K] * 2, 1)[1:].astype(np.float32)
    assert degrees(measured[0]) > 2
    depth, _ = onnxruntime.InferenceSession(str(tmp_path / 'step.onnx')).run(None, {
        'image': predictor.to_tensor(current).numpy(),
        'previous_image': predictor.to_tensor(previous).numpy(),
        'previous_features': features.numpy(), 'K': K.astype(np.float32)[None],
        'turn': measured})
    # predict() measures the same turn between the two frames itself
    np.testing.assert_allclose(depth[0, 0], predictor.predict(current, K, previous), rtol=1e-4)
    without = predictor.predict(current, K, previous, turn=np.eye(3))
    assert not np.allclose(without, depth[0, 0], rtol=1e-4)
