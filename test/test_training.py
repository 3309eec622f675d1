"""Training: the loss falls, resume is exact, checkpoints are atomic, configs load (DDP:
test_manydepth_step.py)."""
import dataclasses
from pathlib import Path

import pytest
import torch

from hybrid_depth_core.datasets.samples import AugmentConfig
from hybrid_depth_core.datasets.synthetic_dataset import SyntheticDataset
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.networks import DepthModelConfig
from hybrid_depth_core.networks.checkpoint import load_checkpoint, save_checkpoint
from hybrid_depth_core.training.config import TrainConfig, learning_rate, load_config
from hybrid_depth_core.training.objective import LossConfig, SelfSupervisedObjective
from hybrid_depth_core.training import trainer
from hybrid_depth_core.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
TINY = ['data.seeds=[3]', 'data.frames_per_drive=6', 'data.width=96', 'data.height=64',
        'data.frame_stride=1',
        'batch_size=2', 'num_workers=0', 'log_every=1', 'image_every=2',
        'checkpoint_every=100']


@pytest.mark.parametrize('arch, multi_frame', [('hybrid', False), ('resnet18', True)])
def test_a_few_steps_on_one_batch_reduce_the_loss(arch, multi_frame):
    torch.manual_seed(0)
    dataset = SyntheticDataset(seeds=(5,), frames_per_drive=4, width=128, height=64,
                               progress=False)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(2)])
    objective = SelfSupervisedObjective(DepthModelConfig(arch=arch, multi_frame=multi_frame),
                                        LossConfig())
    objective.pose.decoder.start_moving((0.0, 0.0, -0.5))  # the street's heading, as train() does
    optimizer = torch.optim.Adam(objective.parameters(), lr=1e-4)
    history = []
    for _ in range(12):
        loss, logs, _ = objective(batch)  # no matching augmentation
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert sum(history[-3:]) / 3 < 0.8 * sum(history[:3]) / 3, history


def test_resume_continues_exactly(tmp_path, monkeypatch):
    config = load_config(None, TINY + ['checkpoint_every=2'])
    uninterrupted = train(config, tmp_path / 'a', max_steps=3, progress=False)
    original = trainer.save_checkpoint

    def killed_after_saving(path, state):
        original(path, state)
        if path.name == 'last.pt':
            raise KeyboardInterrupt  # the run dies right after its step-2 checkpoint
    monkeypatch.setattr(trainer, 'save_checkpoint', killed_after_saving)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / 'b', max_steps=3, progress=False)
    monkeypatch.setattr(trainer, 'save_checkpoint', original)
    assert load_checkpoint(tmp_path / 'b' / 'last.pt')['step'] == 2
    resumed = train(config, tmp_path / 'b', max_steps=3, resume=True, progress=False)
    a, b = load_checkpoint(uninterrupted), load_checkpoint(resumed)
    assert a['step'] == b['step'] == 3
    for key, value in a['objective'].items():
        torch.testing.assert_close(b['objective'][key], value, msg=key)
    assert (a['optimizer']['param_groups'][0]['lr']
            == b['optimizer']['param_groups'][0]['lr'])
    assert list((tmp_path / 'a' / 'tensorboard').iterdir())  # TensorBoard events written


def test_train_command_frame_stride_reaches_every_source(tmp_path, capsys):
    from hybrid_depth_ros.cli import main
    assert main(['train', '--out', str(tmp_path), '--max-steps', '1', '--frame-stride', '2']
                + TINY) == 0
    assert load_checkpoint(tmp_path / 'last.pt')['config']['data']['frame_stride'] == 2
    assert main(['train', '--out', str(tmp_path / 'b'), '--frame-stride', '3'] + TINY) == 1
    assert 'frames_per_drive must be at least 2 * data.frame_stride + 1 = 7, got 6' in (
        capsys.readouterr().err)


