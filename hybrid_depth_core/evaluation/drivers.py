"""Evaluation drivers: run a predictor over a dataset's frames in order (synthetic drives,
KITTI's Eigen split; recorded bags in bag_evaluation.py) and score them with `metrics`. They
sit above `data` and the runtime (they read datasets and choose keyframes as the node does);
the metrics below them are pure."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hybrid_depth_core.datasets.kitti import KittiRawDataset, image_path, read_rgb, read_velodyne
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.evaluation.metrics import KITTI_EIGEN, Accumulator, Protocol
from hybrid_depth_core.runtime.keyframes import Keyframes


class KeyframeRun:
    """`predict(rgb, K, previous, turn) -> depth` over the frames of a recording, in order, the
    way the node and `DepthPredictor.stream` run them (runtime.keyframes.Keyframes, their
    rule): `previous` is each frame's keyframe (the most recent earlier frame of its sequence
    with enough image motion) or None, with which multi-frame models run single-frame; `turn`
    is the camera's rotation from it measured on the corners the choice tracked
    (Keyframes.turn; None without a keyframe), which turn-prior models take. keyframes=False
    (single-frame models, `evaluate --single-frame`) always passes None and tracks nothing.
    A frame's stamp and camera mark the sequence breaks as the node's do; without them call
    `reset()` at each break. The keyframe age of every scored image is recorded for
    `summary`."""

    def __init__(self, predict, keyframes: bool = True):
        self.predict = predict
        self._keyframes = Keyframes() if keyframes else None
        self.ages: list[int | None] = []

    def __call__(self, rgb: np.ndarray, K: np.ndarray, stamp_ns: int | None = None,
                 camera: object = None) -> tuple[np.ndarray, int | None]:
        """depth and the keyframe's age (1: the previous frame; None: no keyframe). `stamp_ns`
        and `camera` as Keyframes.choose takes them."""
        if self._keyframes is None:
            return self.predict(rgb, K, None, None), None
        age, previous = self._keyframes.choose(rgb, stamp_ns, camera)
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
