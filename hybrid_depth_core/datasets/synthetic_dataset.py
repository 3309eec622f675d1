"""Training samples from synthetic drives (frames rendered once, kept in memory)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from hybrid_depth_core.recordings.bag_motion import CameraMotion
from hybrid_depth_core.tracks.image_motion import (MAX_MATCHING_GAP, choose_stride, pair_turns,
                                                   stride_motions)
from hybrid_depth_core.datasets.samples import AugmentConfig, make_sample
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.synthetic.room import RoomWalk, RoomWalkConfig


class SyntheticDataset(torch.utils.data.Dataset):
    """(t-s, t, t+s) samples from every interior frame of every drive (street seeds) and walk
    (room seeds, issue 10's world seen by the street's camera at 10 Hz), with GT depth, and with
    the exact distances the camera travelled if `motion`. The stride s is `frame_stride`, or
    chosen from the image motion for each world (a walk moves centimetres a frame, a car a
    metre).

    `render_height` > `height`: frames are rendered that tall and each sample is a window of
    `height` rows at a random offset (centred without augmentation), K following it, so that
    the horizon's row and the vertical view vary as they do between cameras and mountings once
    framed at the training focal length (runtime/framing.py). `window_heights`: items may be
    asked for as (index, rows), windows of another height, which the trainer's
    `WindowHeightBatches` draws per batch from this list. `centred_windows`: every window is
    centred, augmented or not (the horizon stays at mid-height). `variety`: each drive's camera
    height (0.8-2.2 m) and speed vary with its seed.

    Augmentation draws from (seed of the dataset, epoch, index), so it is repeatable whatever
    the number of DataLoader workers; call `set_epoch` each epoch to get new draws.
    """

    def __init__(self, seeds, frames_per_drive: int, width: int, height: int,
                 augment: AugmentConfig | None = None, seed: int = 0, progress: bool = True,
                 frame_stride: int = 0, turns: bool = False, motion: bool = True,
                 render_height: int = 0, variety: bool = False, room_seeds=(),
                 window_heights=(), centred_windows: bool = False):
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.centred_windows = centred_windows
        self.height = height
        self.render_height = max(render_height, height, *window_heights)
        self.drives: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # rgb, depth, K
        self.motion: list[CameraMotion] | None = [] if motion else None
        worlds = [('street', s) for s in seeds] + [('room', s) for s in room_seeds]
        bar = tqdm(worlds, desc='rendering synthetic drives', unit='drive',
                   disable=not progress)
        for world, drive_seed in bar:
            drive = _sequence(world, drive_seed, frames_per_drive, width, self.render_height,
                              variety)
            frames = [drive.render(i) for i in range(len(drive))]
            self.drives.append((np.stack([f.rgb for f in frames]),
                                np.stack([f.depth for f in frames]), drive.camera.K))
            if motion:
                self.motion.append(CameraMotion.exact(drive.poses, 'the exact poses'))
        groups = {world: [d for d, (w, _) in enumerate(worlds) if w == world]
                  for world in dict.fromkeys(w for w, _ in worlds)}
        gap = min(MAX_MATCHING_GAP, (frames_per_drive - 1) // 2)
        self.strides = [0] * len(worlds)
        for world, members in groups.items():
            # measured to choose the stride, or to report a configured one
            motions = (stride_motions([self.drives[d][0] for d in members], gap)
                       if frame_stride == 0 or progress else {})
            stride = frame_stride or choose_stride(motions)
            for d in members:
                self.strides[d] = stride
            if progress:
                print(f'synthetic {world}s: frame stride {stride} ('
                      f'{"chosen from the motion" if frame_stride == 0 else "as configured"}; '
                      f'median parallax {100 * motions.get(stride, float("nan")):.1f}% of the '
                      f'width)')
        self.stride = self.strides[0]  # the streets' (the validation drives use it)
        self.turns = ([pair_turns(rgb, [K] * len(rgb), stride)
                       for (rgb, _, K), stride in zip(self.drives, self.strides)]
                      if turns else None)  # measured when the model corrects them
        self.index = [(d, t) for d, stride in enumerate(self.strides)
                      for t in range(stride, frames_per_drive - stride)]

    def distances(self) -> np.ndarray:
        """The distances of the training pairs (t - s, t) and (t, t + s), metres."""
        if self.motion is None:
            return np.zeros(0)
        return np.array([self.motion[d].distance(t, t + sign * self.strides[d])
                         for d, t in self.index for sign in (-1, 1)])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        item, height = item if isinstance(item, tuple) else (item, self.height)
        if not 0 < height <= self.render_height:
            raise ValueError(f'a window of {height} rows does not fit frames rendered '
                             f'{self.render_height} rows tall')
        drive, t = self.index[item]
        rgb, depth, K = self.drives[drive]
        stride = self.strides[drive]
        rng = np.random.default_rng([self.seed, self.epoch, item]) if self.augment else None
        spare = self.render_height - height
        top = (spare // 2 if rng is None or self.centred_windows
               else int(rng.integers(0, spare + 1)))
        rows = slice(top, top + height)
        K = K.copy()
        K[1, 2] -= top
        frames = {sign: rgb[t + sign * stride, rows] for sign in (-1, 0, 1)}
        turns = (None if self.turns is None else
                 {-1: self.turns[drive][t], 1: self.turns[drive][t + stride]})
        distances = (None if self.motion is None else
                     {sign: self.motion[drive].distance(t, t + sign * stride)
                      for sign in (-1, 1)})
        return make_sample(frames, K, rng, self.augment, depth_gt=depth[t, rows], turns=turns,
                           distances=distances)


def _sequence(world: str, seed: int, frames: int, width: int, height: int, variety: bool):
    """A street drive or a room walk of `seed`, seen by the street's camera."""
    if world == 'room':
        # 10 Hz and no stops: a few centimetres a frame, every frame a training frame.
        return RoomWalk(RoomWalkConfig(width=width, height=height, frames=frames, seed=seed,
                                       hfov_deg=DriveConfig.hfov_deg, frame_rate=10.0,
                                       stop_frames=(1, 1), stop_interval=(60.0, 60.0)))
    options = {}
    if variety:  # drawn apart from the scene's own draws, which the seed fixes
        draw = np.random.default_rng([seed, 22])
        low = draw.uniform(0.3, 1.0)
        options = {'camera_height': draw.uniform(0.8, 2.2),
                   'speed': (low, min(low * draw.uniform(1.2, 2.0), 5.0))}
    return SyntheticDrive(DriveConfig(width=width, height=height, frames=frames, seed=seed,
                                      **options))
