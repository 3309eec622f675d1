"""What the keyframe choice adds to a streamed multi-frame step: tracking corners into each new
frame (keyframes.Keyframes.choose: Lucas-Kanade on the 160-pixel grey copy, the parallax of
every held frame) and measuring the turn from the chosen keyframe (Keyframes.turn), per frame
of a 640x480 handheld room walk at 30 Hz.

    python benchmarks/keyframe_tracking.py [--frames 200]

The networks' time is `hybrid-depth bench`'s; this is the CPU time around them.
"""
import argparse
import time

import numpy as np

from hybrid_depth_core.synthetic import RoomWalk, RoomWalkConfig
from hybrid_depth_core.runtime.keyframes import Keyframes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=200)
    parser.add_argument('--seed', type=int, default=1001)
    args = parser.parse_args()
    walk = RoomWalk(RoomWalkConfig(frames=args.frames, seed=args.seed))
    frames = [walk.render(i).rgb for i in range(len(walk))]
    keyframes = Keyframes()
    choose, turn, ages = [], [], []
    for rgb in frames:
        started = time.process_time()
        age, _ = keyframes.choose(rgb)
        chosen = time.process_time()
        if age is not None:
            keyframes.turn(age, walk.camera.K)
            turn.append(1000 * (time.process_time() - chosen))
        choose.append(1000 * (chosen - started))
        ages.append(age)
        keyframes.keep(rgb)
    held = choose[keyframes.history:]  # once the history is full
    print(f'{args.frames} frames of 640x480, room seed {args.seed}: keyframe for '
          f'{sum(a is not None for a in ages)}, median age '
          f'{np.median([a for a in ages if a is not None]):.0f}')
    print(f'choose (track, parallax of {keyframes.history} held frames): median '
          f'{np.median(held):.1f} ms, 90th percentile {np.percentile(held, 90):.1f} ms CPU')
    print(f'turn from the keyframe: median {np.median(turn):.2f} ms CPU')


if __name__ == '__main__':
    main()