def test_training_refuses_to_clobber_or_to_resume_something_else(tmp_path):
    config = load_config(None, TINY)
    train(config, tmp_path, max_steps=1, progress=False)
    with pytest.raises(UserError, match='--resume'):
        train(config, tmp_path, max_steps=1, progress=False)
    other = load_config(None, TINY + ['learning_rate=0.5'])
    with pytest.raises(UserError, match=r'different config \(learning_rate=0\.0003 there\)'):
        train(other, tmp_path, max_steps=2, resume=True, progress=False)


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / 'last.pt'
    save_checkpoint(path, {'step': 1})

    def crash(*args, **kwargs):
        raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', crash)
    with pytest.raises(OSError, match='disk full'):
        save_checkpoint(path, {'step': 2})
    monkeypatch.undo()
    assert load_checkpoint(path)['step'] == 1
    assert [p.name for p in tmp_path.iterdir()] == ['last.pt']


def test_bad_checkpoints_are_named_in_the_error(tmp_path):
    with pytest.raises(UserError, match='does not exist'):
        load_checkpoint(tmp_path / 'none.pt')
    (tmp_path / 'junk.pt').write_bytes(b'junk')
    with pytest.raises(UserError, match='not a readable checkpoint'):
        load_checkpoint(tmp_path / 'junk.pt')
    torch.save({'weights': 1}, tmp_path / 'other.pt')
    with pytest.raises(UserError, match='not a hybrid-depth checkpoint'):
        load_checkpoint(tmp_path / 'other.pt')


def test_configs_in_the_repository_load_and_bad_keys_are_named():
    for path in sorted((REPO / 'config').glob('train_*.yaml')):
        assert isinstance(load_config(path), TrainConfig)
    config = load_config(None, ['model.arch=resnet18', 'data.seeds=[1, 2]', 'batch_size=3'])
    assert (config.model.arch, config.data.seeds, config.batch_size) == ('resnet18', (1, 2), 3)
    assert isinstance(config.augment, AugmentConfig)
    with pytest.raises(UserError, match=r"config.model: unknown key\(s\) \['depth'\]"):
        load_config(None, ['model.depth=3'])
    with pytest.raises(UserError, match='key.sub=value'):
        load_config(None, ['batch_size'])
    with pytest.raises(UserError, match="arch must be one of"):
        load_config(None, ['model.arch=vgg'])


def test_learning_rate_warms_up_linearly_then_steps_down():
    config = TrainConfig(learning_rate=1e-3, warmup=0.1, lr_step_at=0.5)
    assert learning_rate(config, 0.0) == pytest.approx(1e-6)  # not exactly 0: the step counts
    assert learning_rate(config, 0.05) == pytest.approx(5e-4)
    assert learning_rate(config, 0.2) == pytest.approx(1e-3)
    assert learning_rate(config, 0.5) == pytest.approx(1e-4)
    assert learning_rate(TrainConfig(learning_rate=1e-3, warmup=0), 0.0) == 1e-3
    with pytest.raises(ValueError, match='freeze_at is a fraction of the run'):
        TrainConfig(freeze_at=15)


def test_checkpoints_from_before_the_fractional_schedule_still_load(tmp_path):
    from hybrid_depth_core.runtime.predictor import DepthPredictor
    from hybrid_depth_core.config_dicts import from_dict, to_dict
    from hybrid_depth_core.networks import DepthModel, PoseNet
    from hybrid_depth_core.training.config import checkpoint_config
    old = to_dict(TrainConfig())
    for new in ('warmup', 'lr_step_at', 'freeze_at'):
        del old[new]
    del old['model']['turn_prior']
    del old['model']['teacher_arch']
    old.update(warmup_steps=100, epochs=20, lr_step_epoch=15, freeze_epoch=10)
    config = checkpoint_config(old, 'old.pt')
    assert (config.lr_step_at, config.freeze_at) == (0.75, 0.5)
    assert not config.model.turn_prior  # its pose network finds the whole rotation
    # its teacher was ManyDepth's ResNet18, whatever today's recipe trains; a single-frame
    # run has no teacher, so it keeps today's default and resumes as it was
    assert config.model.teacher_arch == 'resnet18' != TrainConfig().model.teacher_arch
    single = dict(old, model=dict(old['model'], multi_frame=False))
    assert checkpoint_config(single, 'old.pt').model == dataclasses.replace(
        TrainConfig().model, multi_frame=False, turn_prior=False)
    # A checkpoint of that time, as the shipped model until issue 22 was: no model section,
    # and a model config from before turn_prior and pose_downsample.
    del old['model']['pose_downsample']
    old['model']['multi_frame'] = True
    old['data'].update(width=192, height=64)
    network = from_dict(DepthModelConfig, old['model'], 'old.pt')
    weights = {f'{prefix}.{key}': value for prefix, module in (
        ('depth', DepthModel(network)), ('pose', PoseNet(network.pose_downsample)))
        for key, value in module.state_dict().items()}
    save_checkpoint(tmp_path / 'old.pt', {'config': old, 'objective': weights, 'step': 1})
    loaded = DepthPredictor.from_checkpoint(tmp_path / 'old.pt', device='cpu')
    assert loaded.multi_frame and (loaded.width, loaded.height) == (192, 64)
    assert not loaded.turn_prior and not TrainConfig().model.turn_prior
    # Keys its config predates take the network's defaults, the values of its time: the pose
    # network saw full-size frames (model.pose_downsample=1), not the training recipe's later
    # default of 2.
    assert loaded.pose.downsample == 1 and TrainConfig().model.pose_downsample == 2


