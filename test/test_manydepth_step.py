"""The multi-frame training step is ManyDepth's: per-sample matching augmentation, detached
poses for the multi-frame network, its loss mask, the freeze, and multi-process bookkeeping."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hybrid_depth_ros.cli import main
from hybrid_depth_core.datasets.samples import AugmentConfig
from hybrid_depth_core.datasets.synthetic_dataset import SyntheticDataset
from hybrid_depth_core.geometry import invert_transform
from hybrid_depth_core.networks import DepthModelConfig
from hybrid_depth_core.training import trainer
from hybrid_depth_core.networks.checkpoint import load_checkpoint
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.objective import (NO_AUGMENTATION, STATIC_CAMERA, ZERO_COST_VOLUME,
                                                  LossConfig, SelfSupervisedObjective,
                                                  draw_matching_augmentation)
from hybrid_depth_core.training.trainer import train

HERE = Path(__file__).resolve().parent
TINY = ['data.seeds=[3]', 'data.frames_per_drive=6', 'data.width=96', 'data.height=64',
        'data.frame_stride=1',
        'batch_size=2', 'num_workers=0', 'log_every=1', 'image_every=100',
        'checkpoint_every=100']


@pytest.fixture(scope='module')
def batch():
    """The same colour-jittered sample twice (so `color_aug` differs from `color`): whatever
    differs between the two outputs comes from the augmentation code alone."""
    dataset = SyntheticDataset(seeds=(5,), frames_per_drive=4, width=128, height=64,
                               progress=False, augment=AugmentConfig(color_jitter_probability=1,
                                                                     flip_probability=0))
    sample = dataset[1]
    assert not torch.equal(sample[('color_aug', 0, 0)], sample[('color', 0, 0)])
    return torch.utils.data.default_collate([sample, sample])


@pytest.fixture
def objective():
    torch.manual_seed(0)
    objective = SelfSupervisedObjective(DepthModelConfig(multi_frame=True), LossConfig())
    objective.pose.decoder.start_moving((0.0, 0.0, -0.5))  # as train() does for a street
    return objective


def _capture_depth_network(objective) -> dict:
    seen = {}

    def hook(module, args, kwargs, output):
        seen.update(args=args, kwargs=kwargs, output=output)
    objective.depth.register_forward_hook(hook, with_kwargs=True)
    return seen


def test_static_camera_matches_the_current_frame_with_the_predicted_pose(batch, objective):
    seen = _capture_depth_network(objective)
    objective(batch, torch.tensor([STATIC_CAMERA, ZERO_COST_VOLUME]))
    image, lookup, K, T = seen['args']
    current = batch[('color', 0, 0)]
    torch.testing.assert_close(lookup[0], current[0])  # the un-jittered current frame
    with torch.no_grad():
        predicted = invert_transform(objective.pose(batch[('color_aug', -1, 0)],
                                                    batch[('color_aug', 0, 0)]))
    torch.testing.assert_close(T, predicted)  # the pose network's motion, not the identity
    assert (T[0, :3, 3].norm() > 0.1)
    cost = seen['output'].matching.cost
    assert cost[1].abs().max() == 0                     # zero cost volume: nothing matched
    assert cost[0].mean() > 0.01                        # static camera: confidently wrong
    assert not torch.allclose(seen['output'].disparities[0][0], seen['output'].disparities[0][1])
    # The identity pose and the jittered lookup (the step before ManyDepth's) made the static
    # sample's cost vanish.
    jittered = batch[('color_aug', 0, 0)][:1]
    with torch.no_grad():
        identity = objective.depth(jittered, jittered, K[:1], torch.eye(4)[None])
    assert identity.matching.cost.abs().max() < 1e-3 * cost[0].mean()


def test_pose_network_learns_from_the_teacher_only(batch, objective):
    total, terms, _ = objective(batch, torch.tensor([NO_AUGMENTATION, NO_AUGMENTATION]))
    assert terms['loss/depth'] > 0 and terms['loss/consistency'] > 0
    pose = list(objective.pose.parameters())
    for name in ('loss/depth', 'loss/consistency'):
        gradients = torch.autograd.grad(terms[name], pose, allow_unused=True, retain_graph=True)
        assert all(g is None or g.abs().max() == 0 for g in gradients), name
    gradients = torch.autograd.grad(terms['loss/teacher'], pose, allow_unused=True,
                                    retain_graph=True)
    assert sum(g.abs().sum() for g in gradients if g is not None) > 0
    gradients = torch.autograd.grad(terms['loss/depth'], list(objective.depth.parameters()),
                                    allow_unused=True)
    assert sum(g.abs().sum() for g in gradients if g is not None) > 0


def test_the_teacher_is_manydepths_resnet18_or_the_hybrid_network(batch):
    from hybrid_depth_core.networks.encoders import HybridEncoder, ResNet18Encoder
    for arch, encoder in (('resnet18', ResNet18Encoder), ('hybrid', HybridEncoder)):
        torch.manual_seed(0)
        objective = SelfSupervisedObjective(DepthModelConfig(multi_frame=True, teacher_arch=arch,
                                                             max_depth=50.0),
                                            LossConfig())
        teacher = objective.teacher
        assert isinstance(teacher.encoder, encoder) and not teacher.config.multi_frame
        assert (teacher.config.min_depth, teacher.config.max_depth) == (0.1, 50.0)
        _, terms, _ = objective(batch, torch.tensor([NO_AUGMENTATION, NO_AUGMENTATION]))
        gradients = torch.autograd.grad(terms['loss/teacher'], list(teacher.parameters()),
                                        allow_unused=True)
        assert sum(g.abs().sum() for g in gradients if g is not None) > 0
    with pytest.raises(ValueError, match='teacher_arch must be one of'):
        DepthModelConfig(teacher_arch='vgg')


def test_augmented_samples_learn_from_the_teacher_only(batch, objective):
    _, terms, _ = objective(batch, torch.tensor([STATIC_CAMERA, ZERO_COST_VOLUME]))
    assert terms['loss/depth'].item() == 0 and terms['reliable'].item() == 0
    assert terms['loss/consistency'] > 0
    # In a mixed batch the photometric loss reaches the plain sample's depth only.
    seen = _capture_depth_network(objective)
    _, terms, _ = objective(batch, torch.tensor([NO_AUGMENTATION, STATIC_CAMERA]))
    disparity = seen['output'].disparities[0]
    gradient, = torch.autograd.grad(terms['loss/depth'], disparity, retain_graph=True)
    assert gradient[0].abs().sum() > 0 and gradient[1].abs().max() == 0
    gradient, = torch.autograd.grad(terms['loss/consistency'], disparity)
    assert gradient[1].abs().sum() > 0


def test_matching_augmentation_is_drawn_per_sample():
    codes = draw_matching_augmentation(LossConfig(), 4200, torch.Generator().manual_seed(0))
    fractions = [(codes == code).float().mean().item()
                 for code in (NO_AUGMENTATION, STATIC_CAMERA, ZERO_COST_VOLUME)]
    assert fractions == pytest.approx([0.5, 0.25, 0.25], abs=0.03)
    batches = codes.view(-1, 6)  # ManyDepth's batch: a batch is rarely all one kind
    assert (batches == NO_AUGMENTATION).any(1).float().mean() > 0.95
    with pytest.raises(ValueError, match='at most 1'):
        LossConfig(static_camera_probability=0.6, zero_cost_volume_probability=0.6)


def test_after_the_freeze_teacher_and_pose_are_unchanged_batch_norm_included(
        tmp_path, monkeypatch):
    saved = {}
    original = trainer.save_checkpoint

    def keep(path, state):
        saved[state['step']] = {k: v.clone() for k, v in state['objective'].items()}
        original(path, state)
    monkeypatch.setattr(trainer, 'save_checkpoint', keep)
    # 5 steps, the 3rd (progress 2/5) and later frozen; a checkpoint after the 2nd.
    config = load_config(None, TINY + ['freeze_at=0.4', 'lr_step_at=0.4', 'checkpoint_every=2'])
    train(config, tmp_path, max_steps=5, progress=False)
    before, after = saved[2], saved[5]
    frozen = [k for k in before if k.startswith(('teacher.', 'pose.'))]
    assert any('running_mean' in k for k in frozen) and any('num_batches' in k for k in frozen)
    for key in frozen + ['depth.cost_volume.depth_range']:
        torch.testing.assert_close(after[key], before[key], msg=key)
    assert not torch.equal(after['depth.decoder.upconvs.0.conv.weight'],
                           before['depth.decoder.upconvs.0.conv.weight'])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_ranks_agree_on_every_step_across_an_epoch_and_the_freeze(tmp_path):
    """7 samples, 2 ranks, batch 2: one step an epoch for both ranks (the 4/3 split of the
    samples once gave rank 0 two), through the freeze and the learning-rate step, the run's
    progress (rank 0's) agreed on by both."""
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
               '--master_addr', '127.0.0.1', '--master_port', str(_free_port()),
               str(HERE / 'ddp_probe.py'), str(tmp_path), '4',
               *TINY, 'data.frames_per_drive=9', 'freeze_at=0.5', 'lr_step_at=0.75',
               'warmup=0.5']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = [json.loads((tmp_path / f'rank{rank}.json').read_text()) for rank in (0, 1)]
    draws = [[entry.pop('augmentation') for entry in log] for log in logs]
    assert logs[0] == logs[1]
    assert [entry['progress'] for entry in logs[0]] == [0.0, 0.25, 0.5, 0.75]
    assert [entry['learning_rate'] for entry in logs[0]] == pytest.approx(
        [3e-7, 1.5e-4, 3e-4, 3e-5])
    assert [entry['frozen'] for entry in logs[0]] == [False, False, True, True]
    ranges = [entry['depth_range'] for entry in logs[0]]  # at the start of each step
    assert ranges[0] != ranges[1] != ranges[2] == ranges[3]  # updated until the freeze
    # Matching augmentation: one draw per sample, and each process draws its own.
    assert all(len(codes) == 2 for codes in draws[0] + draws[1]) and draws[0] != draws[1]
    assert load_checkpoint(tmp_path / 'last.pt')['step'] == 4


def test_evaluate_single_frame_scores_without_the_previous_frame(checkpoint, tmp_path, capsys):
    scores = {}
    for extra in ([], ['--single-frame']):
        json_path = tmp_path / f'{len(extra)}.json'
        assert main(['evaluate', '--checkpoint', str(checkpoint),
                     '--synthetic-seeds', '1001', '--frames', '3', '--device', 'cpu',
                     '--json', str(json_path)] + extra) == 0
        scores[bool(extra)] = json.loads(json_path.read_text())
    assert 'without the previous frame or a keyframe' in capsys.readouterr().out
    assert scores[False]['previous_frame'] and not scores[True]['previous_frame']
    assert scores[False]['keyframe_images'] > 0
    assert scores[False]['abs_rel'] != scores[True]['abs_rel']
