"""The order of the training samples: a permutation per epoch drawn from (seed, epoch), split
across the processes, and the batches taken from it, so that a run resumed mid-epoch sees the
batches the uninterrupted run would have seen."""
from __future__ import annotations

import numpy as np
import torch

from hybrid_depth_core.training.config import TrainConfig


class EpochSampler(torch.utils.data.Sampler):
    """A permutation drawn from (seed, epoch), split across ranks, starting at sample `start`.
    Every rank gets the same `per_rank` samples an epoch (the rest of the permutation waits for
    another epoch), so that all ranks agree on the epoch, and with it on the learning rate, the
    freeze and the collective calls."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1,
                 per_rank: int | None = None):
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.per_rank = size // world if per_rank is None else per_rank
        self.epoch, self.start = 0, 0

    def set_position(self, epoch: int, start_index: int) -> None:
        self.epoch, self.start = epoch, start_index

    def _indices(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        return order[self.rank::self.world][:self.per_rank][self.start:]

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


# Keeps the per-batch height draw apart from the items' own (seed, epoch, item) draws.
HEIGHT_DRAW = 7


class WindowHeightBatches(torch.utils.data.Sampler):
    """The batches of a BatchSampler over an EpochSampler, as (index, rows) items: one window
    height per batch, drawn uniformly from `heights` by (seed, epoch, batch of the epoch), so
    that every rank draws alike and a run resumed mid-epoch draws what it would have."""

    def __init__(self, batches: torch.utils.data.BatchSampler, heights, seed: int):
        self.batches, self.heights, self.seed = batches, tuple(heights), seed

    def __iter__(self):
        sampler = self.batches.sampler
        first = sampler.start // self.batches.batch_size
        for number, batch in enumerate(self.batches, start=first):
            draw = np.random.default_rng([self.seed, sampler.epoch, number, HEIGHT_DRAW])
            rows = self.heights[int(draw.integers(len(self.heights)))]
            yield [(index, rows) for index in batch]

    def __len__(self) -> int:
        return len(self.batches)


def epoch_loader(dataset, sampler: EpochSampler, config: TrainConfig, step: int,
                 steps_per_epoch: int, pin_memory: bool) -> torch.utils.data.DataLoader:
    """The batches from training step `step` to the end of its epoch: the dataset's
    augmentation and the sampler's permutation set to that epoch, the sampler started at the
    step's batch."""
    epoch, batch_in_epoch = divmod(step, steps_per_epoch)
    dataset.set_epoch(epoch)
    sampler.set_position(epoch, batch_in_epoch * config.batch_size)
    batches = torch.utils.data.BatchSampler(sampler, config.batch_size, drop_last=True)
    if config.data.window_heights:
        batches = WindowHeightBatches(batches, config.data.window_heights, config.seed)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=config.num_workers,
        pin_memory=pin_memory, persistent_workers=False)
