"""The most any depth hint could give: `hybrid-depth train` with a recording's own depth topic
(a depth camera's, or a rendered bag's ground truth) as its metric hints, every other pixel of
each training frame that has a depth image within 16 ms (paired as `evaluate` pairs them),
instead of the hints tracking and stereo find; with --at-hint-pixels, only at the pixels where
those found one (their coverage, the depth topic's values). A diagnostic for
docs/benchmarks.md ("A faster learner"): it tells whether a score is held back by the hints
(their coverage or their values) or by the learner. Training itself never reads a depth topic.

    python benchmarks/hint_ceiling.py [--at-hint-pixels] \\
        /camera/depth_registered/image_raw/compressedDepth \\
        train --bag ../shared/data/tum_fr1_rpy --span :0.67 --out out/ceiling --max-steps 1457

Evaluate the run as any other (`hybrid-depth evaluate`), on frames it did not train on.
"""
import sys

import cv2
import numpy as np

from hybrid_depth_core.datasets import bag_dataset
from hybrid_depth_core.evaluation.bag_evaluation import pair_by_stamp
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.depth import depth_to_metres
from hybrid_depth_core.messages.header import stamp_ns
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.tracks.hints import Hints, resized_pixels

TOLERANCE_NS = 16_000_000
STRIDE = 2  # every other pixel of every other row


def depth_at_frames(source, topic: str, stamps_ns: np.ndarray, width: int,
                    height: int) -> dict[int, np.ndarray]:
    """{index of a frame: `topic`'s depth (height, width) in metres, rectified, 0 or NaN where
    none} for the frames (`stamps_ns`) with a depth image within TOLERANCE_NS, paired as
    `evaluate` pairs them."""
    with Bag(source.path, source.image_topic or None, source.camera_info_topic or None) as bag:
        infos = bag.camera_infos()
        messages = {stamp_ns(item.message, item.time_ns): item.message
                    for item in bag.messages([topic])}
    index = {int(stamp): i for i, stamp in enumerate(stamps_ns)}
    found = {}
    for image_stamp, depth_stamp in pair_by_stamp(stamps_ns, list(messages),
                                                  TOLERANCE_NS).pairs.items():
        truth = depth_to_metres(messages[depth_stamp])
        _, rectify = camera_from_info(infos.nearest(depth_stamp), truth.shape[1],
                                      truth.shape[0])
        if rectify is not None:
            truth = rectify(truth, nearest=True)
        found[index[image_stamp]] = cv2.resize(truth, (width, height),
                                               interpolation=cv2.INTER_NEAREST)
    return found


def depth_topic_hints(topic: str, at_hint_pixels: bool):
    """A stand-in for bag_dataset.load_hints giving `topic`'s depth as the metric hints (and no
    up-to-scale ones), everywhere or at the pixels of the hints training would use."""
    found_hints = bag_dataset.load_hints

    def load(source, frames, cache_dir, motion=None, progress=True):
        n, height, width = frames.rgb.shape[:3]
        ours = found_hints(source, frames, cache_dir, motion, progress) if at_hint_pixels else None
        pixels = [np.zeros((0, 2)) for _ in range(n)]
        depths = [np.zeros(0) for _ in range(n)]
        if motion is not None:
            for i, truth in depth_at_frames(source, topic, frames.stamps_ns, width,
                                            height).items():
                if ours is None:
                    v, u = np.mgrid[0:height:STRIDE, 0:width:STRIDE]
                else:
                    u, v = np.round(resized_pixels(ours.pixels[i], (
                        width / ours.size[0], height / ours.size[1]))).astype(int).T
                    u, v = u.clip(0, width - 1), v.clip(0, height - 1)
                found = truth[v, u]
                known = np.isfinite(found) & (found > 0)
                pixels[i] = np.stack([u[known], v[known]], 1).astype(np.float64)
                depths[i] = found[known].astype(np.float64)
            print(f'{source.path}: {topic} gives the hints of '
                  f'{sum(len(d) > 0 for d in depths)} of {n} frames')
        return Hints(pixels, depths, [np.full(len(d), np.nan) for d in depths],
                     motion is not None, (width, height))
    return load


def main():
    at_hint_pixels = '--at-hint-pixels' in sys.argv[1:2]
    arguments = sys.argv[1 + at_hint_pixels:]
    if len(arguments) < 2 or arguments[1] != 'train':
        sys.exit(__doc__)
    bag_dataset.load_hints = depth_topic_hints(arguments[0], at_hint_pixels)
    from hybrid_depth_ros.cli import main as cli
    sys.argv = ['hybrid-depth', *arguments[1:]]
    cli()


if __name__ == '__main__':
    main()
