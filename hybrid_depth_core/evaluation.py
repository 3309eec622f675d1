"""Depth metrics and evaluation protocols (KITTI Eigen, and a plain one for other data).

Per image: select valid ground truth, optionally scale the prediction by the ratio of medians
(monocular depth is up to scale), clamp to the range, compute the metrics; the dataset result is
the mean over images. Every result holds both: the depth as predicted (unscaled: metric for a
network trained with measured motion) and median-scaled, with the ratios' median. Functions
take numpy arrays of the same (H, W) size.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

METRICS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3')


@dataclass(frozen=True)
class Protocol:
    min_depth: float = 1e-3
    max_depth: float = 80.0
    garg_crop: bool = False       # KITTI Eigen: rows 0.408-0.992 H, cols 0.036-0.964 W
    median_scaling: bool = True   # monocular models: per-image ratio of GT and predicted medians


KITTI_EIGEN = Protocol(garg_crop=True)


def depth_metrics(prediction: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The standard metrics on matched 1-D arrays of valid, positive depths."""
    threshold = np.maximum(gt / prediction, prediction / gt)
    return {
        'abs_rel': float(np.mean(np.abs(gt - prediction) / gt)),
        'sq_rel': float(np.mean((gt - prediction) ** 2 / gt)),
        'rmse': float(np.sqrt(np.mean((gt - prediction) ** 2))),
        'rmse_log': float(np.sqrt(np.mean((np.log(gt) - np.log(prediction)) ** 2))),
        'a1': float(np.mean(threshold < 1.25)),
        'a2': float(np.mean(threshold < 1.25 ** 2)),
        'a3': float(np.mean(threshold < 1.25 ** 3)),
    }


def valid_mask(gt: np.ndarray, protocol: Protocol) -> np.ndarray:
    mask = np.isfinite(gt) & (gt > protocol.min_depth) & (gt < protocol.max_depth)
    if protocol.garg_crop:
        height, width = gt.shape
        crop = np.zeros_like(mask)
        crop[int(0.40810811 * height):int(0.99189189 * height),
             int(0.03594771 * width):int(0.96405229 * width)] = True
        mask &= crop
    return mask


def evaluate_image(prediction: np.ndarray, gt: np.ndarray,
                   protocol: Protocol) -> tuple[dict[str, float], float] | None:
    """Metrics and the applied scale ratio for one image; None if it has no valid GT."""
    if prediction.shape != gt.shape:
        raise ValueError(f'prediction {prediction.shape} and GT {gt.shape} differ in size')
    mask = valid_mask(gt, protocol)
    if not mask.any():
        return None
    predicted, truth = prediction[mask].astype(np.float64), gt[mask].astype(np.float64)
    ratio = float(np.median(truth) / np.median(predicted)) if protocol.median_scaling else 1.0
    predicted = np.clip(predicted * ratio, protocol.min_depth, protocol.max_depth)
    return depth_metrics(predicted, truth), ratio


class Accumulator:
    """Mean of per-image metrics, median-scaled and unscaled, and the median scale ratio with
    its spread."""

    def __init__(self, protocol: Protocol):
        self.protocol = protocol
        self.scaled: list[dict[str, float]] = []
        self.unscaled: list[dict[str, float]] = []
        self.ratios: list[float] = []

    @property
    def per_image(self) -> list[dict[str, float]]:
        """The protocol's own choice of the two."""
        return self.scaled if self.protocol.median_scaling else self.unscaled

    def add(self, prediction: np.ndarray, gt: np.ndarray) -> bool:
        """Score one image; False if it had no valid GT (and does not count)."""
        scaled = evaluate_image(prediction, gt, replace(self.protocol, median_scaling=True))
        if scaled is None:
            return False
        self.scaled.append(scaled[0])
        self.ratios.append(scaled[1])
        self.unscaled.append(evaluate_image(prediction, gt,
                                            replace(self.protocol, median_scaling=False))[0])
        return True

    def summary(self) -> dict:
        """The protocol's metrics at the top level (as format_table reads them), both kinds
        under 'median_scaled' and 'unscaled', the image count and the scale ratios' median and
        spread (std / median)."""
        if not self.per_image:
            raise ValueError('no image had valid ground truth')
        kinds = {kind: {name: float(np.mean([m[name] for m in per_image])) for name in METRICS}
                 for kind, per_image in (('median_scaled', self.scaled),
                                         ('unscaled', self.unscaled))}
        result = dict(kinds['median_scaled' if self.protocol.median_scaling else 'unscaled'])
        ratios = np.array(self.ratios)
        result.update(kinds, images=len(self.per_image), scale_median=float(np.median(ratios)),
                      scale_std_over_median=float(np.std(ratios / np.median(ratios))))
        return result


