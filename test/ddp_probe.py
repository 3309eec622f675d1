"""Started by test_manydepth_step.py under torchrun: `ddp_probe.py OUT MAX_STEPS [key=value ...]`
trains with the overrides and writes OUT/rank<r>.json, one entry per step with what every rank
must agree on (the run's progress, learning rate, whether teacher and pose are frozen, the
depth range) and the step's matching augmentation."""
import json
import os
import sys
from pathlib import Path

from hybrid_depth_core.training import trainer
from hybrid_depth_core.training.config import load_config

entries, objectives = [], []
schedule = trainer.learning_rate


def recording_learning_rate(config, progress):
    # Called before the step's forward, so the depth range is the one the previous step's
    # update left on this rank (DDP's buffer broadcast at the forward would hide a rank that
    # updated from its own batch alone).
    rate = schedule(config, progress)
    entries.append({'progress': progress, 'learning_rate': rate,
                    'depth_range': objectives[0].depth.cost_volume.depth_range.tolist()})
    return rate


class RecordingObjective(trainer.SelfSupervisedObjective):
    def __init__(self, *args):
        super().__init__(*args)
        objectives.append(self)

    def forward(self, batch, augmentation=None, frozen=False):
        entries[-1].update(frozen=frozen, augmentation=augmentation.tolist())
        return super().forward(batch, augmentation, frozen)


if __name__ == '__main__':
    out, max_steps, overrides = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    trainer.learning_rate = recording_learning_rate
    trainer.SelfSupervisedObjective = RecordingObjective
    rank = int(os.environ['RANK'])
    trainer.train(load_config(None, overrides), out, max_steps=max_steps, device='cpu',
                  progress=False)
    (out / f'rank{rank}.json').write_text(json.dumps(entries))
