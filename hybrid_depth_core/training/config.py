"""Typed training configuration: YAML in config/, dotted command-line overrides, and the same
dict saved inside every checkpoint."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hybrid_depth_core.config_dicts import from_dict
from hybrid_depth_core.datasets.samples import AugmentConfig
from hybrid_depth_core.datasets.sources import DataConfig
from hybrid_depth_core.device import PRECISIONS
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.networks import DepthModelConfig
from hybrid_depth_core.training.objective import LossConfig
from hybrid_depth_core.user_files import parse_yaml, read_yaml


@dataclass(frozen=True)
class TrainConfig:
    # The defaults are the recipe measured best for training from random weights (no ImageNet
    # file offline) on a 2-core CPU (docs/benchmarks.md); 0 / -1 values are chosen at the start
    # of a run for the device and the data (training/defaults.py) and saved resolved.
    # The multi-frame run's teacher is the hybrid network, not ManyDepth's ResNet18: from
    # scratch on a CPU it learns a handheld room's shape in the budget where ResNet18 does not
    # (docs/benchmarks.md, "The hybrid teacher").
    model: DepthModelConfig = field(default_factory=lambda: DepthModelConfig(
        multi_frame=True, pose_downsample=2, teacher_arch='hybrid'))
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    batch_size: int = 0           # 0: 6 on a CPU, ManyDepth's 12 on a GPU
    learning_rate: float = 3e-4   # Adam; ManyDepth's 1e-4 is for ImageNet-initialised encoders
    # The schedule, in fractions of the run (--max-steps, --minutes, or `epochs` epochs), so
    # that a short run also gets its learning-rate step and its freeze:
    warmup: float = 0.05          # linear ramp from 0: keeps Adam's first, noisy steps small
    lr_step_at: float = 0.75      # learning rate x 0.1 from here on (ManyDepth: epoch 15 of 20)
    freeze_at: float = 0.75       # multi-frame: teacher and pose network frozen from here on
    epochs: int = 20              # the run's length when neither budget is given
    seed: int = 0                 # weights, data order and augmentation: a CPU run repeats
    # DataLoader processes; -1: none on a CPU (they would take the networks' cores), 4 on a GPU.
    num_workers: int = -1
    log_every: int = 25           # steps between TensorBoard scalars
    image_every: int = 250        # steps between TensorBoard depth images
    checkpoint_every: int = 250   # steps between checkpoints (also written at the end)
    pretrained: str = ''          # ImageNet ResNet18 weights: '' none, 'download', or a path
    precision: str = 'auto'       # autocast: bf16 on CUDA, fp32 on CPU (device.py)
    # Narrow model.max_depth (and initial_depth) to the recording's metric depth hints at the
    # start of a run (training/defaults.fit_depth_range); --resume and --init keep their
    # checkpoint's range, which the network's output is in.
    fit_depth_range: bool = True

    def __post_init__(self):
        fractions = {'warmup': self.warmup, 'lr_step_at': self.lr_step_at,
                     'freeze_at': self.freeze_at}
        for name, value in fractions.items():
            if not 0 <= value <= 1:
                raise ValueError(f'{name} is a fraction of the run, in [0, 1]; got {value}')
        if self.batch_size < 0 or self.epochs < 1 or self.num_workers < -1:
            raise ValueError(f'need batch_size >= 0 (0: automatic), epochs >= 1 and '
                             f'num_workers >= -1 (-1: automatic); got {self.batch_size}, '
                             f'{self.epochs} and {self.num_workers}')
        if not self.learning_rate > 0:
            raise ValueError(f'learning_rate must be > 0, got {self.learning_rate}')
        for name in ('log_every', 'image_every', 'checkpoint_every'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} is a number of steps, >= 1; got {getattr(self, name)}')
        if self.precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {self.precision!r}')


def learning_rate(config: TrainConfig, progress: float) -> float:
    """At `progress` (0 to 1) through the run: a linear warm-up over the first `warmup` of it,
    then x0.1 from `lr_step_at` on."""
    warmup = min(1.0, progress / config.warmup) if config.warmup > 0 else 1.0
    return config.learning_rate * max(warmup, 1e-3) * (
        0.1 if progress >= config.lr_step_at else 1.0)


def is_frozen(config: TrainConfig, progress: float) -> bool:
    """Whether a multi-frame run's teacher and pose network are frozen at `progress`."""
    return config.model.multi_frame and progress >= config.freeze_at


# Keys of checkpoints written before the schedule became fractions of the run (issue 17):
# enough to load their networks; such a checkpoint cannot be resumed.
_RENAMED = {'lr_step_epoch': 'lr_step_at', 'freeze_epoch': 'freeze_at'}


def checkpoint_config(data: dict, where: str) -> TrainConfig:
    """The TrainConfig a checkpoint holds, older layouts included."""
    model = data.get('model') if isinstance(data, dict) else None
    if isinstance(model, dict) and 'teacher_arch' not in model and model.get('multi_frame', True):
        # a multi-frame run from before the choice: ManyDepth's teacher (a single-frame run
        # has none, and takes today's default so that it resumes as it was)
        data = dict(data, model=dict(model, teacher_arch='resnet18'))
    if isinstance(data, dict) and (set(_RENAMED) | {'warmup_steps'}) & set(data):
        data = dict(data)
        epochs = data.get('epochs', TrainConfig.epochs)
        for old, new in _RENAMED.items():
            if old in data:
                data[new] = min(1.0, data.pop(old) / epochs)
        data.pop('warmup_steps', None)  # a step count of a run whose length is not recorded
    return from_dict(TrainConfig, data, where)


def load_config(path: Path | None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults, then the YAML file (if any), then `key.sub=value` overrides (YAML values)."""
    data: dict = {}
    if path is not None:
        data = read_yaml(path, 'config') or {}
        if not isinstance(data, dict):  # before the overrides index into it
            raise UserError(f'config {path} must be a mapping of settings, got '
                            f'{type(data).__name__}')
    for override in overrides:
        key, sep, text = override.partition('=')
        if not sep or not key:
            raise UserError(f'override {override!r} must look like key.sub=value')
        node = data
        *parents, leaf = key.split('.')
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f'override {override!r}: {part} is not a section')
        node[leaf] = parse_yaml(text, f'override {override!r}')
    return from_dict(TrainConfig, data)
