"""Flying pixels and cloud time. (1) On the demo's drive, each camera's depth from the shipped
model as the node publishes it at the camera's resolution: the share of cloud points more than
10% off the ground truth at their pixel, among all points and among those next to a depth edge
of the truth (the 5x5 pixels around them span more than 1.25x in depth), and the share of
pixels that keep a point, with the depth taken back to the camera bilinearly everywhere and
nothing dropped (before issue 33), with nearest neighbour across depth edges, and with the edge
filter at several thresholds. (2) The time to build the PointCloud2 fields of a 1280x720 depth
image, and the node's PointCloud2 message from them: in float64 and copied to bytes as before
issue 33, and in float32 with the points passed on as they are (outputs.point_cloud_fields).

    python benchmarks/cloud_quality.py --frames 20

Prints Markdown tables for docs/benchmarks.md.
"""
import argparse
import array
import time

import cv2
import numpy as np
import torch

from hybrid_depth_core.deploy.benchmark import machine
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.messages import outputs
from hybrid_depth_core.runtime import framing
from hybrid_depth_core.runtime.predictor import DepthPredictor

CAMERAS = {'main camera 640x192': (640, 192, 81.5), 'second camera 640x480': (640, 480, 62.0)}
MAX_DEPTH = 80.0


def cloud_float64(depth, K, rgb):
    """point_cloud_fields as it was before issue 33 (float64 arithmetic, structured array)."""
    v = np.arange(depth.shape[0], dtype=np.float64)
    u = np.arange(depth.shape[1], dtype=np.float64)
    z = depth.astype(np.float64)
    colour = rgb.astype(np.uint32)
    points = np.zeros(depth.shape, dtype=outputs.CLOUD_DTYPE)
    points['x'] = (u[None, :] - K[0, 2]) * z / K[0, 0]
    points['y'] = (v[:, None] - K[1, 2]) * z / K[1, 1]
    points['z'] = z
    points['rgb'] = (colour[..., 0] << 16) | (colour[..., 1] << 8) | colour[..., 2]
    return points.tobytes()


def flying_share(checkpoint: str, frames: int) -> list[str]:
    variants = [('bilinear, nothing dropped (before)', float('inf'), 0.0),
                ('nearest across edges, nothing dropped', framing.EDGE_JUMP, 0.0)]
    variants += [(f'nearest across edges, edge_filter {t:g}', framing.EDGE_JUMP, t)
                 for t in (0.05, 0.1, 0.2)]
    rows = []
    for name, (width, height, fov) in CAMERAS.items():
        drive = SyntheticDrive(DriveConfig(width=width, height=height, hfov_deg=fov,
                                           frames=frames, seed=0))
        shots = list(drive)
        for label, jump, edge_filter in variants:
            framing.EDGE_JUMP = jump
            predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu',
                                                       edge_filter=edge_filter)
            off = kept = valid = edge_off = edge_kept = 0
            for frame in shots:
                depth = predictor.stream(frame.rgb, drive.camera.K)
                depth = outputs.mask_depth(depth, 0.1, MAX_DEPTH)
                truth = frame.depth
                scored = np.isfinite(truth) & (truth < MAX_DEPTH)
                point = scored & np.isfinite(depth)
                wrong = np.zeros_like(point)
                wrong[point] = np.abs(depth[point] - truth[point]) > 0.1 * truth[point]
                filled = np.nan_to_num(truth, nan=1000.0).astype(np.float32)
                window = np.ones((5, 5), np.uint8)
                edge = cv2.dilate(filled, window) > 1.25 * cv2.erode(filled, window)
                valid += scored.sum()
                kept += point.sum()
                off += wrong.sum()
                edge_kept += (point & edge).sum()
                edge_off += (wrong & edge).sum()
            rows.append(f'| {name} | {label} | {100 * off / kept:.1f}% | '
                        f'{100 * edge_off / edge_kept:.1f}% | {100 * kept / valid:.1f}% |')
    framing.EDGE_JUMP = variants[1][1]
    return rows


def cloud_time(repeats: int) -> list[str]:
    from hybrid_depth_ros.node import _cloud  # the node's message, from the fields

    from sensor_msgs.msg import PointCloud2, PointField

    def message_before(fields):
        return PointCloud2(**{**fields, 'fields': [PointField(**f) for f in fields['fields']],
                              'data': array.array('B', fields['data'])})
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 50, (720, 1280)).astype(np.float32)
    rgb = rng.integers(0, 256, (720, 1280, 3), np.uint8)
    K = np.array([[900.0, 0, 640.3], [0, 900.0, 360.2], [0, 0, 1]])

    def before():
        fields = outputs.point_cloud_fields(depth, K, rgb, None)
        return {**fields, 'data': cloud_float64(depth, K, rgb)}
    variants = {'float64, copied to bytes (before)': (before, message_before),
                'float32, passed on': (lambda: outputs.point_cloud_fields(depth, K, rgb, None),
                                       _cloud)}
    times = {name: ([], []) for name in variants}
    for _ in range(repeats):  # alternating, so both see the same machine state
        for name, (build, message) in variants.items():
            start = time.perf_counter()
            fields = build()
            built = time.perf_counter()
            message(fields)
            times[name][0].append(1000 * (built - start))
            times[name][1].append(1000 * (time.perf_counter() - built))
    return [f'| {name} | {np.median(fields):.1f} | {np.percentile(fields, 90):.1f} | '
            f'{np.median(message):.1f} |' for name, (fields, message) in times.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', default='models/hybrid_synthetic.pt')
    parser.add_argument('--frames', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=30)
    args = parser.parse_args()
    print(machine(torch.device("cpu")))
    print('| camera | depth back to the camera | points > 10% off the truth | of those next to '
          'a depth edge | pixels with a point |')
    print('|---|---|---|---|---|')
    for row in flying_share(args.checkpoint, args.frames):
        print(row, flush=True)
    print('\n| 1280x720 cloud | fields, median ms | p90 ms | then the PointCloud2 message, '
          'median ms |')
    print('|---|---|---|---|')
    for row in cloud_time(args.repeats):
        print(row)


if __name__ == '__main__':
    main()
