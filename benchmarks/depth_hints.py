"""Depth hints from a recording's own geometry (tracks/hints.py) on a real bag: from its images
alone (training's up-to-scale hints), tracked with its measured motion at the image stamps,
and training's metric hints (datasets/bag_dataset.load_hints: tracked and dense, by the matcher
tracks/dense_hints.py chooses for the motion; with optical flow on the frames unrolled to the
camera's timing against its motion, tracks/shutter.py, judged where they are on the recorded
frames). For
each: how many per image, their triangulation angle, how many images get none, and, where the
bag has a depth topic, how far the hints are from it (not used for the hints: only to judge
them).

    python benchmarks/depth_hints.py --bag ../shared/data/tum_fr1_rpy --span :0.67 \
        --width 320 --height 240 --window 10
    python benchmarks/depth_hints.py --bag ../shared/data/tum_fr1_rpy --rotation-check 480

--rendered room|drive instead judges the dense hints alone, of each matcher (plane sweep and
optical flow), on a rendered room (seed 1, frames 20-63, 320x240) or drive (seed 3, 30 frames,
320x96) with their exact motion against the rendered depth, and their agreement with the
tracked hints (as training checks it).

--rotation-check N instead compares, over the first N frames, the rotation the images show
between frames 3 apart (image_motion.pair_turns) with the measured motion's, with the motion's
stamps shifted by -60 to +60 ms: the median angle between the two per shift.
"""
import argparse
import time
from pathlib import Path

import numpy as np

from hybrid_depth_core.datasets.bag_dataset import (BagSource, Recording, load_hints,
                                                    load_motion, load_recording)
from hybrid_depth_core.recordings.bag_motion import MotionOptions, read_camera_motion
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.tracks.image_motion import pair_turns
from hybrid_depth_core.recordings.time_span import TimeSpan
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.depth import depth_to_metres
from hybrid_depth_core.messages.header import nearest_index, stamp_ns
from hybrid_depth_core.tracks.hints import recording_hints, resized_pixels
from hybrid_depth_core.tracks import flow_stereo, sweep_stereo
from hybrid_depth_core.tracks.dense_hints import agreement, matcher_for


def rotation_check(bag_path: Path, recording, frames: int, stride: int = 3) -> None:
    rgb, K, stamps = (recording.rgb[:frames], recording.K[:frames],
                      recording.stamps_ns[:frames])
    turns = pair_turns(list(rgb), K, stride)  # the rotation of T_later_earlier
    print('| /tf shifted by (ms) | median angle between image and measured rotation (deg) |')
    print('|---|---|')
    with Bag(bag_path) as bag:
        for shift_ms in range(-60, 61, 10):
            motion, _ = read_camera_motion(bag, stamps + shift_ms * 1_000_000, MotionOptions())
            angles = []
            for i in range(stride, len(stamps)):
                earlier, later = motion.poses[i - stride], motion.poses[i]
                if not (np.isfinite(earlier).all() and np.isfinite(later).all()):
                    continue
                difference = (np.linalg.inv(later) @ earlier)[:3, :3].T @ turns[i]
                angles.append(np.degrees(np.arccos(np.clip((np.trace(difference) - 1) / 2,
                                                           -1, 1))))
            print(f'| {shift_ms:+d} | {np.median(angles):.2f} |', flush=True)


def rendered(scene: str) -> None:
    from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
    from hybrid_depth_core.synthetic.room import RoomWalk, RoomWalkConfig
    if scene == 'room':
        sequence, chosen = RoomWalk(RoomWalkConfig(width=320, height=240, frames=70,
                                                   seed=1)), range(20, 64)
    else:
        sequence, chosen = SyntheticDrive(DriveConfig(width=320, height=96, frames=30,
                                                      seed=3)), range(30)
    frames = [sequence.render(index) for index in chosen]
    rgb, poses = np.stack([f.rgb for f in frames]), np.stack([f.T_world_cam for f in frames])
    K = np.repeat(sequence.camera.K[None], len(frames), 0)
    tracked = recording_hints(rgb, K, poses, 10)
    print(f'rendered {scene}, {len(frames)} frames: tracked {tracked.report()}; training '
          f'would match by {matcher_for(poses, K[0], rgb.shape[2:0:-1]).__name__}')
    for matcher in (sweep_stereo, flow_stereo):
        started = time.perf_counter()
        dense = matcher.dense_hints(rgb, K, poses,
                                    float(np.median(np.concatenate(tracked.depths))))
        seconds = (time.perf_counter() - started) / len(frames)
        scale = rgb.shape[2] / dense.size[0]
        errors = []
        for frame, pixels, depths in zip(frames, dense.pixels, dense.depths):
            u, v = np.round(resized_pixels(pixels, scale)).astype(int).T
            truth = frame.depth[v, u]
            errors.append(np.abs(depths / truth - 1)[np.isfinite(truth)])
        errors = np.concatenate(errors)
        ratio, shared = agreement(tracked, dense)
        print(f'dense, {matcher.__name__}: {dense.report()} (of {dense.size[0]}x'
              f'{dense.size[1]} pixels); against the rendered depth: median '
              f'{np.median(errors):.3f}, p90 {np.percentile(errors, 90):.3f}; {shared} pixels '
              f'shared with the tracked ones, ratio {ratio:.3f}; {seconds:.2f} s per frame')


