"""Checkpoints: one dict {config, step, objective, optimizer}, written atomically so that a
crash or kill mid-save leaves the previous checkpoint intact."""
from __future__ import annotations

from pathlib import Path

import torch

from hybrid_depth_core.atomic import new_file
from hybrid_depth_core.errors import UserError

FORMAT = 'hybrid-depth checkpoint 1'


def save_checkpoint(path: Path, state: dict) -> None:
    with new_file(path) as file:
        torch.save({'format': FORMAT, **state}, file)


def load_checkpoint(path: Path, map_location='cpu') -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f'checkpoint {path} does not exist')
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise UserError(f'{path} is not a readable checkpoint ({error})') from None
    if not isinstance(state, dict) or state.get('format') != FORMAT:
        raise UserError(f'{path} is not a hybrid-depth checkpoint (expected format '
                        f'{FORMAT!r})')
    return state
