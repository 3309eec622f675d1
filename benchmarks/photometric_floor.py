"""Is training limited by its objective or by its budget? For a trained checkpoint, on held-out
synthetic drives: the training loss (per-pixel minimum photometric error over frames t-1 and
t+1, auto-masked) of the network's depth against that of the true depth, both warped with the
true motion, by ground-truth depth range, next to the network's AbsRel there.

    python benchmarks/photometric_floor.py out/learning/hybrid/last.pt

If the network's depth reached the true depth's loss where it is wrong, the photometric
objective could not tell them apart and more training would not help; a loss well above the
true depth's says the objective still points towards the truth.
"""
import argparse

import numpy as np
import torch

from hybrid_depth_core.training import losses
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.evaluation.metrics import Protocol
from hybrid_depth_core.geometry import warp
from hybrid_depth_core.runtime.predictor import DepthPredictor

HELD_OUT_SEEDS = (1000, 1001, 1002)  # as benchmarks/learning.py
CAP = Protocol().max_depth
RANGES = ((0, 5), (5, 10), (10, 20), (20, 40), (40, CAP))
FAR = 1e4  # stands in for the sky and for anything beyond the cap: it does not move


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255


@torch.no_grad()
def per_pixel(predictor: DepthPredictor, seeds, frames: int):
    """Per valid pixel: GT depth, relative error, loss with GT depth, loss with the network's."""
    columns = [[], [], [], []]
    for seed in seeds:
        drive = SyntheticDrive(DriveConfig(width=predictor.width, height=predictor.height,
                                           frames=frames, seed=seed))
        rendered = [drive.render(i) for i in range(frames)]
        K = torch.from_numpy(drive.camera.K).float()[None]
        inv_K = torch.linalg.inv(K)
        for t in range(1, frames - 1):
            gt = rendered[t].depth
            valid = np.isfinite(gt) & (gt < CAP)
            depth = predictor.predict(rendered[t].rgb, drive.camera.K, rendered[t - 1].rgb)
            depth = depth * np.median(gt[valid]) / np.median(depth[valid])  # true motion's units
            target = to_tensor(rendered[t].rgb)
            sources = [to_tensor(rendered[t + offset].rgb) for offset in (-1, 1)]
            motions = [torch.from_numpy(np.linalg.inv(rendered[t + offset].T_world_cam)
                                        @ rendered[t].T_world_cam).float()[None]
                       for offset in (-1, 1)]
            identity = losses.identity_error(sources, target)

            def loss(d: np.ndarray) -> np.ndarray:
                d = torch.from_numpy(np.where(valid, d, FAR).astype(np.float32))[None, None]
                warped = [warp(s, d, T, K, inv_K) for s, T in zip(sources, motions)]
                reprojection = losses.reprojection_loss(warped, target)
                # auto-masked pixels cost what the unwarped sources do (Monodepth2)
                floor = torch.minimum(reprojection, identity.min(1, keepdim=True)[0])
                return floor[0, 0].numpy()
            error = np.abs(np.clip(depth, Protocol().min_depth, CAP) - gt) / gt
            for column, value in zip(columns, (gt, error, loss(gt), loss(depth))):
                column.append(value[valid])
    return [np.concatenate(column) for column in columns]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--frames', type=int, default=30, help='frames per held-out drive')
    args = parser.parse_args()
    predictor = DepthPredictor.from_checkpoint(args.checkpoint, device='cpu')
    gt, error, true_loss, network_loss = per_pixel(predictor, HELD_OUT_SEEDS, args.frames)
    print(f'{args.checkpoint}: held-out drives {HELD_OUT_SEEDS}, {args.frames} frames each, '
          f'{predictor.width}x{predictor.height}, median-scaled, true motion')
    print('| GT depth | pixels | AbsRel | loss, true depth | loss, network depth |')
    print('|---|---|---|---|---|')
    for low, high in RANGES + ((0, CAP),):
        chosen = (gt >= low) & (gt < high)
        print(f'| {low}-{high:g} m | {chosen.mean():.0%} | {error[chosen].mean():.3f} | '
              f'{true_loss[chosen].mean():.4f} | {network_loss[chosen].mean():.4f} |')
    wrong = error > 0.25
    print(f'pixels more than 25% off: {wrong.mean():.0%}; there the true depth has the lower '
          f'loss at {np.mean(true_loss[wrong] < network_loss[wrong]):.0%} of them')


if __name__ == '__main__':
    main()
