"""Depth hints from a recording's own geometry (tracks/hints.py) on a real bag, with its
measured motion: how many per image, their triangulation angle, how many images get none, and,
where the bag has a depth topic, how far the hints are from it (not used for the hints: only
to judge them).

    python benchmarks/depth_hints.py --bag ../shared/data/tum_fr1_rpy --span :0.67 \
        --width 320 --height 240 --window 10
    python benchmarks/depth_hints.py --bag ../shared/data/tum_fr1_rpy --rotation-check 480

--rotation-check N instead compares, over the first N frames, the rotation the images show
between frames 3 apart (image_motion.pair_turns) with the measured motion's, with the motion's
stamps shifted by -60 to +60 ms: the median angle between the two per shift.
"""
import argparse
from pathlib import Path

import numpy as np

from hybrid_depth_core.data.bag_dataset import BagSource, load_recording
from hybrid_depth_core.data.bag_motion import MotionOptions, read_camera_motion
from hybrid_depth_core.data.bag_reader import Bag
from hybrid_depth_core.data.image_motion import pair_turns
from hybrid_depth_core.data.time_span import TimeSpan
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.depth import depth_to_metres
from hybrid_depth_core.messages.header import stamp_ns
from hybrid_depth_core.tracks.hints import recording_hints


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bag', type=Path, required=True)
    parser.add_argument('--span', default='')
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--window', type=int, default=10)
    parser.add_argument('--rotation-check', type=int, metavar='N')
    args = parser.parse_args()
    source = BagSource(args.bag)
    recording = load_recording(source, args.width, args.height, None, progress=False)
    if args.rotation_check:
        return rotation_check(args.bag, recording, args.rotation_check)
    chosen = TimeSpan(args.span).mask(recording.stamps_ns)
    rgb, K, stamps = recording.rgb[chosen], recording.K[chosen], recording.stamps_ns[chosen]
    with Bag(args.bag) as bag:
        motion, report = read_camera_motion(bag, stamps, MotionOptions())
        truth = {}
        depth_topics = bag.depth_topics()
        if depth_topics:
            topic = next(iter(depth_topics))
            for item in bag.messages([topic]):
                truth[stamp_ns(item.message, item.time_ns)] = item.message
            info = bag.camera_infos().nearest(int(stamps[0]))
    print(f'{args.bag} {args.span or "(whole)"}: {len(stamps)} frames at {args.width}x'
          f'{args.height}; {report}')
    hints = recording_hints(rgb, K, motion.poses, args.window)
    print(hints.report())
    if truth:  # hints against the depth camera, at the nearest depth stamp within 16 ms
        depth_stamps = np.array(sorted(truth))
        errors = []
        for index, stamp in enumerate(stamps):
            nearest = depth_stamps[np.argmin(np.abs(depth_stamps - stamp))]
            if abs(nearest - stamp) > 16_000_000 or not len(hints.depths[index]):
                continue
            raw = depth_to_metres(truth[nearest])
            _, maps = camera_from_info(info, raw.shape[1], raw.shape[0])
            gt = maps(raw, nearest=True) if maps else raw
            scale = raw.shape[1] / args.width
            for (u, v), z in zip(hints.pixels[index], hints.depths[index]):
                x, y = int(round((u + 0.5) * scale - 0.5)), int(round((v + 0.5) * scale - 0.5))
                if 0 <= x < gt.shape[1] and 0 <= y < gt.shape[0] and np.isfinite(gt[y, x]):
                    errors.append(abs(z - gt[y, x]) / gt[y, x])
        errors = np.array(errors)
        print(f'against the depth camera: {len(errors)} hints, relative error median '
              f'{np.median(errors):.3f}, p90 {np.percentile(errors, 90):.3f}')


if __name__ == '__main__':
    main()
