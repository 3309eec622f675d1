"""Training that fits the recording: the schedule follows the run's budget, the frame stride
follows the image motion, the input size follows the camera's aspect ratio, and held-out
triplets are scored every epoch."""
import itertools
import types

import numpy as np
import pytest
import torch
from moving_images import shifted_frames

from hybrid_depth_core.datasets.bag_dataset import Recording, build_triplets
from hybrid_depth_core.tracks.image_motion import (MATCHING_MOTION, MotionTracker, choose_stride,
                                                   stride_motions)
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.training import trainer
from hybrid_depth_core.networks.checkpoint import load_checkpoint
from hybrid_depth_core.training.config import TrainConfig, is_frozen, load_config
from hybrid_depth_core.training.defaults import CPU_PIXELS, GPU_PIXELS, input_size, resolve

TINY = ['data.seeds=[3]', 'data.frames_per_drive=8', 'data.width=96', 'data.height=64',
        'batch_size=2', 'log_every=1', 'image_every=100', 'checkpoint_every=2']


def test_freeze_and_learning_rate_step_happen_inside_a_short_run(tmp_path, monkeypatch):
    saved = []
    original = trainer.save_checkpoint

    def keep(path, state):  # every checkpoint the run writes, as it was then
        if path.name == 'last.pt':
            saved.append((state['step'], {k: v.clone() for k, v in state['objective'].items()},
                          state['optimizer']['param_groups'][0]['lr']))
        original(path, state)
    monkeypatch.setattr(trainer, 'save_checkpoint', keep)
    config = load_config(None, TINY + ['freeze_at=0.6', 'lr_step_at=0.6', 'warmup=0'])
    trainer.train(config, tmp_path, max_steps=6, progress=False)
    by_step = {step: (weights, lr) for step, weights, lr in saved}
    assert sorted(by_step) == [2, 4, 6]
    for name, value in by_step[4][0].items():
        if name.startswith(('teacher.', 'pose.')):  # frozen from the 5th step (progress 4/6) on
            torch.testing.assert_close(by_step[6][0][name], value, msg=name)
    changed = [name for name, value in by_step[4][0].items() if name.startswith('depth.')
               and value.is_floating_point() and not torch.equal(by_step[6][0][name], value)]
    assert changed  # the multi-frame network keeps learning
    teacher_moved = [name for name, value in by_step[2][0].items()
                     if name.startswith('teacher.') and value.is_floating_point()
                     and not torch.equal(by_step[4][0][name], value)]
    assert teacher_moved  # ... and the teacher learned before the freeze
    assert by_step[2][1] == pytest.approx(3e-4) and by_step[6][1] == pytest.approx(3e-5)
    assert (tmp_path / 'best.pt').exists()  # synthetic streets have held-out drives


def test_with_minutes_the_schedule_follows_time_and_resume_counts_the_time_spent(
        tmp_path, monkeypatch):
    config = TrainConfig()
    assert not is_frozen(config, 0.74) and is_frozen(config, 0.75)
    assert not is_frozen(load_config(None, ['model.multi_frame=false']), 1.0)  # as Monodepth2
    # The trainer's clock moves one second each time it is read, so that how many steps fit
    # in the budget does not depend on how loaded the machine is.
    clock = itertools.count(1000.0)
    monkeypatch.setattr(trainer, 'time', types.SimpleNamespace(monotonic=lambda: next(clock)))
    config = load_config(None, TINY + ['lr_step_at=0.5', 'warmup=0', 'checkpoint_every=1000'])
    path = trainer.train(config, tmp_path, minutes=0.25, progress=False)
    state = load_checkpoint(path)
    assert state['elapsed_s'] >= 15.0 and state['step'] >= 3
    assert state['optimizer']['param_groups'][0]['lr'] == pytest.approx(3e-5)
    resumed = load_checkpoint(trainer.train(config, tmp_path, minutes=0.15, resume=True,
                                            progress=False))
    assert resumed['step'] == state['step']  # the budget was already spent


