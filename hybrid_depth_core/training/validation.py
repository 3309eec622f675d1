"""Held-out scoring while training: the photometric loss of the depth network on triplets it
never trained on (any data), and depth metrics where the data has ground truth."""
from __future__ import annotations

import numpy as np
import torch

# Held out: at most this many triplets, spread evenly, so that scoring costs a few seconds.
MAX_SAMPLES = 48
SYNTHETIC_SEEDS = (500, 501)  # streets apart from training (1-40) and evaluation (1000+)


def build_validation_set(config, dataset, progress: bool = True):
    """The held-out triplets for `dataset` (built from `config.data`), or None where the source
    has none: the end of each bag (data.val_fraction), synthetic streets of their own seeds
    with the training stride. KITTI and image folders have no held-out part here."""
    data = config.data
    if data.source == 'bag':
        held_out = dataset.held_out()
    elif data.source == 'synthetic':
        from hybrid_depth_core.datasets.synthetic_dataset import SyntheticDataset
        held_out = SyntheticDataset(SYNTHETIC_SEEDS, data.frames_per_drive, data.width,
                                    data.height, None, config.seed, False, dataset.stride,
                                    config.model.turn_prior)
    else:
        return None
    if held_out is None or len(held_out) == 0:
        return None
    chosen = np.unique(np.linspace(0, len(held_out) - 1, min(MAX_SAMPLES, len(held_out)))
                       .round().astype(int))
    if progress:
        print(f'validation: {len(chosen)} held-out triplets, scored every epoch')
    return torch.utils.data.Subset(held_out, chosen.tolist())


@torch.no_grad()
def validate(objective, samples, device: torch.device, precision, batch_size: int = 6) -> dict:
    """{'val/photometric': ..., and with ground truth 'val/abs_rel', 'val/d1'} of the depth
    network (multi-frame: matching the earlier frame of each triplet). Leaves the objective in
    eval mode; the caller restores its training modes."""
    from hybrid_depth_core.evaluation.metrics import Accumulator, Protocol

    objective.eval()
    loader = torch.utils.data.DataLoader(samples, batch_size=batch_size, shuffle=False)
    total, count, accumulator = 0.0, 0, Accumulator(Protocol())
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        with precision:
            photometric, depth = objective.score(batch)
        size = len(depth)
        total, count = total + float(photometric) * size, count + size
        if 'depth_gt' in batch:
            for predicted, truth in zip(depth.float().cpu().numpy(),
                                        batch['depth_gt'].cpu().numpy()):
                accumulator.add(predicted[0], truth[0])
    scores = {'val/photometric': total / max(count, 1)}
    if accumulator.per_image:
        summary = accumulator.summary()
        scores.update({'val/abs_rel': summary['abs_rel'], 'val/d1': summary['a1'],
                       'val/abs_rel_unscaled': summary['unscaled']['abs_rel'],
                       'val/scale_ratio': summary['scale_median']})
    return scores
