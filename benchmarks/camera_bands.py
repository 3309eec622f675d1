"""Where in the image a camera's depth goes wrong: one checkpoint on the same synthetic drive
seen by two cameras (the street's 640x192, 81.5 degrees wide; a 4:3 640x480, 62 degrees), and on
central bands of the 4:3 view as tall as the training view and 1.6 times that, each framed at
the training focal length as the node does.

    python benchmarks/camera_bands.py --checkpoint models/hybrid_synthetic.pt [--frames 15]

Per view: AbsRel median-scaled per image and unscaled (80 m cap), the median scale ratio, and
the median-scaled AbsRel of each quarter of the rows, top to bottom (each image's own ratio).
Frames are streamed (keyframes, as the node matches them); the first two are not scored.
Prints a Markdown table for docs/benchmarks.md.
"""
import argparse
import sys

import numpy as np

from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.evaluation.metrics import Accumulator, Protocol
from hybrid_depth_core.runtime.predictor import DepthPredictor

PROTOCOL = Protocol(max_depth=80.0)


def score(predictor: DepthPredictor, drive: SyntheticDrive, frames: int, rows: int | None):
    """The network input size, and the whole view's and each quarter's scores over the drive's
    frames, of a central band `rows` tall (None: the whole image)."""
    predictor.reset()
    whole, quarters = Accumulator(PROTOCOL), [Accumulator(PROTOCOL) for _ in range(4)]
    for index in range(frames):
        frame, K = drive.render(index), drive.camera.K.copy()
        rgb, gt = frame.rgb, frame.depth
        if rows is not None:
            top = (gt.shape[0] - rows) // 2
            rgb, gt = np.ascontiguousarray(rgb[top:top + rows]), gt[top:top + rows]
            K[1, 2] -= top
        predicted = predictor.stream(rgb, K)
        if index == 0:  # every frame of the view is framed alike
            size = predictor.framing(rgb.shape[1], rgb.shape[0], K).size
        if index < 2 or not whole.add(predicted, gt):
            continue
        ratio, height = whole.ratios[-1], gt.shape[0]
        for quarter, accumulator in enumerate(quarters):  # each at the whole image's ratio
            band = slice(quarter * height // 4, (quarter + 1) * height // 4)
            accumulator.add(predicted[band] * ratio, gt[band])
    by_quarter = [q.summary()['unscaled']['abs_rel'] if q.per_image else np.nan for q in quarters]
    return size, whole.summary(), by_quarter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--frames', type=int, default=15)
    parser.add_argument('--seed', type=int, default=0, help='the drive (0: the demo\'s)')
    args = parser.parse_args()
    predictor = DepthPredictor.from_checkpoint(args.checkpoint, device='cpu', warn=lambda _: None)
    if predictor.focal is None:
        sys.exit(f'{args.checkpoint} records no training camera (written before issue 21): '
                 f'its framing is not by focal length')
    street = SyntheticDrive(DriveConfig(seed=args.seed, frames=args.frames))
    four_three = SyntheticDrive(DriveConfig(width=640, height=480, hfov_deg=62.0,
                                            seed=args.seed, frames=args.frames))
    # the 4:3 rows that frame to as many network rows as the training input has
    rows = round(predictor.height * four_three.camera.fy / predictor.focal[1])
    views = [('640x192, 81.5 deg (main)', street, None), ('640x480, 62 deg', four_three, None)]
    views += [(f'its central {band} rows', four_three, band)
              for band in (rows, round(1.6 * rows)) if band < four_three.camera.height]
    print('| view | network input | AbsRel median-scaled | AbsRel unscaled | scale ratio | '
          'median-scaled AbsRel by quarter of the rows, top to bottom |')
    print('|---|---|---|---|---|---|')
    for name, drive, band in views:
        size, summary, quarters = score(predictor, drive, args.frames, band)
        print(f'| {name} | {size[0]}x{size[1]} | {summary["median_scaled"]["abs_rel"]:.3f} | '
              f'{summary["unscaled"]["abs_rel"]:.3f} | {summary["scale_median"]:.3f} | '
              + ', '.join(f'{q:.3f}' for q in quarters) + ' |')


if __name__ == '__main__':
    main()
