"""Evaluation drivers: run a predictor over a dataset's frames in order (synthetic drives,
recorded bags, KITTI's Eigen split) and score them with `metrics`. They sit above `data` and
the runtime (they read datasets and choose keyframes as the node does); the metrics below them
are pure."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hybrid_depth_core.data.bag_reader import Bag, SkippedImages
from hybrid_depth_core.data.kitti import KittiRawDataset, image_path, read_rgb, read_velodyne
from hybrid_depth_core.data.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.evaluation.metrics import KITTI_EIGEN, Accumulator, Protocol
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.images import BadMessage, depth_to_metres
from hybrid_depth_core.runtime.predictor import Keyframes, continues_sequence
from hybrid_depth_core.messages.header import stamp_ns


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
                 progress: bool = True, keyframes: bool = True,
                 allow_partial: bool = False) -> dict:
    """Evaluate `predict(rgb, K, previous, turn) -> depth` on a recorded bag against its depth
    topic (32FC1 metres or 16UC1 millimetres, registered to the camera image), frame by frame
    in recording order; each image is matched to the depth image with the same header stamp.
    `previous` is the frame's keyframe (the most recent earlier frame with enough image motion)
    or None and `turn` the camera's rotation from it, as in the node (KeyframeRun;
    keyframes=False: always None), with the node's sequence breaks (predictor.
    continues_sequence); the result counts the images that had one (keyframe_images) and their
    median keyframe age. Undecodable images are left out and counted (skipped_images; skipped,
    one line or None), up to SkippedImages' limit."""
    accumulator, run = Accumulator(protocol), KeyframeRun(predict, keyframes)
    with Bag(bag_path, image_topic, camera_info_topic, allow_partial) as bag:
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
        skipped = SkippedImages(bag.path, bag.message_count(bag.image_topic))
        bar = tqdm(bag.images(skipped), total=bag.message_count(bag.image_topic), unit='frame',
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
    result = run.summary(accumulator)
    result.update(skipped_images=skipped.count, skipped=skipped.report())
    return result


def evaluate_kitti(predict, root: Path, split: Path, progress: bool = True) -> dict:
    """Eigen-protocol evaluation of `predict(rgb, K, previous) -> depth` on a split's frames
    (full-resolution images, Velodyne GT; the previous frame is used when it exists)."""
    root = Path(root)
    dataset = KittiRawDataset(root, split, 64, 64)  # only for its calibration cache
    accumulator = Accumulator(KITTI_EIGEN)
    for frame in tqdm(dataset.frames, desc='evaluating', unit='frame', disable=not progress):
        calibration = dataset.calibration(frame)
        rgb = read_rgb(image_path(root, frame))
        try:
            previous = read_rgb(image_path(root, frame, -1))
        except UserError:
            previous = None  # first frame of a drive
        scan = root / frame.drive / 'velodyne_points' / 'data' / f'{frame.index:010d}.bin'
        gt = calibration.depth_map(read_velodyne(scan))
        depth = predict(rgb, calibration.K, previous)
        if depth.shape != gt.shape:
            depth = cv2.resize(depth, gt.shape[::-1], interpolation=cv2.INTER_LINEAR)
        accumulator.add(depth, gt)
    return accumulator.summary()
