"""Fixtures shared by several test modules."""
import pytest

from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train


@pytest.fixture(scope='session')
def checkpoint(tmp_path_factory):
    """A multi-frame hybrid checkpoint at 96x64 after two training steps: real weights, config
    and pose network, made by the trainer in a few seconds."""
    config = load_config(None, ['data.seeds=[3]', 'data.frames_per_drive=4', 'data.width=96',
                                'data.height=64', 'batch_size=2', 'num_workers=0'])
    return train(config, tmp_path_factory.mktemp('run'), max_steps=2, progress=False)
