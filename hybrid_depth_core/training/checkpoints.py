"""A training run's checkpoints (the file format: networks/checkpoint.py): what last.pt and
best.pt hold, built in one place, and how a run starts from one: --resume continues OUT/last.pt,
--init takes another run's networks."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from hybrid_depth_core.config_dicts import to_dict
from hybrid_depth_core.errors import UserError, one_line
from hybrid_depth_core.networks.checkpoint import ModelSection, load_checkpoint
from hybrid_depth_core.training.config import TrainConfig, checkpoint_config
from hybrid_depth_core.training.defaults import FITTED_RANGE

CHECKPOINT_NAME = 'last.pt'
BEST_NAME = 'best.pt'  # the checkpoint with the lowest held-out photometric loss so far
SHOWN_KEYS = 5  # config keys a refused --resume names


def checkpoint_state(config: TrainConfig, objective, step: int, elapsed_s: float,
                     best_val: float, scale: dict, focal_px: tuple[float, float],
                     optimizer=None, scores: dict | None = None) -> dict:
    """What a checkpoint of the run holds: what inference reads (checkpoint.ModelSection), the
    config, the step, the networks, the optimiser's state when given (last.pt, for resuming;
    best.pt leaves it out), the training time so far, the lowest held-out loss, the data's
    scale and focal length, and the held-out `scores` when given (best.pt)."""
    model = ModelSection(config.model, (config.data.width, config.data.height),
                         scale['metric'], scale['median_distance_m'], focal_px,
                         config.data.window_heights)
    state = {'model': model.to_dict(), 'config': to_dict(config), 'step': step,
             'objective': objective.state_dict()}
    if optimizer is not None:
        state['optimizer'] = optimizer.state_dict()
    state.update(elapsed_s=elapsed_s, best_val=best_val, scale=scale, focal_px=focal_px)
    if scores is not None:
        state['val'] = scores
    return state


def check_start(out: Path, resume: bool, init: Path | None) -> None:
    """Refuse --resume without OUT/last.pt, a new run onto it, and --resume with --init."""
    if init is not None and resume:
        raise UserError('--init starts a new run from other weights; --resume continues this '
                        'one: give one of them')
    checkpoint_path = out / CHECKPOINT_NAME
    if checkpoint_path.exists() and not resume:
        raise UserError(f'{checkpoint_path} exists: pass --resume to continue it, or choose '
                        f'another --out')
    if resume and not checkpoint_path.exists():
        raise UserError(f'--resume: no checkpoint at {checkpoint_path}')


def resume_state(out: Path, state: dict, config: TrainConfig, objective,
                 optimizer) -> tuple[int, float, float]:
    """--resume: the networks and optimiser state of OUT/last.pt (`state`, loaded) put into
    `objective` and `optimizer`; returns its step, the training seconds spent so far and the
    lowest held-out loss so far."""
    checkpoint_path = out / CHECKPOINT_NAME
    # read as a config first: a key added since the run started takes its default
    theirs = _flat(to_dict(checkpoint_config(state['config'], str(checkpoint_path))))
    ours = _flat(to_dict(config))
    differ = sorted(key for key in theirs.keys() | ours.keys() if theirs.get(key) != ours.get(key))
    if differ:
        shown = ', '.join(f'{key}={theirs.get(key)!r}' for key in differ[:SHOWN_KEYS]) + (
            f' and {len(differ) - SHOWN_KEYS} more' if len(differ) > SHOWN_KEYS else '')
        raise UserError(f'{checkpoint_path} was trained with a different config ({shown} '
                        f'there); resume with the same --config and overrides')
    objective.load_state_dict(state['objective'])
    optimizer.load_state_dict(state['optimizer'])
    best_path = out / BEST_NAME  # written after last.pt's best_val, if a run died between
    best = (load_checkpoint(best_path)['best_val'] if best_path.exists()
            else state.get('best_val', math.inf))
    return state['step'], state.get('elapsed_s', 0.0), best


def _flat(tree: dict, prefix: str = '') -> dict:
    """A nested config dict as {'model.arch': value, ...}."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def init_state(path: Path, config: TrainConfig) -> dict:
    """The checkpoint `path` for --init, refused unless its networks are this config's."""
    state = load_checkpoint(path)
    if not isinstance(state.get('config'), dict):
        raise UserError(f'--init {path}: no training config in it, so its networks cannot be '
                        f'checked against this run\'s')
    theirs = checkpoint_config(state['config'], f'--init {path}').model  # older layouts too
    inherited = FITTED_RANGE if config.fit_depth_range else ()  # the run takes the checkpoint's
    differ = [f.name for f in dataclasses.fields(theirs) if f.name not in inherited
              and getattr(theirs, f.name) != getattr(config.model, f.name)]
    if differ:
        raise UserError(f'--init {path}: its networks differ from this config\'s (model.'
                        f'{", model.".join(differ)}); train with its model: settings')
    if config.model.multi_frame and not any(k.startswith('teacher.')
                                            for k in state.get('objective', {})):
        raise UserError(f'--init {path} lacks the teacher network (exported weights keep only '
                        f'what inference needs): give a training checkpoint (OUT/last.pt or '
                        f'OUT/best.pt)')
    return state


def start_from_init(objective, path: Path, state: dict, talk: bool) -> None:
    """--init: the networks of `state` (init_state's, read from `path`) loaded into
    `objective`; said when `talk`."""
    try:
        objective.load_state_dict(state['objective'])  # exported fp16 is cast to fp32
    except RuntimeError as error:  # mis-shaped tensors
        raise UserError(f'--init {path}: its weights do not fit this config\'s networks '
                        f'({one_line(error)})') from None
    if talk:
        print(f'starting from the networks of {path} (step {state.get("step", 0)}): a new '
              f'schedule and optimiser')