def test_a_nested_override_keeps_the_rest_of_the_default_model():
    config = load_config(None, ['model.arch=resnet18'])
    assert config.model.multi_frame and config.model.pose_downsample == 2


@pytest.mark.parametrize('override, named', [
    ('learning_rate=abc', 'config.learning_rate must be a number'),
    ('learning_rate=0', 'learning_rate must be > 0'),
    ('batch_size=1.5', 'config.batch_size must be an integer'),
    ('batch_size=-1', 'batch_size >= 0'),
    ('log_every=0', 'log_every is a number of steps'),
    ('precision=fp64', 'precision must be one of'),
    ('augment.brightness=abc', 'config.augment.brightness must be a number'),
    ('augment.flip_probability=2', r'flip_probability must be in \[0, 1\]'),
    ('loss.velocity=true', 'config.loss.velocity must be a number'),
    ('loss.velocity=-1', 'velocity must be a number >= 0'),
    ('model.multi_frame=3', 'config.model.multi_frame must be true or false'),
    ('model.min_depth_bin=0', 'min_depth_bin < max_depth_bin'),
    ('model.hybrid.heads=[2,x,8]', r'config.model.hybrid.heads\[1\] must be an integer'),
    ('data.seeds=[]', 'data.seeds must name at least one'),
    ('data.bags=5', 'config.data.bags must be a list'),
])
def test_bad_training_settings_are_one_line_errors_naming_the_key(override, named):
    with pytest.raises(UserError, match=named):
        load_config(None, [override])


def test_good_settings_keep_their_types():
    config = load_config(None, ['learning_rate=1', 'data.seeds=[3, 4]', 'augment.hue=0'])
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.data.seeds == (3, 4) and config.augment.hue == 0.0
    assert load_config(None, ['learning_rate=1e-4']).learning_rate == 1e-4  # YAML 1.1: text
    with pytest.raises(UserError, match='learning_rate must be a number'):
        load_config(None, ['learning_rate=nan'])


def test_train_refuses_an_output_inside_an_input_bag_or_unwritable_before_any_work(tmp_path):
    bag = tmp_path / 'recording'
    bag.mkdir()
    (bag / 'metadata.yaml').write_text('not read: the output is refused first\n')
    before = sorted(p.name for p in bag.iterdir())
    config = load_config(None, ['data.source=bag', f'data.bags=["{bag}"]'])
    for out, problem in ((bag, 'is an input'), (bag / 'run', 'inside the input')):
        with pytest.raises(UserError, match=problem):
            train(config, out, max_steps=1, progress=False)
    assert sorted(p.name for p in bag.iterdir()) == before
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    with pytest.raises(UserError, match='a_file is a file, not a directory'):
        train(load_config(None, []), a_file / 'run', max_steps=1, progress=False)
    with pytest.raises(UserError, match='exists and is not a directory'):
        train(load_config(None, []), a_file, max_steps=1, progress=False)


