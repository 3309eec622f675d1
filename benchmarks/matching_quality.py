"""How much does the multi-frame cost volume know? For a trained multi-frame checkpoint, on
held-out synthetic drives: the depth of each pixel's lowest-cost hypothesis against ground
truth (median relative error on confident pixels, after median scaling), with the pose network's
motion and with the true motion; the same matching on the raw images at full and at the cost
volume's 1/4 resolution as a reference; and the network's AbsRel with and without the previous
frame, and that of its single-frame teacher (a training checkpoint holds it).

    python benchmarks/matching_quality.py out/learning/hybrid/last.pt

If the lowest-cost depths are no better than matching raw pixels, the network has little more
than its single-frame cues to go on, whatever the cost volume's design.
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.evaluation.drivers import evaluate_synthetic
from hybrid_depth_core.evaluation.metrics import Protocol
from hybrid_depth_core.geometry import invert_transform, scale_intrinsics
from hybrid_depth_core.networks import DepthModel, disp_to_depth
from hybrid_depth_core.networks.cost_volume import CostVolume
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.networks.checkpoint import load_checkpoint
from hybrid_depth_core.training.objective import teacher_config

HELD_OUT_SEEDS = (1000, 1001, 1002)  # as benchmarks/learning.py
CAP = Protocol().max_depth


def median_error(depth: np.ndarray, gt: np.ndarray, confident: np.ndarray) -> float:
    valid = np.isfinite(gt) & (gt < CAP) & confident
    return float(np.median(np.abs(depth[valid] - gt[valid]) / gt[valid]))


def subsample(gt: np.ndarray, factor: int) -> np.ndarray:
    """The ground truth at the centre-ish pixel of each factor x factor block."""
    height, width = gt.shape
    blocks = gt.reshape(height // factor, factor, width // factor, factor)
    return blocks[:, factor // 2, :, factor // 2]


@torch.no_grad()
def matching_errors(predictor: DepthPredictor, seeds, frames: int) -> dict[str, float]:
    model, width, height = predictor.model, predictor.width, predictor.height
    rgb_volume = CostVolume(3, model.config.num_depth_bins, 0.5, CAP)
    errors = {'features, predicted motion': [], 'features, true motion': [],
              'raw images, full resolution, true motion': [],
              'raw images, 1/4 resolution, true motion': []}
    for seed in seeds:
        drive = SyntheticDrive(DriveConfig(width=width, height=height, frames=frames, seed=seed))
        K = torch.from_numpy(drive.camera.K).float()[None]
        previous = drive.render(0)
        for index in range(1, frames):
            current = drive.render(index)
            image, lookup = predictor.to_tensor(current.rgb), predictor.to_tensor(previous.rgb)
            T_predicted = invert_transform(predictor.pose(lookup, image))
            T_true = torch.from_numpy(np.linalg.inv(previous.T_world_cam)
                                      @ current.T_world_cam).float()[None]
            output = model(image, lookup, K, T_predicted)
            depth = disp_to_depth(output.disparities[0], model.config.min_depth,
                                  model.config.max_depth)[0, 0].numpy()
            valid = np.isfinite(current.depth) & (current.depth < CAP)
            ratio = np.median(current.depth[valid]) / np.median(depth[valid])
            T_scaled = T_true.clone()
            T_scaled[:, :3, 3] /= ratio  # the true motion in the network's depth units
            _, quarter = model.encoder(image)
            _, lookup_quarter = model.encoder(lookup)
            K_quarter = scale_intrinsics(K, quarter.shape[-1] / width,
                                         quarter.shape[-2] / height)
            gt_quarter = subsample(current.depth, 4)
            for name, T in (('features, predicted motion', T_predicted),
                            ('features, true motion', T_scaled)):
                _, matching = model.cost_volume(quarter, lookup_quarter, K_quarter, T)
                errors[name].append(median_error(
                    matching.argmin_depth[0, 0].numpy() * ratio, gt_quarter,
                    matching.confidence[0, 0].numpy() > 0.5))
            for name, factor in (('raw images, full resolution, true motion', 1),
                                 ('raw images, 1/4 resolution, true motion', 4)):
                cost, confidence, argmin = rgb_volume._match(
                    F.avg_pool2d(image, factor), F.avg_pool2d(lookup, factor),
                    scale_intrinsics(K, 1 / factor, 1 / factor), T_true)
                errors[name].append(median_error(argmin[0, 0].numpy(),
                                                 subsample(current.depth, factor),
                                                 confidence[0, 0].numpy() > 0.5))
            previous = current
    return {name: float(np.mean(values)) for name, values in errors.items()}


def teacher_of(checkpoint, predictor: DepthPredictor) -> DepthPredictor | None:
    """The training checkpoint's single-frame ResNet18 teacher (exported weights have none)."""
    weights = {key[len('teacher.'):]: value.float()
               for key, value in load_checkpoint(checkpoint)['objective'].items()
               if key.startswith('teacher.')}
    if not weights:
        return None
    teacher = DepthModel(teacher_config(predictor.model.config))
    teacher.load_state_dict(weights)
    return DepthPredictor(teacher, None, (predictor.width, predictor.height), torch.device('cpu'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--frames', type=int, default=30, help='frames per held-out drive')
    args = parser.parse_args()
    predictor = DepthPredictor.from_checkpoint(args.checkpoint, device='cpu')
    if not predictor.multi_frame:
        raise SystemExit(f'{args.checkpoint} is a single-frame model: it has no cost volume')
    print(f'{args.checkpoint}: {predictor.width}x{predictor.height}, hypotheses '
          f'{[round(x, 2) for x in predictor.model.cost_volume.depth_range.tolist()]}, '
          f'held-out drives {HELD_OUT_SEEDS}, {args.frames} frames each')
    print('median relative error of the lowest-cost hypothesis (median-scaled):')
    for name, value in matching_errors(predictor, HELD_OUT_SEEDS, args.frames).items():
        print(f'  {name}: {value:.3f}')
    teacher = teacher_of(args.checkpoint, predictor)
    runs = [('network AbsRel with the previous frame', predictor.predict),
            ('network AbsRel without (single-frame mode)',
             lambda rgb, K, previous, turn: predictor.predict(rgb, K, None))]
    if teacher is not None:
        runs.append(('its single-frame teacher\'s AbsRel', teacher.predict))
    for name, predict in runs:
        result = evaluate_synthetic(predict, HELD_OUT_SEEDS, args.frames, predictor.width,
                                    predictor.height, progress=False)
        print(f'{name}: {result["abs_rel"]:.3f}')


if __name__ == '__main__':
    main()
