"""Pictures of what a checkpoint does on a real recording, for docs/benchmarks.md: for a few
images of a span, the image with the depth hints there as training finds them on frames
HINTS_WIDTH wide (with the bag's motion: the tracked and dense metric hints, dots coloured by
their depth in metres; without: the up-to-scale ones, scaled to the reference's median), the
prediction (as the node runs it: keyframes, metres as predicted), and the ground truth (the
bag's depth topic) or, for a street without depth, the flat road at the camera's height where
the road check looks.

    python benchmarks/recording_pictures.py --checkpoint RUN/last.pt \
        --bag ../shared/data/tum_fr1_rpy --span 0.67: --out docs/tum_fr1_rpy.png
    python benchmarks/recording_pictures.py --checkpoint RUN/last.pt \
        --bag ../shared/data/kitti_07_excerpt --span 0.75: --road-camera-height 1.65 \
        --out docs/kitti_07.png
"""
import argparse
from pathlib import Path

import cv2
import numpy as np

from hybrid_depth_core.datasets.bag_dataset import (HINTS_WIDTH, HINTS_WINDOW, BagSource,
                                                    Recording, load_hints, load_motion)
from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.recordings.bag_motion import MotionOptions
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.recordings.time_span import TimeSpan
from hybrid_depth_core.evaluation.road import flat_road_depth, road_region
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.depth import depth_to_metres
from hybrid_depth_core.messages.header import nearest_index, stamp_ns
from hybrid_depth_core.messages.outputs import colorize
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.tracks.hints import Hints, resized_pixels
from hybrid_depth_core.evaluation.visualize import labelled, write_png

PICTURES = 3
PANEL_WIDTH = 360


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', type=Path, required=True)
    parser.add_argument('--bag', type=Path, required=True)
    parser.add_argument('--span', default='')
    parser.add_argument('--road-camera-height', type=float)
    parser.add_argument('--out', type=Path, required=True)
    args = parser.parse_args()
    predictor = DepthPredictor.from_checkpoint(args.checkpoint, device='cpu')
    frames, depths, cameras, truths, stamps_of = [], [], [], [], []
    with Bag(args.bag) as bag:
        infos = bag.camera_infos()
        stamps = bag.image_stamps()
        chosen = TimeSpan(args.span).mask(stamps)
        in_span = stamps[chosen]
        picked = set(in_span[np.linspace(HINTS_WINDOW, len(in_span) - 1, PICTURES)
                             .astype(int)].tolist())
        in_span = set(in_span.tolist())
        truth_topic = None if args.road_camera_height else next(iter(bag.depth_topics()))
        truth = ({stamp_ns(m.message, m.time_ns): m.message for m in bag.messages([truth_topic])}
                 if truth_topic else {})
        truth_stamps = np.array(sorted(truth), np.int64)
        for item in bag.messages([bag.image_topic]):
            stamp = stamp_ns(item.message, item.time_ns)
            if stamp not in in_span:
                continue
            rgb = bag.decode(item, None)
            camera, maps = camera_from_info(infos.nearest(stamp), rgb.shape[1], rgb.shape[0])
            rgb = maps(rgb) if maps else rgb
            depth = predictor.stream(rgb, camera.K)
            frames.append(rgb)
            cameras.append(camera)
            stamps_of.append(stamp)
            depths.append(depth if stamp in picked else None)
            if stamp in picked and truth_topic:
                message = truth[truth_stamps[nearest_index(truth_stamps, stamp)]]
                raw = depth_to_metres(message)
                truths.append(maps(raw, nearest=True) if maps else raw)
    hints = training_hints(args.bag, frames, cameras, stamps_of)
    spread = frames[0].shape[1] / hints.size[0]  # hint pixels -> image pixels
    rows = []
    for index, depth in enumerate(depths):
        if depth is None:
            continue
        camera = cameras[index]
        if truths:
            reference = truths.pop(0)
            label = 'Kinect depth'
        else:
            reference = np.where(road_region(camera), flat_road_depth(camera,
                                                                      args.road_camera_height),
                                 np.nan)
            label = f'flat road, camera {args.road_camera_height} m up'
        known = reference[np.isfinite(reference) & (reference > 0)]
        low, high = np.percentile(known, 2) * 0.8, np.percentile(known, 98) * 1.25
        image = frames[index].copy()
        found = hints.depths[index]
        if len(found):
            scaled = found if hints.metric else found * np.median(known) / np.median(found)
            colours = colorize(scaled[None], low, high)[0]
            for (u, v), colour in zip(resized_pixels(hints.pixels[index], spread), colours):
                cv2.circle(image, (int(round(u)), int(round(v))), 2,
                           tuple(int(c) for c in colour), -1)
        size = (PANEL_WIDTH, round(PANEL_WIDTH * image.shape[0] / image.shape[1]))

        def fit(picture):
            return cv2.resize(picture, size, interpolation=cv2.INTER_NEAREST)
        rows.append(np.hstack([
            labelled(fit(image), f'{len(found)} hints '
                                 f'({"metres" if hints.metric else "up to scale"})'),
            labelled(fit(colorize(depth, low, high)), f'prediction, {low:.1f}-{high:.1f} m'),
            labelled(fit(colorize(reference, low, high)), label)]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_png(args.out, np.vstack(rows))
    print(f'wrote {args.out}')


def training_hints(bag_path: Path, frames: list, cameras: list, stamps: list) -> Hints:
    """The hints training finds on these frames (bag_dataset.load_hints): on them resized to
    HINTS_WIDTH, metric (with the dense ones where they agree) where the
    bag has the camera's motion."""
    height = round(HINTS_WIDTH * frames[0].shape[0] / frames[0].shape[1])
    scale = (HINTS_WIDTH / frames[0].shape[1], height / frames[0].shape[0])
    small = Recording(np.stack([cv2.resize(f, (HINTS_WIDTH, height), interpolation=cv2.INTER_AREA)
                                for f in frames]), np.array(stamps, np.int64),
                      scale_intrinsics(np.stack([c.K for c in cameras]), *scale))
    source = BagSource(bag_path, motion=MotionOptions())
    motion, _ = load_motion(source, small.stamps_ns)
    return load_hints(source, small, None, motion, progress=False)


if __name__ == '__main__':
    main()
