"""Training data sources behind one config: synthetic drives, KITTI raw, an image folder,
recorded bags."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hybrid_depth_core.datasets.samples import AugmentConfig
from hybrid_depth_core.recordings.time_span import TimeSpan
from hybrid_depth_core.errors import UserError

DATA_SOURCES = ('synthetic', 'kitti', 'folder', 'bag')


@dataclass(frozen=True)
class DataConfig:
    source: str = 'synthetic'      # synthetic | kitti | folder | bag
    # The network's input size (multiples of 32), images resized to it; both 0: the source's
    # aspect ratio at the device's pixel budget (training/defaults.py).
    width: int = 0
    height: int = 0
    seeds: tuple[int, ...] = tuple(range(1, 17))  # synthetic: one street per seed
    frames_per_drive: int = 60     # synthetic (streets and rooms)
    room_seeds: tuple[int, ...] = ()  # synthetic: also walk these rooms (issue 10's world)
    # synthetic: render this many rows (0: height) and train on random windows of `height`
    # rows, so that the horizon's row and the vertical view vary (datasets/synthetic_dataset.py)
    render_height: int = 0
    # synthetic: each batch's windows are this many rows, drawn per batch from the list (empty:
    # always `height`), so that the network also sees views as tall as a 4:3 camera's once
    # framed at the training focal length; validation and the recorded camera keep `height`
    window_heights: tuple[int, ...] = ()
    # synthetic: cut every window (training too) about the render's middle row, as a level
    # camera with a centred principal point sees; False: at a random row, as a pitched one
    centred_windows: bool = False
    variety: bool = False          # synthetic: camera height and speed vary per drive
    root: str = ''                 # kitti: the raw-data root; folder: the image folder
    split: str = ''                # kitti: split file, lines '<date>/<drive>_sync <frame> l|r'
    intrinsics: str = ''           # folder, and bags without camera_info: intrinsics YAML
    bags: tuple[str, ...] = ()     # bag: rosbag2 directories or files (datasets/bag_dataset.py)
    image_topic: str = ''          # bag: '' = the bag's only image topic
    camera_info_topic: str = ''    # bag: '' = the image topic's sibling camera_info
    # Triplets of frames (t - s, t, t + s); 0: chosen from the image motion (bag, synthetic;
    # tracks/image_motion.py), 1 for kitti and folder (split files promise t - 1 and t + 1).
    frame_stride: int = 0
    static_threshold: float = 1.0  # bag: frames closer than this (grey levels) are skipped
    val_fraction: float = 0.1      # bag: the last part of each bag (by time) held out
    # bag: train on this part of each recording only (recordings/time_span.py: START:END, fractions
    # or seconds with an s), e.g. ':0.67', leaving '0.67:' for `evaluate --span`
    span: str = ''
    cache_dir: str = '~/.cache/hybrid-depth/frames'  # bag: decoded frames; '' = no cache
    allow_partial_bags: bool = False  # bag: train on what a damaged bag holds before damage
    # The camera's measured motion, which teaches metric scale (loss.velocity): a bag's TF
    # tree, odometry or camera pose topic (recordings/bag_motion.py), a synthetic drive's exact
    # poses.
    motion: bool = True
    motion_topic: str = ''         # bag: '' = the first that works of TF, odometry, a pose topic
    motion_frame: str = ''         # bag: the TF chain's fixed frame; '' = odom, else the root

    def __post_init__(self):
        if self.source not in DATA_SOURCES:
            raise ValueError(f'data.source must be one of {DATA_SOURCES}, got {self.source!r}')
        automatic = self.width == self.height == 0
        if not automatic and (self.width % 32 or self.height % 32
                              or min(self.width, self.height) < 64):
            raise ValueError(f'data.width and data.height must be multiples of 32, at least '
                             f'64 (or both 0: automatic); got {self.width}x{self.height}')
        if self.render_height and self.render_height < max(self.height, 64):
            raise ValueError(f'data.render_height must be 0 or at least data.height, got '
                             f'{self.render_height}')
        if self.window_heights:
            tallest = max(self.render_height, self.height)
            if self.source != 'synthetic':
                raise ValueError(f'data.window_heights is for synthetic data only (renders to '
                                 f'cut windows from), not data.source={self.source}')
            if any(h % 32 or not 64 <= h <= tallest for h in self.window_heights):
                raise ValueError(f'data.window_heights must be multiples of 32 from 64 up to '
                                 f'the render height (the larger of data.render_height and '
                                 f'data.height: {tallest}), got {list(self.window_heights)}')
        if self.source == 'synthetic' and not self.seeds:
            raise ValueError('data.seeds must name at least one synthetic drive')
        stride = max(self.frame_stride, 1)
        if self.source == 'synthetic' and self.frames_per_drive < 2 * stride + 1:
            raise ValueError(f'data.frames_per_drive must be at least 2 * data.frame_stride + 1 '
                             f'= {2 * stride + 1}, got {self.frames_per_drive}')
        TimeSpan(self.span)  # a ValueError naming the span
        if self.frame_stride < 0 or not 0 <= self.val_fraction < 1:
            raise ValueError(f'need data.frame_stride >= 0 (0: automatic) and 0 <= '
                             f'data.val_fraction < 1, got {self.frame_stride} and '
                             f'{self.val_fraction}')


def build_dataset(config: DataConfig, augment: AugmentConfig | None, seed: int,
                  progress: bool = True, turns: bool = False,
                  hints: bool = False) -> torch.utils.data.Dataset:
    """The dataset `config.source` names; every one yields the sample contract of samples.py
    (with the measured turns if `turns`: for DepthModelConfig.turn_prior; with the distances
    the camera travelled where `config.motion` and the source has them) and has
    `set_epoch(epoch)` for repeatable augmentation and `distances()`, the known distances of
    its training pairs (metres; empty without motion). `hints`: the samples carry depth hints
    (tracks/hints.py) where the source can give them (bags)."""
    if config.source == 'synthetic':
        from hybrid_depth_core.datasets.synthetic_dataset import SyntheticDataset
        return SyntheticDataset(config.seeds, config.frames_per_drive, config.width,
                                config.height, augment, seed, progress, config.frame_stride,
                                turns, config.motion, config.render_height, config.variety,
                                config.room_seeds, config.window_heights,
                                config.centred_windows)
    if config.source == 'kitti':
        from hybrid_depth_core.datasets.kitti import KittiRawDataset
        _require(config, 'root', 'split')
        return KittiRawDataset(Path(config.root), Path(config.split), config.width,
                               config.height, augment, seed, max(config.frame_stride, 1), turns)
    if config.source == 'bag':
        from hybrid_depth_core.datasets.bag_dataset import BagDataset, BagSource
        from hybrid_depth_core.recordings.bag_motion import MotionOptions
        _require(config, 'bags')
        motion = MotionOptions(config.motion, config.motion_topic, config.motion_frame)
        sources = [BagSource(Path(bag), config.image_topic, config.camera_info_topic,
                             config.intrinsics, config.allow_partial_bags, motion,
                             TimeSpan(config.span))
                   for bag in config.bags]
        cache = Path(config.cache_dir).expanduser() if config.cache_dir else None
        return BagDataset(sources, config.width, config.height, augment, seed,
                          config.frame_stride, config.static_threshold, config.val_fraction,
                          cache_dir=cache, progress=progress, turns=turns, hints=hints)
    from hybrid_depth_core.datasets.image_folder import ImageFolderDataset
    _require(config, 'root', 'intrinsics')
    return ImageFolderDataset(Path(config.root), Path(config.intrinsics), config.width,
                              config.height, augment, seed, max(config.frame_stride, 1), turns)


def _require(config: DataConfig, *names: str) -> None:
    missing = [f'data.{name}' for name in names if not getattr(config, name)]
    if missing:
        raise UserError(f'data.source={config.source} needs {", ".join(missing)}')
