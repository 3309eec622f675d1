"""Would the metric hints training finds be enough if they covered every pixel? On a bag with
a depth topic (used here only to judge), at the training frames with a depth image within
16 ms, the hints a run with no config finds: their error at their pixels; spread to every pixel
by edge-aware propagation (`spread`); the depth topic's own values at the same pixels, spread
the same way (what the hints' coverage alone would allow); and each pixel's median over the
hints of the frames around it (`fused`: do their errors average out across frames?). Each
image's depth is scaled by its median ratio to the truth first; a constant depth scores as
"constant". Figures: docs/benchmarks.md, "Denser hints".

    python benchmarks/hint_spread.py --bag ../shared/data/tum_fr1_rpy --span :0.67
"""
import argparse
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hybrid_depth_core.datasets.bag_dataset import (HINTS_WIDTH, MIN_HINTS_HEIGHT, BagSource,
                                                    Recording, image_aspect, load_hints,
                                                    load_motion, load_recording)
from hybrid_depth_core.datasets.sources import DataConfig
from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.recordings.bag_motion import MotionOptions
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.recordings.time_span import TimeSpan
from hybrid_depth_core.tracks.hints import hint_map

from hint_ceiling import depth_at_frames  # one pairing of depth images with frames

WIDTH, HEIGHT = 160, 120  # judged at the dense hints' size
LEVELS, ITERATIONS = 4, 200
MIN_PIXELS = 10  # an image is scored only where every row has this many pixels to judge


