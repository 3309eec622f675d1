"""Training samples from synthetic drives (frames rendered once, kept in memory)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from hybrid_depth_core.data.bag_motion import CameraMotion
from hybrid_depth_core.data.image_motion import (MAX_MATCHING_GAP, choose_stride, pair_turns,
                                                 stride_motions)
from hybrid_depth_core.data.samples import AugmentConfig, make_sample
from hybrid_depth_core.data.synthetic import DriveConfig, SyntheticDrive


class SyntheticDataset(torch.utils.data.Dataset):
    """(t-s, t, t+s) samples (s = frame_stride) from every interior frame of every drive, with
    GT depth, and with the exact distances the camera travelled if `motion`.

    Augmentation draws from (seed of the dataset, epoch, index), so it is repeatable whatever
    the number of DataLoader workers; call `set_epoch` each epoch to get new draws.
    """

    def __init__(self, seeds, frames_per_drive: int, width: int, height: int,
                 augment: AugmentConfig | None = None, seed: int = 0, progress: bool = True,
                 frame_stride: int = 0, turns: bool = False, motion: bool = True):
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.drives: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # rgb, depth, K
        self.motion: list[CameraMotion] | None = [] if motion else None
        bar = tqdm(seeds, desc='rendering synthetic drives', unit='drive', disable=not progress)
        for drive_seed in bar:
            drive = SyntheticDrive(DriveConfig(width=width, height=height,
                                               frames=frames_per_drive, seed=drive_seed))
            frames = [drive.render(i) for i in range(len(drive))]
            self.drives.append((np.stack([f.rgb for f in frames]),
                                np.stack([f.depth for f in frames]), drive.camera.K))
            if motion:
                self.motion.append(CameraMotion.exact(drive.poses, 'the exact poses'))
        # measured to choose the stride, or to report a configured one
        self.motions = (stride_motions([drive[0] for drive in self.drives],
                                       min(MAX_MATCHING_GAP, (frames_per_drive - 1) // 2))
                        if frame_stride == 0 or progress else {})
        self.stride = frame_stride or choose_stride(self.motions)
        if progress:
            print(f'synthetic drives: frame stride {self.stride} ('
                  f'{"chosen from the motion" if frame_stride == 0 else "as configured"}; '
                  f'median parallax '
                  f'{100 * self.motions.get(self.stride, float("nan")):.1f}% of the width)')
        self.turns = ([pair_turns(rgb, [K] * len(rgb), self.stride) for rgb, _, K in self.drives]
                      if turns else None)  # measured when the model corrects them
        interior = range(self.stride, frames_per_drive - self.stride)
        self.index = [(d, t) for d in range(len(self.drives)) for t in interior]

    def distances(self) -> np.ndarray:
        """The distances of the training pairs (t - s, t) and (t, t + s), metres."""
        if self.motion is None:
            return np.zeros(0)
        return np.array([self.motion[d].distance(t, t + sign * self.stride)
                         for d, t in self.index for sign in (-1, 1)])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        drive, t = self.index[item]
        rgb, depth, K = self.drives[drive]
        rng = np.random.default_rng([self.seed, self.epoch, item]) if self.augment else None
        frames = {sign: rgb[t + sign * self.stride] for sign in (-1, 0, 1)}
        turns = (None if self.turns is None else
                 {-1: self.turns[drive][t], 1: self.turns[drive][t + self.stride]})
        distances = (None if self.motion is None else
                     {sign: self.motion[drive].distance(t, t + sign * self.stride)
                      for sign in (-1, 1)})
        return make_sample(frames, K, rng, self.augment, depth_gt=depth[t], turns=turns,
                           distances=distances)
