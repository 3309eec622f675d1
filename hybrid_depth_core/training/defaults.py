"""What a run starts from that the config does not fix: the automatic parts of the config (the
0 / -1 values), chosen for the device and the data and saved resolved in the checkpoint, and
the pose network's starting motion, from the data."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from hybrid_depth_core.datasets.sources import DataConfig
from hybrid_depth_core.tracks.image_motion import HEADING_AGREEMENT, camera_heading
from hybrid_depth_core.networks import DepthModelConfig
from hybrid_depth_core.networks.pose import INITIAL_SPEED
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.training.config import TrainConfig

# Input pixels: the learning benchmark's 192x64 on a CPU (where 320x96 saw too few images in
# the budget, docs/benchmarks.md), ManyDepth's 640x192 on a GPU.
CPU_PIXELS, GPU_PIXELS = 192 * 64, 640 * 192
CPU_BATCH, GPU_BATCH = 6, 12
# The depth range fitted to a recording's metric hints (fit_depth_range): the far end at
# RANGE_MARGIN x their RANGE_PERCENTILE-th percentile, the start at START_FRACTION of it. A
# far end within reach of a room's depths keeps a run from settling on a flat depth at the
# range's end (docs/benchmarks.md, "A depth range fitted to the recording").
RANGE_MARGIN, RANGE_PERCENTILE, START_FRACTION = 2.5, 99, 0.3
RANGE_MIN_HINTS = 1000  # fewer metric hints than this: the recording does not count
RANGE_FLOOR = 20        # the far end stays at or beyond RANGE_FLOOR x model.min_depth
FITTED_RANGE = ('max_depth', 'initial_depth')  # the model fields fit_depth_range sets
GPU_WORKERS = 4
KITTI_ASPECT = 1242 / 375  # the raw colour camera


def resolve(config: TrainConfig, device: torch.device) -> TrainConfig:
    """`config` with its automatic values filled in for `device` and the data."""
    gpu = device.type == 'cuda'
    data = config.data
    if data.width == data.height == 0:
        width, height = input_size(source_aspect(data), GPU_PIXELS if gpu else CPU_PIXELS)
        data = dataclasses.replace(data, width=width, height=height)
    return dataclasses.replace(
        config, data=data,
        batch_size=config.batch_size or (GPU_BATCH if gpu else CPU_BATCH),
        num_workers=config.num_workers if config.num_workers >= 0 else (
            GPU_WORKERS if gpu else 0))


def measure_heading(dataset, samples: int = 64) -> tuple[np.ndarray, int]:
    """motion.camera_heading of the (t - s, t) pairs of up to `samples` training samples spread
    over `dataset` (any source), unaugmented: (mean unit translation, pairs measured)."""
    augment, dataset.augment = dataset.augment, None
    try:
        chosen = np.unique(np.linspace(0, len(dataset) - 1, min(samples, len(dataset)))
                           .round().astype(int))
        pairs, Ks = [], []
        for item in chosen:
            sample = dataset[int(item)]
            pairs.append([_to_rgb(sample[('color', -1, 0)]), _to_rgb(sample[('color', 0, 0)])])
            Ks.append(sample[('K', 0)].numpy())
    finally:
        dataset.augment = augment
    return camera_heading(pairs, Ks, stride=1, every=1)


def _to_rgb(color: torch.Tensor) -> np.ndarray:
    return (color.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def pose_prior(heading: np.ndarray, speed: float | None = None) -> np.ndarray:
    """The translation the pose network starts from: `speed` (the measured median distance
    between a training pair's frames where the data has the camera's motion, else
    INITIAL_SPEED) along the recording's heading when its frame pairs agree on one (a car or
    robot that looks where it drives: from a standing start, trained from scratch, the street's
    pose network settled on driving backwards or sideways for about half of the seeds,
    docs/benchmarks.md), otherwise none (a handheld camera moves every which way)."""
    length = float(np.linalg.norm(heading))
    if length < HEADING_AGREEMENT:
        return np.zeros(3)
    return (INITIAL_SPEED if speed is None else speed) * np.asarray(heading) / length


def scale_of(config: TrainConfig, dataset) -> dict:
    """What a checkpoint records about its depth's scale: metric when the velocity loss had
    measured distances to learn from, with the median of those distances (metres)."""
    distances = dataset.distances()
    metric = config.loss.velocity > 0 and len(distances) > 0
    return {'metric': bool(metric), 'pairs_with_motion': int(len(distances)),
            'median_distance_m': float(np.median(distances)) if len(distances) else None}


def training_focal(dataset, samples: int = 8) -> tuple[float, float]:
    """The training camera a checkpoint records (checkpoint.ModelSection.focal): the median fx
    and fy, in pixels at the training size, of up to `samples` items spread over the dataset
    (recordings from several cameras each count)."""
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(samples, len(dataset))).round())
    Ks = np.stack([dataset[int(index)][('K', 0)].numpy() for index in picks])
    return float(np.median(Ks[:, 0, 0])), float(np.median(Ks[:, 1, 1]))


def fit_depth_range(model: DepthModelConfig, dataset) -> tuple[DepthModelConfig, str | None]:
    """`model` with its depth range narrowed to the data's metric hints, and the line that says
    so (None where the range stays): the far end at RANGE_MARGIN x the RANGE_PERCENTILE-th
    percentile of the metric hints of the recording whose hints reach farthest (each recording
    with RANGE_MIN_HINTS or more counts; the hints of held-out frames too: they are the
    recording's geometry, not its ground truth), never beyond the config's far end nor nearer
    than RANGE_FLOOR x min_depth; the start at START_FRACTION of the new far end where that is
    nearer than the config's. Data without metric hints keeps the config's range."""
    farthest = []
    for kinds in getattr(dataset, 'hints', []):
        for kind in kinds:
            depths = np.concatenate(kind.depths) if kind.metric and kind.depths else np.zeros(0)
            depths = depths[np.isfinite(depths) & (depths > 0)]
            if len(depths) >= RANGE_MIN_HINTS:
                farthest.append(float(np.percentile(depths, RANGE_PERCENTILE)))
    if not farthest:
        return model, None
    reach = max(farthest)
    far = max(RANGE_MARGIN * reach, RANGE_FLOOR * model.min_depth)
    if far >= model.max_depth:
        return model, None
    fitted = dataclasses.replace(model, max_depth=far,
                                 initial_depth=min(model.initial_depth, START_FRACTION * far))
    return fitted, (f'depth range {model.min_depth:g}-{far:.1f} m, starting at '
                    f'{fitted.initial_depth:.1f} m: {RANGE_MARGIN:g} x the metric hints\' '
                    f'{RANGE_PERCENTILE}th percentile ({reach:.2f} m; fit_depth_range=false '
                    f'keeps {model.min_depth:g}-{model.max_depth:g} m)')


def input_size(aspect: float, pixels: int) -> tuple[int, int]:
    """(width, height), multiples of 32 and at least 64, of about `pixels` pixels with the
    aspect ratio closest to `aspect` (width / height)."""
    height = max(64, 32 * round(math.sqrt(pixels / aspect) / 32))
    width = max(64, 32 * round(aspect * height / 32))
    return width, height


def source_aspect(data: DataConfig) -> float:
    """Width / height of the images the data source holds."""
    if data.source == 'synthetic':
        from hybrid_depth_core.synthetic import DriveConfig
        drive = DriveConfig()
        return drive.width / drive.height
    if data.source == 'kitti':
        return KITTI_ASPECT
    if data.source == 'folder':
        from hybrid_depth_core.datasets.image_folder import read_intrinsics
        if not data.intrinsics:
            raise UserError('data.source=folder needs data.intrinsics')
        camera, _ = read_intrinsics(Path(data.intrinsics))
        return camera.width / camera.height
    if not data.bags:
        raise UserError('data.source=bag needs data.bags')
    from hybrid_depth_core.datasets.bag_dataset import BagSource, image_aspect
    aspects = {bag: image_aspect(BagSource(Path(bag), data.image_topic, data.camera_info_topic,
                                           allow_partial=data.allow_partial_bags))
               for bag in data.bags}
    if max(aspects.values()) > 1.01 * min(aspects.values()):
        shapes = ', '.join(f'{bag}: {aspect:.3f}' for bag, aspect in aspects.items())
        raise UserError(f'the bags\' images have different aspect ratios ({shapes}); set '
                        f'data.width and data.height for all of them')
    return next(iter(aspects.values()))
