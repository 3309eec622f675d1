"""Frozen dataclass configs to and from the nested dicts of YAML files and checkpoints."""
from __future__ import annotations

import dataclasses
import math
import types
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
        elif typing.get_origin(kind) is tuple:
            element = typing.get_args(kind)[0]
            if not isinstance(value, (list, tuple)):
                raise UserError(f'{where}.{name} must be a list, got {value!r}')
            values[name] = tuple(_checked(item, element, f'{where}.{name}[{index}]')
                                 for index, item in enumerate(value))
        else:
            values[name] = _checked(value, kind, f'{where}.{name}')
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except (TypeError, ValueError) as error:
        raise UserError(f'{where}: {error}') from None


# YAML scalars as the plain types fields declare: an int is a valid float, a bool is neither.
_ACCEPTED = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}
_NOUNS = {int: 'an integer', float: 'a number', bool: 'true or false', str: 'a string'}


def _checked(value, kind, where: str):
    """`value` if it is of the field's type `kind` (plain types, and their unions with None);
    a UserError naming the key otherwise. Other types pass unchecked."""
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) \
        else (kind,)
    if value is None and type(None) in options:
        return value
    if value is None and options == (str,):
        return ''  # `key=` on the command line (YAML's empty value): the empty string
    plain = [option for option in options if option in _ACCEPTED]
    if len(plain) != len([o for o in options if o is not type(None)]):
        return value  # a type this check does not know (tuples of choices, paths)
    if float in plain and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-4 (no dot) as text: a number all the same
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):  # not 'nan' or 'inf', which float() also reads
            return number
    for option in plain:
        if isinstance(value, _ACCEPTED[option]) and not (
                option is not bool and isinstance(value, bool)):
            return float(value) if option is float else value
    names = ' or '.join(_NOUNS[option] for option in plain)
    raise UserError(f'{where} must be {names}, got {value!r}')


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default
