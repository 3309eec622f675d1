"""Where a training step's time goes: building a batch (make_sample for each sample, with the
config's augmentation, and collate), forward + backward of each network and of the
view-synthesis losses, the whole objective, and the optimiser update with Adam's per-parameter
loop against its fused kernel; then whole steps (batch, objective, fused Adam, as the trainer
does with num_workers 0 on the CPU) in images/s. One batch of the hybrid config's synthetic
drives, median of --repeats timings after two warm-ups.

    python benchmarks/training_step.py [--config config/train_synthetic_hybrid.yaml]
"""
import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from hybrid_depth_core.training import losses
from hybrid_depth_core.datasets.sources import build_dataset
from hybrid_depth_core.geometry import invert_transform
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.objective import SOURCE_FRAMES, SelfSupervisedObjective


def median_ms(function, repeats: int) -> float:
    function()
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', type=Path, default=Path('config/train_synthetic_hybrid.yaml'))
    parser.add_argument('--repeats', type=int, default=6)
    args = parser.parse_args()
    config = load_config(args.config)
    torch.manual_seed(config.seed)
    one_drive = dataclasses.replace(config.data, seeds=config.data.seeds[:1])  # enough for a batch
    dataset = build_dataset(one_drive, config.augment, config.seed, progress=False)

    def load():
        return torch.utils.data.default_collate([dataset[i] for i in range(config.batch_size)])
    batch = load()
    objective = SelfSupervisedObjective(config.model, config.loss)
    aug = {f: batch[('color_aug', f, 0)] for f in (0,) + SOURCE_FRAMES}
    K = batch[('K', 0)]
    with torch.no_grad():
        poses = {-1: invert_transform(objective.pose(aug[-1], aug[0])),
                 1: objective.pose(aug[0], aug[1])}
        disparities = [d.detach() for d in objective.depth(aug[0]).disparities]
        identity = losses.identity_error([batch[('color', f, 0)] for f in SOURCE_FRAMES],
                                         batch[('color', 0, 0)])

    def backward_of(outputs):
        sum(d.mean() for d in outputs.disparities).backward()

    def view_synthesis():
        leaves = [d.clone().requires_grad_() for d in disparities]
        sum(objective._view_synthesis(batch, leaves, poses, identity=identity)[:2]).backward()

    def whole():
        objective(batch)[0].backward()  # no matching augmentation: every sample matches
    parts = {f'batch: {config.batch_size} samples and collate': load,
             f'depth network ({config.model.arch}, with lookup frame)':
             lambda: backward_of(objective.depth(aug[0], aug[-1], K, poses[-1])),
             'pose network, both pairs': lambda: (objective.pose(aug[-1], aug[0]).sum()
                                                  + objective.pose(aug[0], aug[1]).sum()
                                                  ).backward(),
             'view-synthesis losses, one network': view_synthesis,
             'whole objective': whole}
    if objective.teacher is not None:
        parts['teacher (resnet18, single-frame)'] = lambda: backward_of(objective.teacher(aug[0]))
    print(f'{args.config}: batch {config.batch_size}, {config.data.width}x{config.data.height}, '
          f'{torch.get_num_threads()} threads; forward + backward, median ms')
    for name, function in parts.items():
        print(f'  {name}: {median_ms(function, args.repeats):.0f}')
    parameters = [p for p in objective.parameters() if p.requires_grad]
    whole()  # every parameter has a gradient
    print(f'Adam update of {sum(p.numel() for p in parameters) / 1e6:.1f} M parameters, '
          f'median ms:')
    for name, options in (('per-parameter loop', {'foreach': False}), ('fused', {'fused': True})):
        optimizer = torch.optim.Adam(parameters, lr=config.learning_rate, **options)
        print(f'  {name}: {median_ms(optimizer.step, args.repeats):.1f}')

    def step():
        loss = objective(load())[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()  # the fused one, the last built
    step_ms = median_ms(step, args.repeats)
    print(f'training step (batch, objective, fused Adam): {step_ms:.0f} ms median, '
          f'{1000 * config.batch_size / step_ms:.2f} images/s')


if __name__ == '__main__':
    main()