def test_a_slow_camera_gets_a_longer_stride_and_a_stop_is_skipped():
    def recording(speed, stop_at=None):
        drive = SyntheticDrive(DriveConfig(width=160, height=64, frames=24, seed=2,
                                           speed=(speed, speed), lateral_amplitude=0.0))
        frames = [drive.render(i).rgb for i in range(len(drive))]
        if stop_at is not None:  # the camera stands still for 5 frames
            frames = frames[:stop_at + 1] + [frames[stop_at]] * 5 + frames[stop_at + 1:]
        stamps = np.arange(len(frames), dtype=np.int64) * 100_000_000
        return Recording(np.stack(frames), stamps, np.tile(drive.camera.K, (len(frames), 1, 1)))

    fast = build_triplets(recording(1.2), val_fraction=0.0)
    slow = build_triplets(recording(0.15), val_fraction=0.0)
    assert fast.stride == 1 and slow.stride > 1, (fast.stride, slow.stride)
    assert slow.motion >= MATCHING_MOTION > stride_motions([recording(0.15).rgb])[1]
    stopped = build_triplets(recording(0.15, stop_at=10), val_fraction=0.0)
    assert stopped.static_frames == 5 and stopped.gaps == 0 and stopped.stride == slow.stride
    standing = set(range(11, 16))  # the repeats of frame 10
    assert not any(standing & set(triplet) for triplet in stopped.train)
    assert build_triplets(recording(0.15), stride=1, val_fraction=0.0).stride == 1  # override


def test_stride_choice_rules():
    target = MATCHING_MOTION
    assert choose_stride({1: 0.4 * target, 2: 0.9 * target, 3: 1.3 * target, 4: 2 * target}) == 3
    assert choose_stride({1: 0.2 * target, 2: 0.4 * target, 3: 0.3 * target}) == 2  # the most
    assert choose_stride({1: float('nan'), 2: float('nan')}) == 1  # nothing measured
    tracker = MotionTracker(3)
    for frame in shifted_frames([0, 0.5, 1.0, 1.5], 240, 160):  # parallax 0.5 a frame
        tracker.push(frame)
    assert tracker.motion(1) == pytest.approx(0.5 * MATCHING_MOTION, rel=0.3)
    assert tracker.motion(3) == pytest.approx(1.5 * MATCHING_MOTION, rel=0.3)
    turned = MotionTracker(1)  # the whole picture shifted: a turn, which shows no depth
    for frame in shifted_frames([0, 3.0], 240, 160, parallax=False):
        turned.push(frame)
    assert turned.motion(1) < 0.2 * MATCHING_MOTION
    assert np.isnan(tracker.motion(4))  # not held


@pytest.mark.parametrize('aspect, pixels, size', [
    (4 / 3, CPU_PIXELS, (128, 96)), (10 / 3, GPU_PIXELS, (640, 192)),
    (4 / 3, GPU_PIXELS, (384, 288)), (1.0, CPU_PIXELS, (96, 96))])
def test_input_size_follows_the_aspect_ratio(aspect, pixels, size):
    assert input_size(aspect, pixels) == size


def test_a_4_by_3_bag_trains_at_a_4_by_3_size_recorded_in_the_checkpoint(tmp_path):
    from hybrid_depth_ros.cli import main
    from hybrid_depth_core.synthetic.bag_writer import write_drive_bag
    drive = SyntheticDrive(DriveConfig(width=160, height=120, frames=14, seed=4))
    write_drive_bag(drive, tmp_path / 'bag', progress=False)
    assert main(['train', '--bag', str(tmp_path / 'bag'), '--out', str(tmp_path / 'run'),
                 '--max-steps', '1', 'batch_size=2', 'data.cache_dir=']) == 0
    config = load_checkpoint(tmp_path / 'run' / 'last.pt')['config']
    assert (config['data']['width'], config['data']['height']) == (128, 96)
    assert config['batch_size'] == 2 and config['num_workers'] == 0
    resolved = resolve(load_config(None, []), torch.device('cpu'))
    assert (resolved.data.width, resolved.data.height, resolved.batch_size) == (224, 64, 6)


def test_the_pose_network_starts_along_the_heading_a_recording_shows():
    from hybrid_depth_core.tracks.image_motion import camera_heading
    from hybrid_depth_core.synthetic import RoomWalk, RoomWalkConfig
    from hybrid_depth_core.training.defaults import pose_prior
    drive = SyntheticDrive(DriveConfig(width=224, height=64, frames=20, seed=3))
    frames = [drive.render(i).rgb for i in range(len(drive))]
    forward, pairs = camera_heading([frames], [drive.camera.K], 1)
    assert pairs >= 3 and forward[2] < -0.9  # points come closer: the camera drives forward
    backward, _ = camera_heading([frames[::-1]], [drive.camera.K], 1)
    assert backward[2] > 0.9
    np.testing.assert_allclose(pose_prior(forward), 0.5 * forward / np.linalg.norm(forward))
    room = RoomWalk(RoomWalkConfig(width=128, height=96, frames=240, seed=1))
    handheld, pairs = camera_heading([[room.render(i).rgb for i in range(len(room))]],
                                     [room.camera.K], 3)
    assert pairs >= 10 and np.linalg.norm(handheld) < 0.5  # every which way
    assert not pose_prior(handheld).any()  # a standing start