def spread(depth: np.ndarray, rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Depth maps (N, H, W), NaN where unknown, filled everywhere: inverse depth relaxed
    towards the mean of its 4 neighbours weighted exp(-|colour step|^2 / 2 sigma^2) (colour in
    [0, 1]; at least 1e-6, so that no pixel is cut off) and, at a known pixel, towards its
    value with weight 10 (Jacobi iterations, coarse to fine)."""
    known = torch.as_tensor(np.isfinite(depth), dtype=torch.float32)[:, None]
    inverse = torch.as_tensor(np.nan_to_num(1 / depth), dtype=torch.float32)[:, None] * known
    colour = torch.as_tensor(rgb, dtype=torch.float32).permute(0, 3, 1, 2) / 255
    pyramid = [(inverse, known, colour)]
    for _ in range(LEVELS - 1):
        inverse, known, colour = pyramid[-1]
        weight = F.avg_pool2d(known, 2)
        pyramid.append((F.avg_pool2d(inverse * known, 2) / weight.clamp(min=1e-6), weight,
                        F.avg_pool2d(colour, 2)))
    inverse, known, _ = pyramid[-1]
    mean = (inverse * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
    filled = mean.expand_as(inverse).clone()
    for inverse, known, colour in reversed(pyramid):
        filled = F.interpolate(filled, size=inverse.shape[2:], mode='bilinear')
        across = torch.exp(-(colour[..., 1:] - colour[..., :-1]).pow(2).sum(1, keepdim=True)
                           / (2 * sigma ** 2)).clamp(min=1e-6)
        down = torch.exp(-(colour[..., 1:, :] - colour[..., :-1, :]).pow(2).sum(1, keepdim=True)
                         / (2 * sigma ** 2)).clamp(min=1e-6)
        weights = (F.pad(across, (0, 1)) + F.pad(across, (1, 0)) + F.pad(down, (0, 0, 0, 1))
                   + F.pad(down, (0, 0, 1, 0)) + 10 * known)
        for _ in range(ITERATIONS):
            total = (F.pad(across * filled[..., 1:], (0, 1))
                     + F.pad(across * filled[..., :-1], (1, 0))
                     + F.pad(down * filled[..., 1:, :], (0, 0, 0, 1))
                     + F.pad(down * filled[..., :-1, :], (0, 0, 1, 0)) + 10 * known * inverse)
            filled = total / weights
    return 1 / filled[:, 0].clamp(min=1e-3).numpy()


def fused(maps: np.ndarray, K: np.ndarray, poses: np.ndarray, index: int, radius: int,
          views: int) -> np.ndarray:
    """Frame `index`'s depth as the median of the hint maps (N, H, W) of the frames within
    `radius` of it sent into it (the nearer of two in a pixel), where `views` or more see it."""
    height, width = maps.shape[1:]
    v, u = np.mgrid[0:height, 0:width]
    seen = []
    for other in range(max(0, index - radius), min(len(maps), index + radius + 1)):
        here = np.isfinite(maps[other])
        points = (np.linalg.inv(K[other]) @ np.stack([u[here], v[here], np.ones(here.sum())])
                  * maps[other][here])
        T = np.linalg.inv(poses[index]) @ poses[other]
        moved = T[:3, :3] @ points + T[:3, 3:]
        x, y, z = K[index] @ moved
        with np.errstate(divide='ignore', invalid='ignore'):
            x, y = np.round(x / z), np.round(y / z)
        inside = (moved[2] > 0) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
        order = np.argsort(-moved[2][inside])  # the nearer written last
        found = np.full((height, width), np.nan, np.float32)
        found[y[inside][order].astype(int), x[inside][order].astype(int)] = \
            moved[2][inside][order]
        seen.append(found)
    seen = np.stack(seen)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # pixels no frame sees
        median = np.nanmedian(seen, 0)
    return np.where(np.isfinite(seen).sum(0) >= views, median, np.nan)


def scaled_error(depth: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """Mean |d s / t - 1| over the pixels both know (NaN under MIN_PIXELS of them), s the
    median ratio of t to d; and how many pixels."""
    both = np.isfinite(depth) & np.isfinite(truth) & (truth > 0) & (depth > 0)
    if both.sum() < MIN_PIXELS:
        return float('nan'), int(both.sum())
    scaled = depth[both] * np.median(truth[both] / depth[both])
    return float(np.mean(np.abs(scaled / truth[both] - 1))), int(both.sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bag', type=Path, required=True)
    parser.add_argument('--span', default='')
    parser.add_argument('--sigma', type=float, default=0.1)
    args = parser.parse_args()
    source = BagSource(args.bag, motion=MotionOptions(), span=TimeSpan(args.span))
    cache = Path(DataConfig().cache_dir).expanduser()  # training's: its hints are reused
    height = max(MIN_HINTS_HEIGHT, round(HINTS_WIDTH / image_aspect(source)))
    whole = load_recording(source, HINTS_WIDTH, height, cache)  # as training's hints see it
    span = source.span.mask(whole.stamps_ns)
    frames = Recording(whole.rgb[span], whole.stamps_ns[span], whole.K[span])
    motion, report = load_motion(source, frames.stamps_ns)
    if motion is None:
        raise SystemExit(f'{args.bag}: no camera motion, so no metric hints ({report})')
    hints = load_hints(source, frames, cache, motion)
    scale = (WIDTH / hints.size[0], HEIGHT / hints.size[1])
    maps = np.stack([hint_map(p, d, scale, WIDTH, HEIGHT)
                     for p, d in zip(hints.pixels, hints.depths)])
    K = scale_intrinsics(frames.K, WIDTH / frames.rgb.shape[2], HEIGHT / frames.rgb.shape[1])
    with Bag(args.bag) as bag:
        topic = next(iter(bag.depth_topics()), None)
    if topic is None:
        raise SystemExit(f'{args.bag}: no depth topic to judge the hints by')
    paired = depth_at_frames(source, topic, frames.stamps_ns, WIDTH, HEIGHT)
    chosen = list(paired)
    truths = np.stack(list(paired.values()))
    truths = np.where(truths > 0, truths, np.nan)
    rgb = np.stack([cv2.resize(frames.rgb[i], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
                    for i in chosen])
    ours = maps[chosen]
    theirs = np.where(np.isfinite(ours), truths, np.nan)
    rows = {'constant': np.ones_like(ours), 'hints, at their pixels': ours,
            f'hints spread (sigma {args.sigma})': spread(ours, rgb, args.sigma),
            'the depth topic at the hints\' pixels, spread': spread(theirs, rgb, args.sigma)}
    for radius, views in ((3, 2), (5, 3)):
        rows[f'median over the frames within {radius} ({views} or more seeing a pixel)'] = \
            np.stack([fused(maps, K, motion.poses, i, radius, views) for i in chosen])
    scored = {name: np.array([scaled_error(d, t) for d, t in zip(depth, truths)])
              for name, depth in rows.items()}
    common = np.all([np.isfinite(errors[:, 0]) for errors in scored.values()], 0)
    print(f'{args.bag} {args.span or "(whole)"}: {len(chosen)} frames with {topic} within 16 '
          f'ms, {common.sum()} with {MIN_PIXELS} or more pixels to judge in every row (scored), '
          f'at {WIDTH}x{HEIGHT}; {hints.report()}')
    print('| depth | pixels per image (median) | AbsRel, each image median-scaled |')
    print('|---|---|---|')
    for name, errors in scored.items():
        print(f'| {name} | {np.median(errors[common, 1]):.0f} | '
              f'{np.mean(errors[common, 0]):.3f} |')


if __name__ == '__main__':
    main()
