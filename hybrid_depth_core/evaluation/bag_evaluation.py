"""Evaluation on a recorded bag, as a robot records one: against a depth camera's topic
registered to the images (raw Image or compressedDepth, on the camera's raw pixel grid when
its images are raw), or, on a street recording without depth, with the road check.

Images are rectified with their camera_info (bilinear) and their ground truth with the same
maps (nearest neighbour: no depth between a foreground and a background); each depth image is
paired with the image nearest in stamp, within a tolerance (a depth camera is not triggered
with the colour camera). A constant depth is scored on the same pixels, the reference that
says what an AbsRel is worth on this recording. A time span (recordings/time_span.py) picks the
held-out part of a bag that was partly trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from hybrid_depth_core.recordings.bag_reader import IMAGE_DECODERS, Bag, SkippedImages
from hybrid_depth_core.recordings.time_span import TimeSpan
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.evaluation import road as road_check
from hybrid_depth_core.evaluation.drivers import KeyframeRun
from hybrid_depth_core.evaluation.metrics import Accumulator, ConstantBaseline, Protocol
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.depth import DEPTH_ENCODINGS, depth_to_metres
from hybrid_depth_core.messages.header import nearest_index, stamp_ns
from hybrid_depth_core.messages.images import BadMessage


@dataclass(frozen=True)
class Pairing:
    """Depth images paired with images by stamp."""

    pairs: dict[int, int]  # image stamp -> depth stamp
    depth_images: int      # on the topic, within the images' span (+- the tolerance)
    tolerance_ns: int

    def offsets_ms(self) -> np.ndarray:
        return np.array([abs(d - i) / 1e6 for i, d in self.pairs.items()])

    def describe(self) -> str:
        offsets = self.offsets_ms()
        median = f'; median offset {np.median(offsets):.1f} ms' if len(offsets) else ''
        return (f'{len(self.pairs)} of the {self.depth_images} depth images in the span paired '
                f'with an image within {self.tolerance_ns / 1e6:.1f} ms{median}')


def pair_by_stamp(image_stamps, depth_stamps, tolerance_ns: int, chosen=None) -> Pairing:
    """Each depth image with the nearest image (of all `image_stamps`) within `tolerance_ns`;
    an image nearest to two depth images keeps the closer. Only pairs whose image is `chosen`
    (a boolean mask over image_stamps; default all) are kept, and only the depth images
    between the first and the last chosen image (+- the tolerance) are counted."""
    stamps = np.asarray(image_stamps, np.int64)
    chosen = np.ones(len(stamps), bool) if chosen is None else np.asarray(chosen, bool)
    order = np.argsort(stamps, kind='stable')
    images, keep = stamps[order], chosen[order]
    pairs: dict[int, int] = {}
    counted = 0
    low = int(stamps[chosen].min()) - tolerance_ns if chosen.any() else 0
    high = int(stamps[chosen].max()) + tolerance_ns if chosen.any() else -1
    for depth in (int(d) for d in np.asarray(depth_stamps, np.int64)):
        counted += int(low <= depth <= high)
        nearest = nearest_index(images, depth)
        if nearest is None:
            continue
        image = int(images[nearest])
        offset = abs(image - depth)
        if keep[nearest] and offset <= tolerance_ns and (
                image not in pairs or offset < abs(pairs[image] - image)):
            pairs[image] = depth
    return Pairing(pairs, counted, int(tolerance_ns))


def half_frame_period_ns(stamps) -> int:
    """Half the median interval between the images: the default pairing tolerance."""
    intervals = np.diff(np.sort(np.asarray(stamps, np.int64)))
    intervals = intervals[intervals > 0]
    return int(np.median(intervals) // 2) if len(intervals) else 0


def evaluate_bag(predict, bag_path, gt_topic: str | None = None,
                 image_topic: str | None = None, camera_info_topic: str | None = None,
                 protocol: Protocol = Protocol(), progress: bool = True, keyframes: bool = True,
                 allow_partial: bool = False, span: TimeSpan = TimeSpan(),
                 tolerance_s: float | None = None,
                 road: road_check.RoadCheck | None = None) -> dict:
    """Score `predict(rgb, K, previous, turn) -> depth` on the images of a bag in `span`, in
    recording order, run as the node runs them (KeyframeRun: each frame's keyframe, the node's
    sequence breaks by stamp, frame id and camera), against `gt_topic` (None without a road
    check: the bag's only depth topic) and/or with the `road` check.

    The result: the metrics (metrics.Accumulator) with keyframe_images / keyframe_age_median,
    `constant` (a constant depth on the same pixels), `pairing` (counts and offsets of the
    depth/image pairs), `road` (road.summarise), `span`, skipped_images and skipped (one line
    or None). Undecodable images are left out and counted, up to SkippedImages' limit."""
    accumulator, run = Accumulator(protocol), KeyframeRun(predict, keyframes)
    constant, ratios = ConstantBaseline(protocol), []
    with Bag(bag_path, image_topic, camera_info_topic, allow_partial) as bag:
        infos = bag.camera_infos()
        if not len(infos):
            raise UserError(f'bag {bag.path} has no camera_info for {bag.image_topic}; name it '
                            f'with --camera-info-topic')
        if gt_topic is None and road is None:
            gt_topic = _only_depth_topic(bag)
        unscored = sorted(bag.depth_topics()) if gt_topic is None else []
        stamps = bag.image_stamps()
        chosen = span.mask(stamps)
        if not chosen.any():
            raise UserError(f'bag {bag.path}: {span.describe(stamps)}')
        selected = set(stamps[chosen].tolist())
        pairing = None
        if gt_topic is not None:
            pairing = _pair(bag, gt_topic, stamps, chosen, tolerance_s)
        by_depth = {depth: image for image, depth in (pairing.pairs if pairing else {}).items()}
        waiting_truth: dict[int, object] = {}  # image stamp -> its depth message, come first
        waiting_depth: dict[int, tuple] = {}   # image stamp -> (prediction, maps, age)

        def score(prediction, maps, age, message) -> None:
            truth = _truth(bag, gt_topic, message, maps, prediction.shape)
            if accumulator.add(prediction, truth):
                run.ages.append(age)
                # the pixels the model was scored on: none where it gave no depth
                constant.add(np.where(np.isfinite(prediction), truth, np.nan))

        skipped = SkippedImages(bag.path, len(stamps))
        bar = tqdm(total=len(selected), unit='frame', desc=f'evaluating {bag.path.name}',
                   disable=not progress)
        decoded = 0
        for item in bag.messages([bag.image_topic] + ([gt_topic] if gt_topic else [])):
            stamp = stamp_ns(item.message, item.time_ns)
            if item.topic != bag.image_topic:  # a depth image
                image = by_depth.get(stamp)
                if image in waiting_depth:
                    score(*waiting_depth.pop(image), item.message)
                elif image is not None:
                    waiting_truth[image] = item.message
                continue
            if stamp not in selected:
                continue
            bar.update(1)
            rgb = bag.decode(item, skipped)
            if rgb is None:
                waiting_truth.pop(stamp, None)
                continue
            decoded += 1
            try:
                camera, maps = camera_from_info(infos.nearest(stamp), rgb.shape[1],
                                                rgb.shape[0])
            except BadMessage as error:
                raise UserError(f'bag {bag.path}: camera_info: {error}') from None
            depth, age = run(maps(rgb) if maps else rgb, camera.K, stamp,
                             (item.message.header.frame_id, camera))
            if road is not None and (ratio := road.ratio(depth, camera)) is not None:
                ratios.append((ratio, age))
            if pairing is not None and stamp in pairing.pairs:
                if stamp in waiting_truth:
                    score(depth, maps, age, waiting_truth.pop(stamp))
                else:
                    waiting_depth[stamp] = (depth, maps, age)
        bar.close()
        if not decoded and skipped.count:  # said so, not as "no image paired with depth"
            images = 'its one image' if skipped.count == 1 else f'all {skipped.count} images'
            raise UserError(f'bag {bag.path}: nothing to evaluate: {images}'
                            f'{"" if span.whole else " in the span"} on {bag.image_topic} could '
                            f'not be decoded (the first: {skipped.first})')
    result = _result(bag_path, gt_topic, run, accumulator, constant, pairing, road, ratios, span,
                     stamps, skipped)
    if unscored:
        result['note'] = (f'depth on {", ".join(unscored)} not scored: name it with '
                          f'--gt-depth-topic to score it too')
    return result


def _only_depth_topic(bag: Bag) -> str:
    depth_topics = bag.depth_topics()
    if len(depth_topics) != 1:
        raise UserError(f'bag {bag.path} has {len(depth_topics)} depth topics '
                        f'({", ".join(sorted(depth_topics)) or "none"}): name the ground truth '
                        f'with --gt-depth-topic, or judge a street recording by the road '
                        f'(--road-camera-height)')
    return next(iter(depth_topics))


def _pair(bag: Bag, gt_topic: str, stamps, chosen, tolerance_s: float | None) -> Pairing:
    depth_topics = bag.depth_topics()
    first = bag.first_message(gt_topic) if gt_topic in bag.topics_of(IMAGE_DECODERS) else None
    named = (gt_topic != bag.image_topic and first is not None
             and getattr(first, 'encoding', None) in DEPTH_ENCODINGS)  # mono16 too, if named
    if gt_topic not in depth_topics and not named:
        raise UserError(f'bag {bag.path} has no depth topic {gt_topic!r}; depth topics in it '
                        f'(16UC1 or 32FC1 images, compressedDepth): '
                        f'{", ".join(sorted(depth_topics)) or "none"}')
    depth_stamps = [stamp_ns(item.message, item.time_ns) for item in bag.messages([gt_topic])]
    tolerance = (half_frame_period_ns(stamps) if tolerance_s is None
                 else int(round(tolerance_s * 1e9)))
    return pair_by_stamp(stamps, depth_stamps, tolerance, chosen)


def _truth(bag: Bag, gt_topic: str, message, maps, shape) -> np.ndarray:
    """A depth message -> metres on the rectified image's grid, NaN where none."""
    try:
        truth = depth_to_metres(message)
    except BadMessage as error:
        raise UserError(f'bag {bag.path}: {gt_topic}: {error}') from None
    if truth.shape != shape:
        raise UserError(f'bag {bag.path}: {gt_topic} is {truth.shape[1]}x{truth.shape[0]} but '
                        f'the images are {shape[1]}x{shape[0]}: evaluation needs depth '
                        f'registered to the camera image')
    if maps is not None:
        truth = maps(truth, nearest=True)
        truth[~(truth > 0)] = np.nan  # outside the raw image
    return truth


def _result(bag_path, gt_topic, run: KeyframeRun, accumulator: Accumulator,
            constant: ConstantBaseline, pairing: Pairing | None, road, ratios, span: TimeSpan,
            stamps, skipped: SkippedImages) -> dict:
    result: dict = {}
    if gt_topic is not None:
        if not accumulator.per_image:
            raise UserError(f'bag {bag_path}: no image has a {gt_topic} message with valid depth '
                            f'paired with it ({pairing.describe()}; --stamp-tolerance sets how '
                            f'far apart their stamps may be)')
        result = run.summary(accumulator)
        offsets = pairing.offsets_ms()
        result.update(constant=constant.summary(),
                      pairing={'pairs': len(pairing.pairs), 'depth_images': pairing.depth_images,
                               'tolerance_ms': pairing.tolerance_ns / 1e6,
                               'median_offset_ms': float(np.median(offsets)),
                               'max_offset_ms': float(offsets.max()),
                               'text': pairing.describe()})
    if road is not None:
        if not ratios:
            raise UserError(f'bag {bag_path}: the road check found no road region with a '
                            f'prediction in any image (is the horizon in the image?)')
        result['road'] = dict(road_check.summarise([ratio for ratio, _ in ratios]),
                              camera_height=road.camera_height,
                              keyframe_images=sum(age is not None for _, age in ratios))
    result.update(span=None if span.whole else span.describe(stamps),
                  skipped_images=skipped.count, skipped=skipped.report())
    return result
