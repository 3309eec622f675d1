"""Frozen dataclass configs to and from the nested dicts of YAML files and checkpoints."""
from __future__ import annotations

import dataclasses
import typing

from hybrid_depth_core.errors import UserError


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, data: dict, where: str = 'config', base=None):
    """Build dataclass `cls` from nested dicts, naming any unknown or mistyped key. Keys not
    given keep their defaults, nested ones too: `model: {arch: resnet18}` keeps the rest of
    TrainConfig's default model (multi-frame, pose_downsample 2), not DepthModelConfig's."""
    if not isinstance(data, dict):
        raise UserError(f'{where} must be a mapping, got {type(data).__name__}')
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f'{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}')
    values = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            default = (getattr(base, name) if base is not None
                       else _default(fields[name]))
            values[name] = from_dict(kind, value, f'{where}.{name}', default)
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            values[name] = tuple(value)
        else:
            values[name] = value
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except (TypeError, ValueError) as error:
        raise UserError(f'{where}: {error}') from None


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default