def judge(hints, stamps, truth, info, width) -> str:
    """Hints against the depth camera at the nearest depth stamp within 16 ms: as they are and
    with each image's hints scaled by their median ratio to the truth (what a loss that takes
    them up to scale per image sees)."""
    depth_stamps = np.array(sorted(truth))
    ratios, per_image = [], []
    for index, stamp in enumerate(stamps):
        nearest = depth_stamps[nearest_index(depth_stamps, stamp)]
        if abs(nearest - stamp) > 16_000_000 or not len(hints.depths[index]):
            continue
        raw = depth_to_metres(truth[nearest])
        _, maps = camera_from_info(info, raw.shape[1], raw.shape[0])
        gt = maps(raw, nearest=True) if maps else raw
        scale = raw.shape[1] / width
        mine = []
        at = np.round(resized_pixels(hints.pixels[index], scale)).astype(int)
        for (x, y), z in zip(at, hints.depths[index]):
            if 0 <= x < gt.shape[1] and 0 <= y < gt.shape[0] and gt[y, x] > 0:
                mine.append(z / gt[y, x])
        ratios += mine
        if mine:
            per_image += list(np.abs(np.array(mine) / np.median(mine) - 1))
    ratios = np.array(ratios)
    return (f'against the depth camera: {len(ratios)} hints; hint / truth median '
            f'{np.median(ratios):.3f}, relative error median {np.median(np.abs(ratios - 1)):.3f}; '
            f'scaled per image: median {np.median(per_image):.3f}, p90 '
            f'{np.percentile(per_image, 90):.3f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bag', type=Path)
    parser.add_argument('--rendered', choices=('room', 'drive'))
    parser.add_argument('--span', default='')
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--window', type=int, default=10)
    parser.add_argument('--rotation-check', type=int, metavar='N')
    args = parser.parse_args()
    if args.rendered:
        return rendered(args.rendered)
    if args.bag is None:
        parser.error('--bag or --rendered is needed')
    source = BagSource(args.bag, motion=MotionOptions(), span=TimeSpan(args.span))
    recording = load_recording(source, args.width, args.height, None, progress=False)
    if args.rotation_check:
        return rotation_check(args.bag, recording, args.rotation_check)
    chosen = source.span.mask(recording.stamps_ns)
    frames = Recording(recording.rgb[chosen], recording.stamps_ns[chosen], recording.K[chosen])
    motion, report = load_motion(source, frames.stamps_ns)
    truth = {}
    with Bag(args.bag) as bag:
        depth_topics = bag.depth_topics()
        if depth_topics:
            topic = next(iter(depth_topics))
            for item in bag.messages([topic]):
                truth[stamp_ns(item.message, item.time_ns)] = item.message
            info = bag.camera_infos().nearest(int(frames.stamps_ns[0]))
    print(f'{args.bag} {args.span or "(whole)"}: {len(frames.stamps_ns)} frames at '
          f'{args.width}x{args.height}, windows of {args.window}; {report}')
    ways = {'from the images alone (training\'s up-to-scale hints)': None}
    if motion is not None:
        ways['tracked with the measured motion at the image stamps'] = motion.poses
    for name, poses in ways.items():
        hints = recording_hints(frames.rgb, frames.K, poses, args.window)
        print(f'{name}: {hints.report()}')
        if truth:
            print('  ' + judge(hints, frames.stamps_ns, truth, info, args.width))
    if motion is not None:
        started = time.perf_counter()
        hints = load_hints(source, frames, None, motion, progress=False)
        seconds = (time.perf_counter() - started) / len(frames.stamps_ns)
        print(f'training\'s metric hints (tracked and dense): '
              f'{hints.report()}; {seconds:.2f} s per frame')
        if truth:
            print('  ' + judge(hints, frames.stamps_ns, truth, info, args.width))


if __name__ == '__main__':
    main()