def format_table(result: dict[str, float]) -> str:
    """The familiar one-line table."""
    header = ' '.join(f'{name:>9}' for name in METRICS)
    values = ' '.join(f'{result[name]:9.4f}' for name in METRICS)
    return f'{header}\n{values}'


class KeyframeRun:
    """`predict(rgb, K, previous, turn) -> depth` over the frames of a recording, in order, the
    way the node and `DepthPredictor.stream` run them: `previous` is each frame's keyframe (the
    choice of predictor.Keyframes: the most recent earlier frame with enough image motion) or
    None, with which multi-frame models run single-frame; `turn` is the camera's rotation from
    it measured on the corners the choice tracked (Keyframes.turn; None without a keyframe),
    which turn-prior models take. keyframes=False (single-frame models, `evaluate
    --single-frame`) always passes None and tracks nothing. `reset()` at a sequence
    break. The keyframe age of every scored image is recorded for `summary`."""

    def __init__(self, predict, keyframes: bool = True):
        from hybrid_depth_core.predictor import Keyframes

        self.predict = predict
        self._keyframes = Keyframes() if keyframes else None
        self.ages: list[int | None] = []

    def __call__(self, rgb: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, int | None]:
        """depth and the keyframe's age (1: the previous frame; None: no keyframe)."""
        if self._keyframes is None:
            return self.predict(rgb, K, None, None), None
        age, previous = self._keyframes.choose(rgb)
        turn = None if previous is None else self._keyframes.turn(age, K)
        depth = self.predict(rgb, K, previous, turn)
        self._keyframes.keep(rgb)
        return depth, age

    def reset(self) -> None:
        if self._keyframes is not None:
            self._keyframes.reset()

    def summary(self, accumulator: Accumulator) -> dict:
        """The accumulator's summary plus keyframe_images (scored images predicted with a
        keyframe) and keyframe_age_median (their median keyframe age; None if none)."""
        result = accumulator.summary()
        used = [age for age in self.ages if age is not None]
        result.update(keyframe_images=len(used),
                      keyframe_age_median=float(np.median(used)) if used else None)
        return result


def evaluate_synthetic(predict, seeds, frames: int, width: int, height: int,
                       protocol: Protocol = Protocol(), progress: bool = True,
                       keyframes: bool = True) -> dict:
    """Evaluate `predict(rgb, K, previous, turn) -> depth` on held-out synthetic drives, frame
    by frame in driving order, each drive a sequence of its own: `previous` is the frame's
    keyframe or None and `turn` the camera's rotation from it (KeyframeRun; keyframes=False:
    always None). The result counts the images that had a keyframe (keyframe_images) and
    their median keyframe age."""
    from tqdm import tqdm

    from hybrid_depth_core.data.synthetic import DriveConfig, SyntheticDrive

    accumulator, run = Accumulator(protocol), KeyframeRun(predict, keyframes)
    bar = tqdm(total=len(seeds) * frames, desc='evaluating', unit='frame', disable=not progress)
    for seed in seeds:
        drive = SyntheticDrive(DriveConfig(width=width, height=height, frames=frames, seed=seed))
        run.reset()
        for frame in drive:
            depth, age = run(frame.rgb, drive.camera.K)
            if accumulator.add(depth, frame.depth):
                run.ages.append(age)
            bar.update(1)
    bar.close()
    return run.summary(accumulator)


