"""How well can the camera's motion between two frames of a handheld walk be measured from
tracked corners, and is that good enough for view synthesis to learn depth from?

    python benchmarks/turn_prior.py [--seed 1] [--stride 10]

On a synthetic room walk (`hybrid-depth sample --scene room`'s camera, at the 128x96 that a
no-config CPU run trains at), for frame pairs `stride` apart tracked as training tracks them
(tracks/image_motion.py):
1. the rotation error against the true one of three estimators: the robust Kabsch fit that
   training uses (image_motion.turn), the rotation of a least-squares homography, and the essential
   matrix's (RANSAC + recoverPose); and of no estimate at all;
2. the training loss (auto-masked photometric error over frames t-s and t+s) of the true depth
   and of a constant depth (the median of the true one), warped with the true motion, with the
   measured turn and the true translation, and with the essential matrix's rotation and
   direction scaled to the true length. Where the true depth's loss is not clearly below the
   constant depth's, the photometric objective cannot teach depth with that motion.
"""
import argparse

import cv2
import numpy as np
import torch

from hybrid_depth_core.training import losses
from hybrid_depth_core.tracks.image_motion import MotionTracker, motion_intrinsics, turn
from hybrid_depth_core.synthetic import RoomWalk, RoomWalkConfig
from hybrid_depth_core.geometry import scale_intrinsics, warp

WIDTH, HEIGHT = 128, 96  # the no-config CPU input for a 4:3 camera (training/defaults.py)


def degrees(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))


def transform(R: np.ndarray, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, np.ravel(t)
    return T


def estimates(frames, K: np.ndarray, stride: int) -> dict:
    """Per frame index i >= stride: the estimators' T_later_earlier (frame i - stride -> i;
    translation unit length or zero) and the parallax."""
    tracker, K_motion, found = MotionTracker(stride), motion_intrinsics(K, WIDTH), {}
    for index, frame in enumerate(frames):
        tracker.push(frame)
        earlier, later = tracker.matches(stride)
        if index < stride or len(earlier) < 8:
            continue
        homography, _ = cv2.findHomography(earlier, later, 0)
        U, _, Vt = np.linalg.svd(np.linalg.inv(K_motion) @ homography @ K_motion)
        R_homography = U @ np.diag([1, 1, np.sign(np.linalg.det(U @ Vt))]) @ Vt
        essential = None
        E, inliers = cv2.findEssentialMat(earlier, later, K_motion, cv2.RANSAC, 0.999, 0.5)
        if E is not None and E.shape == (3, 3):
            _, R, t, _ = cv2.recoverPose(E, earlier, later, K_motion, mask=inliers)
            essential = transform(R, t)
        found[index] = {'turn': transform(turn(earlier, later, K_motion), 0),
                        'homography': transform(R_homography, 0), 'essential': essential,
                        'none': np.eye(4), 'parallax': tracker.motion(stride)}
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--stride', type=int, default=10)
    parser.add_argument('--every', type=int, default=6, help='score every n-th frame')
    args = parser.parse_args()
    walk = RoomWalk(RoomWalkConfig(frames=400, seed=args.seed))
    rendered = [walk.render(i) for i in range(len(walk))]
    rgb = [cv2.resize(f.rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA) for f in rendered]
    K = scale_intrinsics(walk.camera.K, WIDTH / walk.camera.width, HEIGHT / walk.camera.height)
    s = args.stride
    found = estimates(rgb, K, s)

    def true_motion(later: int) -> np.ndarray:  # T_later_earlier
        return np.linalg.inv(rendered[later].T_world_cam) @ rendered[later - s].T_world_cam

    errors = {name: [] for name in ('turn', 'homography', 'essential', 'none')}
    for later, estimate in found.items():
        R = true_motion(later)[:3, :3]
        for name in errors:
            value = estimate[name]
            errors[name].append(np.nan if value is None else degrees(value[:3, :3].T @ R))
    print(f'room seed {args.seed}, {WIDTH}x{HEIGHT}, stride {s}: {len(found)} pairs, median '
          f'parallax {100 * np.nanmedian([e["parallax"] for e in found.values()]):.2f}% of the '
          f'width')
    print('| rotation estimate | error, median | 90th percentile | 99th percentile |')
    print('|---|---|---|---|')
    for name, values in errors.items():
        p50, p90, p99 = np.nanpercentile(values, [50, 90, 99])
        print(f'| {name} | {p50:.2f} deg | {p90:.2f} deg | {p99:.2f} deg |')

    def motions(later: int, kind: str) -> np.ndarray:
        truth = true_motion(later)
        estimate = found[later]
        if kind == 'true':
            return truth
        if kind == 'turn + true translation':
            return transform(estimate['turn'][:3, :3], truth[:3, 3])
        essential = estimate['essential']
        if essential is None:
            return transform(estimate['turn'][:3, :3], 0)
        return transform(essential[:3, :3], essential[:3, 3] * np.linalg.norm(truth[:3, 3]))

    K_t = torch.from_numpy(K).float()[None]
    inv_K = torch.linalg.inv(K_t)

    def tensor(image):
        return torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    kinds = ('true', 'turn + true translation', 'essential, true length')
    loss = {(kind, depth): [] for kind in kinds for depth in ('true', 'constant')}
    for t in range(s, len(rendered) - s, args.every):
        if t not in found or t + s not in found:
            continue
        target, sources = tensor(rgb[t]), [tensor(rgb[t - s]), tensor(rgb[t + s])]
        depth = cv2.resize(rendered[t].depth, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
        depths = {'true': torch.from_numpy(depth)[None, None],
                  'constant': torch.full((1, 1, HEIGHT, WIDTH), float(np.median(depth)))}
        identity = losses.identity_error(sources, target)
        for kind in kinds:
            # T_source_target: the pair (t-s, t) inverted, the pair (t, t+s) as it is
            poses = [np.linalg.inv(motions(t, kind)), motions(t + s, kind)]
            poses = [torch.from_numpy(T).float()[None] for T in poses]
            for name, d in depths.items():
                warped = [warp(source, d, T, K_t, inv_K) for source, T in zip(sources, poses)]
                error = losses.reprojection_loss(warped, target)
                loss[(kind, name)].append(
                    losses.masked_mean(error, losses.automask(error, identity)).item())
    print('\n| motion | loss, true depth | loss, constant depth |')
    print('|---|---|---|')
    for kind in kinds:
        print(f'| {kind} | {np.mean(loss[(kind, "true")]):.4f} | '
              f'{np.mean(loss[(kind, "constant")]):.4f} |')


if __name__ == '__main__':
    main()
