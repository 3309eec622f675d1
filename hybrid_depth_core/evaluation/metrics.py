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
    """Metrics and the applied scale ratio for one image; None if it has no valid GT. Pixels
    without a prediction (NaN: outside what the network saw of a camera unlike its training
    camera) are left out."""
    if prediction.shape != gt.shape:
        raise ValueError(f'prediction {prediction.shape} and GT {gt.shape} differ in size')
    mask = valid_mask(gt, protocol) & np.isfinite(prediction)
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


class ConstantBaseline:
    """A constant depth scored on the same ground truth: the reference that says what an AbsRel
    is worth on a dataset. Median-scaled, it is each image's GT median everywhere. Unscaled, it
    is one depth in metres for the whole dataset, the median of the images' GT medians, known
    only at the end: so it is scored on up to SAMPLES evenly spaced valid pixels kept per image
    (docs/benchmarks.md compares that with all pixels)."""

    SAMPLES = 2048

    def __init__(self, protocol: Protocol):
        self.protocol = protocol
        self.scaled = Accumulator(protocol)
        self.samples: list[np.ndarray] = []
        self.medians: list[float] = []

    def add(self, gt: np.ndarray) -> None:
        mask = valid_mask(gt, self.protocol)
        if not mask.any():
            return
        self.scaled.add(np.ones_like(gt), gt)
        truth = gt[mask]
        self.medians.append(float(np.median(truth)))
        step = max(1, len(truth) // self.SAMPLES)
        self.samples.append(truth[::step].astype(np.float32))

    def summary(self) -> dict:
        """{'median_scaled': metrics, 'unscaled': metrics, 'depth': the unscaled constant}."""
        depth = float(np.median(self.medians))
        unscaled = Accumulator(replace(self.protocol, garg_crop=False))
        for sample in self.samples:
            unscaled.add(np.full_like(sample, depth), sample)
        return {'median_scaled': self.scaled.summary()['median_scaled'],
                'unscaled': unscaled.summary()['unscaled'], 'depth': depth}