def test_a_checkpoint_that_is_a_directory_or_damaged_is_named_without_bad_advice(tmp_path):
    with pytest.raises(UserError, match='is a directory; give the .pt file'):
        load_checkpoint(tmp_path)
    shipped = (REPO / 'models' / 'hybrid_synthetic.pt').read_bytes()
    for name, content in (('garbage.pt', b'not a checkpoint\n'), ('cut.pt', shipped[:5000])):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(UserError, match='damaged, cut short or not a PyTorch file') as error:
            load_checkpoint(path)
        assert 'weights_only' not in str(error.value) and '\n' not in str(error.value)


def test_an_empty_override_is_the_empty_string_for_a_text_setting():
    assert load_config(None, ['data.cache_dir=']).data.cache_dir == ''
    with pytest.raises(UserError, match='config.learning_rate must be a number, got None'):
        load_config(None, ['learning_rate='])


def test_init_starts_from_another_runs_networks_with_a_new_schedule(tmp_path):
    """--init (fine-tuning, and the shipped model's taller-window stage): the networks come
    from the checkpoint, the step count and optimiser start over, other networks are refused."""
    first = train(load_config(None, TINY), tmp_path / 'a', max_steps=2, progress=False)
    frozen = load_config(None, TINY + ['learning_rate=1e-12'])  # the weights stay put
    second = train(frozen, tmp_path / 'b', max_steps=1, progress=False, init=first)
    a, b = load_checkpoint(first), load_checkpoint(second)
    assert b['step'] == 1
    objective = SelfSupervisedObjective(frozen.model, frozen.loss)
    parameters = {name for name, _ in objective.named_parameters()}
    assert parameters
    for key in parameters:
        torch.testing.assert_close(b['objective'][key], a['objective'][key], msg=key)
    fresh = train(frozen, tmp_path / 'c', max_steps=1, progress=False)
    assert any(not torch.equal(load_checkpoint(fresh)['objective'][k], a['objective'][k])
               for k in parameters)  # without --init the same run ends elsewhere
    with pytest.raises(UserError, match='differ from this config.*model.arch'):
        train(load_config(None, TINY + ['model.arch=resnet18']), tmp_path / 'd', max_steps=1,
              progress=False, init=first)
    with pytest.raises(UserError, match='--resume continues'):
        train(frozen, tmp_path / 'b', max_steps=1, progress=False, init=first, resume=True)
    older = dict(a, config=dict(a['config'], model=dict(a['config']['model'])))
    del older['config']['model']['turn_prior']  # a run from before the key: its default
    save_checkpoint(tmp_path / 'older.pt', older)
    train(frozen, tmp_path / 'e', max_steps=1, progress=False, init=tmp_path / 'older.pt')


def test_init_from_exported_weights_names_the_missing_teacher(tmp_path):
    from hybrid_depth_core.deploy.export import export_weights
    config = load_config(None, TINY + ['model.multi_frame=true'])
    first = train(config, tmp_path / 'a', max_steps=1, progress=False)
    export_weights(first, tmp_path / 'w.pt')
    with pytest.raises(UserError, match='lacks the teacher network'):
        train(config, tmp_path / 'b', max_steps=1, progress=False, init=tmp_path / 'w.pt')


def test_training_with_window_heights_takes_both_heights(tmp_path, monkeypatch):
    from hybrid_depth_core.runtime.predictor import DepthPredictor
    heights = []
    original = SyntheticDataset.__getitem__

    def spy(self, item):
        sample = original(self, item)
        heights.append(sample[('color', 0, 0)].shape[-2])
        return sample
    monkeypatch.setattr(SyntheticDataset, '__getitem__', spy)
    config = load_config(None, TINY + ['data.render_height=128', 'data.window_heights=[64,128]'])
    path = train(config, tmp_path, max_steps=4, progress=False)
    assert set(heights) == {64, 128}  # both heights trained (and validated at 64)
    state = load_checkpoint(path)
    assert state['step'] == 4 and state['model']['input_size'] == [96, 64]
    assert state['model']['window_heights'] == [64, 128]
    assert DepthPredictor.from_checkpoint(path, device='cpu').window_heights == (64, 128)
    del state['model']['window_heights']  # written before the section had them: the config's
    save_checkpoint(tmp_path / 'older.pt', state)
    assert DepthPredictor.from_checkpoint(tmp_path / 'older.pt',
                                          device='cpu').window_heights == (64, 128)
