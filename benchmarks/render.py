"""Synthetic-drive rendering speed: per-frame time at a given size, over several seeds.

    python benchmarks/render.py [--width 640 --height 192 --frames 30 --seeds 0 1 2]

Prints a Markdown table and the machine it ran on, for docs/benchmarks.md.
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np

from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.deploy.benchmark import cpu_name


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=192)
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    args = parser.parse_args()

    print(f'machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}, '
          f'NumPy {np.__version__}')
    print('\n| seed | frames | median ms/frame | p90 ms/frame | boxes | poles |')
    print('|---|---|---|---|---|---|')
    medians = []
    for seed in args.seeds:
        drive = SyntheticDrive(DriveConfig(width=args.width, height=args.height,
                                           frames=args.frames, seed=seed))
        drive.render(0)  # warm-up: first-touch allocations
        times = []
        for i in range(len(drive)):
            start = time.perf_counter()
            drive.render(i)
            times.append(1000 * (time.perf_counter() - start))
        medians.append(statistics.median(times))
        print(f'| {seed} | {len(times)} | {medians[-1]:.0f} | {np.percentile(times, 90):.0f} | '
              f'{len(drive.scene.boxes.lo)} | {len(drive.scene.poles.radius)} |')
    print(f'\n{args.width}x{args.height}: median over seeds {statistics.median(medians):.0f} '
          f'ms/frame')


if __name__ == '__main__':
    main()
