"""Checkpoints: one dict {format, model, config, step, objective, optimizer, ...}, written
atomically so that a crash or kill mid-save leaves the previous checkpoint intact.

`model` is what inference needs and nothing else (the network's architecture, its input size,
its training camera's focal length, whether its depth is metric), so that the runtime reads a
checkpoint without importing `training`. Checkpoints from before it existed carry the same
facts, but the focal length, in the training `config` and `scale`; `model_section` reads
either.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hybrid_depth_core.atomic import new_file
from hybrid_depth_core.config_dicts import from_dict, to_dict
from hybrid_depth_core.errors import UserError, one_line
from hybrid_depth_core.networks import DepthModelConfig

FORMAT = 'hybrid-depth checkpoint 1'


@dataclass(frozen=True)
class ModelSection:
    network: DepthModelConfig
    input_size: tuple[int, int]      # (width, height) of the network input
    metric: bool                     # trained with measured motion: depth in metres
    median_distance_m: float | None  # the median measured distance per frame pair it saw
    # The training camera: (fx, fy) in pixels at input_size, the median over its images; None
    # in checkpoints written before it was recorded (inference then resizes to input_size).
    focal: tuple[float, float] | None = None
    # The heights of the windows it also trained on (data.window_heights): views that tall at
    # the training focal length are familiar to it.
    window_heights: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return {'network': to_dict(self.network), 'input_size': list(self.input_size),
                'metric': self.metric, 'median_distance_m': self.median_distance_m,
                'focal_px': None if self.focal is None else list(self.focal),
                'window_heights': list(self.window_heights)}


def save_checkpoint(path: Path, state: dict) -> None:
    with new_file(path) as file:
        torch.save({'format': FORMAT, **state}, file)


def load_checkpoint(path: Path, map_location='cpu') -> dict:
    path = Path(path)
    if path.is_dir():
        raise UserError(f'checkpoint {path} is a directory; give the .pt file in it (train '
                        f'writes last.pt and best.pt)')
    if not path.is_file():
        raise UserError(f'checkpoint {path} does not exist')
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise UserError(f'{path} is not a readable checkpoint: damaged, cut short or not a '
                        f'PyTorch file ({_cause(error)})') from None
    if not isinstance(state, dict) or state.get('format') != FORMAT:
        raise UserError(f'{path} is not a hybrid-depth checkpoint (expected format '
                        f'{FORMAT!r})')
    return state


def _cause(error: Exception) -> str:
    """The part of torch.load's error that describes the file. Its advice to retry with
    weights_only=False is dropped: it fits an old pickle, not a damaged checkpoint, and would
    run whatever code the file holds."""
    text = str(error)
    if 'WeightsUnpickler error:' in text:
        text = 'unreadable pickle: ' + text.split('WeightsUnpickler error:', 1)[1].split(
            'Check the documentation', 1)[0]
    text = text.split('. This is an internal miniz error', 1)[0]
    return one_line(text, limit=200)


def model_section(state: dict, where: str) -> ModelSection:
    """The inference facts of a loaded checkpoint `state` (`where` names it in errors)."""
    section = state.get('model')
    if section is None:  # written before the section existed: read the training config
        config, scale = state.get('config'), state.get('scale') or {}
        try:
            section = {'network': config['model'],
                       'input_size': [config['data']['width'], config['data']['height']],
                       'metric': bool(scale.get('metric')),
                       'median_distance_m': scale.get('median_distance_m')}
        except (KeyError, TypeError):
            raise UserError(f'{where}: neither a model section nor a training config with '
                            f'model, data.width and data.height') from None
    try:
        width, height = (int(v) for v in section['input_size'])
        focal = section.get('focal_px')
        if focal is not None:
            focal = tuple(float(v) for v in focal)
            if len(focal) != 2 or not all(0 < v < float('inf') for v in focal):
                raise ValueError(f'focal_px must be two positive focal lengths, got {focal}')
        heights = section.get('window_heights')
        if heights is None:  # written before the section recorded them: the training config's
            heights = ((state.get('config') or {}).get('data') or {}).get('window_heights', ())
        heights = tuple(int(v) for v in heights)
        return ModelSection(from_dict(DepthModelConfig, section['network'], f'{where}: model'),
                            (width, height), bool(section['metric']),
                            section.get('median_distance_m'), focal, heights)
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f'{where}: malformed model section ({error})') from None
