"""What pairing an image with its camera_info costs the node's inference thread per frame
(frame_handoff.CalibrationStore.get, what the node calls before each frame), for the ways
cameras publish their calibration: latched once, at 1 Hz, with every image (before it), and with
every image but sent a few ms after it (image_transport's CameraPublisher order, where waiting
for it is the point).

    python benchmarks/calibration_pairing.py --frames 300
"""
import argparse
import threading
import time

import numpy as np

from hybrid_depth_core.runtime.frame_handoff import CalibrationStore

PERIOD_NS = 33_333_333  # 30 Hz images


def run(pattern: str, frames: int, late_s: float = 0.005) -> np.ndarray:
    """Seconds per get() over `frames` images published at 30 Hz in real time."""
    store, costs = CalibrationStore(), []
    if pattern == 'latched':
        store.put(0, 'latched')
    for frame in range(frames):
        stamp = frame * PERIOD_NS
        if pattern == '1 Hz' and frame % 30 == 0:
            store.put(stamp, frame)
        elif pattern == 'with each image':
            store.put(stamp, frame)
        elif pattern == 'after each image':
            threading.Timer(late_s, store.put, (stamp, frame)).start()
        started = time.perf_counter()
        store.get(stamp)
        costs.append(time.perf_counter() - started)
        time.sleep(max(0.0, PERIOD_NS / 1e9 - costs[-1]))
    return np.array(costs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=300)
    args = parser.parse_args()
    print('| camera_info | frames | mean ms per frame | max ms |')
    print('|---|---|---|---|')
    for pattern in ('latched', '1 Hz', 'with each image', 'after each image'):
        costs = 1000 * run(pattern, args.frames)
        print(f'| {pattern} | {args.frames} | {costs.mean():.3f} | {costs.max():.2f} |')


if __name__ == '__main__':
    main()
