"""Typed training configuration: YAML in config/, dotted command-line overrides, and the same
dict saved inside every checkpoint."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hybrid_depth_core.data.samples import AugmentConfig
from hybrid_depth_core.data.datasets import DataConfig
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.networks import DepthModelConfig
from hybrid_depth_core.training.objective import LossConfig


@dataclass(frozen=True)
class TrainConfig:
    model: DepthModelConfig = field(default_factory=lambda: DepthModelConfig(multi_frame=True))
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    batch_size: int = 12          # ManyDepth
    learning_rate: float = 1e-4   # Adam
    warmup_steps: int = 0         # linear ramp from 0: keeps Adam's first, noisy steps small
    epochs: int = 20
    lr_step_epoch: int = 15       # learning rate x 0.1 from this epoch on
    freeze_epoch: int = 15        # multi-frame: teacher and pose network frozen from here on
    seed: int = 0                 # weights, data order and augmentation: a CPU run repeats
    num_workers: int = 2          # DataLoader worker processes
    log_every: int = 25           # steps between TensorBoard scalars
    image_every: int = 250        # steps between TensorBoard depth images
    checkpoint_every: int = 250   # steps between checkpoints (also written at the end)
    pretrained: str = ''          # ImageNet ResNet18 weights: '' none, 'download', or a path
    precision: str = 'auto'       # autocast: bf16 on CUDA, fp32 on CPU (device.py)


def learning_rate(config: TrainConfig, step: int, epoch: int) -> float:
    """Linear warm-up over `warmup_steps`, then a step schedule: x0.1 from `lr_step_epoch` on."""
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps > 0 else 1.0
    return config.learning_rate * warmup * (0.1 if epoch >= config.lr_step_epoch else 1.0)


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, data: dict, where: str = 'config'):
    """Build dataclass `cls` from nested dicts, naming any unknown or mistyped key."""
    if not isinstance(data, dict):
        raise UserError(f'{where} must be a mapping, got {type(data).__name__}')
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f'{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}')
    values = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = from_dict(kind, value, f'{where}.{name}')
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            values[name] = tuple(value)
        else:
            values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise UserError(f'{where}: {error}') from None


def load_config(path: Path | None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults, then the YAML file (if any), then `key.sub=value` overrides (YAML values)."""
    data: dict = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as error:
            raise UserError(f'cannot read config {path}: {error.strerror}') from None
        except yaml.YAMLError as error:
            raise UserError(f'config {path} is not valid YAML: {error}') from None
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
        node[leaf] = yaml.safe_load(text)
    return from_dict(TrainConfig, data)
