"""Training samples from synthetic drives (frames rendered once, kept in memory)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from hybrid_depth_core.data.samples import AugmentConfig, make_sample
from hybrid_depth_core.data.synthetic import DriveConfig, SyntheticDrive


class SyntheticDataset(torch.utils.data.Dataset):
    """(t-1, t, t+1) samples from every interior frame of every drive, with GT depth.

    Augmentation draws from (seed of the dataset, epoch, index), so it is repeatable whatever
    the number of DataLoader workers; call `set_epoch` each epoch to get new draws.
    """

    def __init__(self, seeds, frames_per_drive: int, width: int, height: int,
                 augment: AugmentConfig | None = None, seed: int = 0, progress: bool = True):
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.drives: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # rgb, depth, K
        bar = tqdm(seeds, desc='rendering synthetic drives', unit='drive', disable=not progress)
        for drive_seed in bar:
            drive = SyntheticDrive(DriveConfig(width=width, height=height,
                                               frames=frames_per_drive, seed=drive_seed))
            frames = [drive.render(i) for i in range(len(drive))]
            self.drives.append((np.stack([f.rgb for f in frames]),
                                np.stack([f.depth for f in frames]), drive.camera.K))
        interior = range(1, frames_per_drive - 1)
        self.index = [(d, t) for d in range(len(self.drives)) for t in interior]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        drive, t = self.index[item]
        rgb, depth, K = self.drives[drive]
        rng = np.random.default_rng([self.seed, self.epoch, item]) if self.augment else None
        return make_sample({-1: rgb[t - 1], 0: rgb[t], 1: rgb[t + 1]}, K, rng, self.augment,
                           depth_gt=depth[t])
