"""The depth range fitted to a recording's metric hints (training/defaults.fit_depth_range): the
rule on hints of known depth, and a run on a rendered room's bag that trains, resumes and is
fine-tuned in its fitted range."""
import dataclasses

import numpy as np
import pytest

from hybrid_depth_core.errors import UserError
from hybrid_depth_core.networks import DepthModelConfig
from hybrid_depth_core.networks.checkpoint import load_checkpoint, save_checkpoint
from hybrid_depth_core.tracks.hints import Hints
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.defaults import (RANGE_MARGIN, START_FRACTION,
                                                 fit_depth_range)
from hybrid_depth_core.training.trainer import train


def _recording(depths, metric=True):
    """One recording's hints: `depths` spread over frames of 100 hints."""
    frames = np.array_split(np.asarray(depths, np.float32), max(1, len(depths) // 100))
    return Hints([np.zeros((len(d), 2), np.float32) for d in frames], list(frames),
                 [np.ones(len(d), np.float32) for d in frames], metric, (320, 240))


class _Data:
    def __init__(self, *recordings):
        self.hints = [list(kinds) for kinds in recordings]


def test_the_range_is_fitted_to_the_farthest_recordings_metric_hints():
    model = DepthModelConfig()  # 0.1-100 m from 10 m
    room = np.linspace(0.5, 4.0, 2000)
    deeper = np.linspace(0.5, 6.0, 2000)
    fitted, line = fit_depth_range(model, _Data([_recording(room)]))
    assert fitted.max_depth == pytest.approx(RANGE_MARGIN * np.percentile(room, 99))
    assert fitted.initial_depth == pytest.approx(START_FRACTION * fitted.max_depth)
    assert (fitted.min_depth, fitted.arch) == (model.min_depth, model.arch)
    assert 'fit_depth_range=false' in line
    # the farthest recording decides; up-to-scale hints, NaN, non-positive depths and
    # recordings with too few hints do not count
    with_nan = np.concatenate([deeper, [np.nan] * 500, [-1.0, 0.0]])
    data = _Data([_recording(np.full(3000, 50.0), metric=False), _recording(room)],
                 [_recording(with_nan)], [_recording(np.full(500, 30.0))])
    fitted, _ = fit_depth_range(model, data)
    assert fitted.max_depth == pytest.approx(RANGE_MARGIN * np.percentile(deeper, 99))
    # a street reaching beyond the config's far end, and data without hints, keep the range
    assert fit_depth_range(model, _Data([_recording(np.linspace(5, 70, 2000))])) == (model, None)
    assert fit_depth_range(model, _Data()) == (model, None)
    assert fit_depth_range(model, object()) == (model, None)  # a source without hints
    # never nearer than 20 x min_depth; the start moves only where it is nearer
    near, _ = fit_depth_range(model, _Data([_recording(np.full(2000, 0.3))]))
    assert near.max_depth == pytest.approx(2.0)
    kept, _ = fit_depth_range(dataclasses.replace(model, initial_depth=1.0),
                              _Data([_recording(room)]))
    assert kept.initial_depth == 1.0


def test_a_run_trains_resumes_and_is_fine_tuned_in_its_fitted_range(tmp_path, capsys):
    from hybrid_depth_core.datasets.bag_dataset import HINTS_WIDTH
    from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
    from hybrid_depth_core.synthetic.bag_writer import write_drive_bag

    # a rendered drive with its /tf; a far end of 1000 m, so that its hints narrow it
    drive = SyntheticDrive(DriveConfig(width=HINTS_WIDTH, height=96, frames=16, seed=3))
    write_drive_bag(drive, tmp_path / 'drive', progress=False)
    overrides = [f'data.bags=[{tmp_path / "drive"}]', 'data.source=bag', 'data.width=128',
                 'data.height=64', 'batch_size=2', 'model.multi_frame=false',
                 'model.max_depth=1000', 'data.frame_stride=1']
    config = load_config(None, overrides)
    first = train(config, tmp_path / 'a', max_steps=2, progress=True)
    fitted = load_checkpoint(first)['config']['model']
    assert 50 < fitted['max_depth'] < 500 and fitted['initial_depth'] == 10
    assert f'depth range 0.1-{fitted["max_depth"]:.1f} m' in capsys.readouterr().out
    # --resume keeps the checkpoint's range: the same config resumes, a run from before the
    # setting too
    older = load_checkpoint(first)
    del older['config']['fit_depth_range']
    save_checkpoint(first, older)
    train(config, tmp_path / 'a', max_steps=3, progress=False, resume=True)
    resumed = load_checkpoint(first)
    assert (resumed['step'], resumed['config']['model']) == (3, fitted)
    # --init takes the checkpoint's range, which its network's output is in
    tuned = train(config, tmp_path / 'b', max_steps=1, progress=False, init=first)
    assert load_checkpoint(tuned)['config']['model'] == fitted
    # switched off: the config's range, and --init then asks for the same one
    off = load_config(None, overrides + ['fit_depth_range=false'])
    kept = train(off, tmp_path / 'c', max_steps=1, progress=False)
    assert load_checkpoint(kept)['config']['model']['max_depth'] == 1000
    with pytest.raises(UserError, match='model.max_depth'):
        train(off, tmp_path / 'd', max_steps=1, progress=False, init=first)
