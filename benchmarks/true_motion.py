"""What could training learn from the room bags if the camera's motion were known exactly? The
no-config `train --bag` run of benchmarks/any_recording.py, with the pose network's motion
replaced by the true one (from the walk that recorded each bag) for a given number of steps;
then the same held-out scoring (single-frame: the pose network is never trained here).

    python benchmarks/true_motion.py --steps 2025 --out out/true_motion

It bounds what a better pose could give within the budget: if the true motion does not reach
a depth figure in N steps, no pose estimate will. A diagnostic, not a feature: it patches the
objective and the dataset in this process only. Horizontal flips are off (the true motion of a
mirrored triplet would need mirroring too).
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from any_recording import SCENES, pooled
from hybrid_depth_core.datasets import bag_dataset
from hybrid_depth_core.synthetic.bag_writer import DEPTH_GT_TOPIC
from hybrid_depth_core.synthetic import RoomWalk, RoomWalkConfig
from hybrid_depth_core.evaluation.bag_evaluation import evaluate_bag
from hybrid_depth_core.evaluation.metrics import METRICS
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.training import objective
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train


def patch_true_motion(walks: list[np.ndarray]) -> None:
    """Samples of bag i carry the true T_source_target of walks[i] (poses by frame index); the
    objective uses them instead of the pose network's."""
    read = bag_dataset.BagDataset.__getitem__

    def getitem(self, item):
        sample = read(self, item)
        which, (previous, current, following) = self.items[item]
        poses = walks[which]
        for frame_id, source in ((-1, previous), (1, following)):
            sample[('true_motion', frame_id)] = torch.from_numpy(
                np.linalg.inv(poses[source]) @ poses[current]).float()
        return sample
    bag_dataset.BagDataset.__getitem__ = getitem
    objective.SelfSupervisedObjective._poses = lambda self, batch: {
        f: batch[('true_motion', f)] for f in objective.SOURCE_FRAMES}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, required=True)
    parser.add_argument('--out', type=Path, default=Path('out/true_motion'))
    parser.add_argument('--bags', type=Path, default=Path('out/any_recording/bags'),
                        help='where benchmarks/any_recording.py --scene room recorded them')
    args = parser.parse_args()
    train_seeds, frames, test_seeds, _, _ = SCENES['room']
    train_bags = [args.bags / f'room_{seed}' for seed in train_seeds]
    walks = [RoomWalk(RoomWalkConfig(frames=frames, seed=seed)).poses for seed in train_seeds]
    patch_true_motion(walks)
    run = args.out / 'room'
    if not (run / 'last.pt').exists():
        config = load_config(None, ['data.source=bag', 'augment.flip_probability=0',
                                    f'data.bags=[{",".join(map(str, train_bags))}]'])
        train(config, run, max_steps=args.steps)
    trained = DepthPredictor.from_checkpoint(run / 'last.pt', device='cpu')
    per_bag = [evaluate_bag(trained.predict, args.bags / f'room_{seed}', DEPTH_GT_TOPIC,
                            keyframes=False, progress=False) for seed in test_seeds]
    result = pooled(per_bag)
    (args.out / 'room_results.json').write_text(json.dumps(result, indent=2))
    print(f'true motion, {args.steps} steps, held out rooms {test_seeds}, single-frame: '
          + ', '.join(f'{m} {result[m]:.3f}' for m in METRICS))


if __name__ == '__main__':
    main()