def evaluate_bag(predict, bag_path, gt_topic: str, image_topic: str | None = None,
                 camera_info_topic: str | None = None, protocol: Protocol = Protocol(),
                 progress: bool = True, keyframes: bool = True) -> dict:
    """Evaluate `predict(rgb, K, previous, turn) -> depth` on a recorded bag against its depth
    topic (32FC1 metres or 16UC1 millimetres, registered to the camera image), frame by frame
    in recording order; each image is matched to the depth image with the same header stamp.
    `previous` is the frame's keyframe (the most recent earlier frame with enough image motion)
    or None and `turn` the camera's rotation from it, as in the node (KeyframeRun;
    keyframes=False: always None), with the node's sequence breaks (predictor.
    continues_sequence); the result counts the images that had one (keyframe_images) and their
    median keyframe age."""
    from tqdm import tqdm

    from hybrid_depth_core.data.rosbag import Bag, stamp_ns
    from hybrid_depth_core.errors import UserError
    from hybrid_depth_core.messages.camera_info import camera_from_info
    from hybrid_depth_core.messages.images import BadMessage, depth_to_metres
    from hybrid_depth_core.predictor import continues_sequence

    accumulator, run = Accumulator(protocol), KeyframeRun(predict, keyframes)
    with Bag(bag_path, image_topic, camera_info_topic) as bag:
        depth_topics = bag.topics_of({'sensor_msgs/msg/Image'})
        if gt_topic not in depth_topics or gt_topic == bag.image_topic:
            raise UserError(f'bag {bag.path} has no depth topic {gt_topic!r}; Image topics in '
                            f'it: {", ".join(sorted(depth_topics)) or "none"}')
        truth = {}
        for item in bag.messages([gt_topic]):
            try:
                truth[stamp_ns(item.message, item.time_ns)] = depth_to_metres(item.message)
            except BadMessage as error:
                raise UserError(f'bag {bag.path}: {gt_topic}: {error}') from None
        infos = bag.camera_infos()
        if not len(infos):
            raise UserError(f'bag {bag.path} has no camera_info for {bag.image_topic}; name it '
                            f'with --camera-info-topic')
        bar = tqdm(bag.images(), total=bag.message_count(bag.image_topic), unit='frame',
                   desc=f'evaluating {bag.path.name}', disable=not progress)
        previous_stamp = None
        for stamp, rgb, _ in bar:
            try:
                camera, rectifier = camera_from_info(infos.nearest(stamp), rgb.shape[1],
                                                     rgb.shape[0])
            except BadMessage as error:
                raise UserError(f'bag {bag.path}: camera_info: {error}') from None
            if rectifier is not None:
                raise UserError(f'bag {bag.path}: the camera_info describes distortion; '
                                f'evaluation needs rectified images and depth registered to '
                                f'them (record image_rect)')
            if not continues_sequence(previous_stamp, stamp):
                run.reset()
            previous_stamp = stamp
            depth, age = run(rgb, camera.K)
            gt = truth.get(stamp)
            if gt is None:
                continue
            if gt.shape != depth.shape:
                raise UserError(f'bag {bag.path}: {gt_topic} is {gt.shape[1]}x{gt.shape[0]} but '
                                f'the images are {depth.shape[1]}x{depth.shape[0]}')
            if accumulator.add(depth, gt):
                run.ages.append(age)
    if not accumulator.per_image:
        raise UserError(f'bag {bag_path}: no image has a {gt_topic} message with the same stamp '
                        f'and valid depth')
    return run.summary(accumulator)
