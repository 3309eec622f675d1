"""The training sample contract, shared by every dataset, and the augmentations applied to it.

A sample is a dict (batched by torch's default collate) holding only what training reads:

    ('color', f, 0)      (3, H, W) float32 in [0, 1]: frame f in {-1, 0, +1} as recorded (the
                         losses compare these; the trainer logs frame 0)
    ('color', 0, s)      frame 0 at scale s in 1..NUM_SCALES-1, (3, H/2^s, W/2^s) (INTER_AREA),
                         for the edge-aware smoothness of the disparity of that scale
    ('color_aug', f, 0)  frame f after colour jitter (the networks see these)
    ('K', 0), ('inv_K', 0)  (3, 3) float32 intrinsics and their inverse
    ('turn', f)          f in {-1, +1}: (3, 3) float32, the camera's rotation from the earlier to
                         the later frame of the pair (-1, 0) or (0, +1), measured on tracked
                         corners (data/image_motion.turn; T_later_earlier's rotation), which
                         the pose network corrects (only for DepthModelConfig.turn_prior: datasets
                         measure turns when asked to)
    ('distance', f)      f in {-1, +1}: () float32, how far the camera moved between frames 0 and
                         f (metres, measured: recordings/bag_motion.py; NaN where unknown),
                         which the velocity loss compares with the pose network's translation
                         (only for datasets with motion: every sample of such a dataset has
                         them)
    'hints'              (1, H, W) float32: depth hints (tracks/hints.py: triangulated from the
                         recording's own tracks), up to a scale of their own per image, NaN
                         where there is none (only for datasets asked for hints)
    'metric_hints'       the same in metres, triangulated with the measured motion (only for
                         datasets asked for hints where some recording has the camera's
                         motion: every sample of such a dataset has them, all NaN without)
    'depth_gt'           (1, H, W) float32 metres, NaN where unknown (only if the dataset has it;
                         held-out scoring reads it)

Nothing else: the losses warp at full resolution (Monodepth2 upsamples every scale's
disparity), so the other frames' and the jittered frames' smaller scales and the smaller
scales' intrinsics would only be built, collated and moved to the device for nothing.

Colour jitter and horizontal flip are drawn once per sample and applied to all its frames, so
the frames stay consistent with each other. Flipping mirrors the principal point and the turns
too.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from hybrid_depth_core.tracks.image_motion import pair_turns
from hybrid_depth_core.geometry import scale_intrinsics

FRAME_IDS = (0, -1, 1)
NUM_SCALES = 4
MIRROR = np.diag([-1.0, 1.0, 1.0])  # x -> -x: a horizontal flip of the camera frame


@dataclass(frozen=True)
class AugmentConfig:
    """ManyDepth's augmentations (probabilities and ranges)."""

    color_jitter_probability: float = 0.5
    brightness: float = 0.2     # factor in [1 - x, 1 + x]
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1            # fraction of a full turn, in [-x, x]
    flip_probability: float = 0.5

    def __post_init__(self):
        for name in ('color_jitter_probability', 'flip_probability', 'brightness', 'contrast',
                     'saturation'):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {getattr(self, name)}')
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f'hue must be in [0, 0.5] (a fraction of a turn), got {self.hue}')


def make_sample(frames: dict[int, np.ndarray], K: np.ndarray, rng: np.random.Generator | None,
                augment: AugmentConfig | None, depth_gt: np.ndarray | None = None,
                turns: dict[int, np.ndarray] | None = None,
                distances: dict[int, float] | None = None,
                hints: dict[bool, np.ndarray] | None = None) -> dict:
    """Build the sample dict from uint8 RGB frames (H, W, 3) keyed by frame id and the
    intrinsics K (3, 3) of that resolution. rng None or augment None: no augmentation. `turns`
    ({-1, 1} -> (3, 3), as the ('turn', f) entries: data/image_motion.pair_turns over the frames
    between, or `triplet_turns`); None: the sample has none. `distances` ({-1, 1} -> metres or
    NaN, as the ('distance', f) entries; a flip leaves them as they are); None: none. `hints`:
    frame 0's hint maps (H, W) by whether they are metric ('metric_hints') or not ('hints');
    None: none."""
    height, width = frames[0].shape[:2]
    K = np.asarray(K, dtype=np.float32).copy()
    flip = augment is not None and rng is not None and rng.random() < augment.flip_probability
    jitter = (_draw_jitter(augment, rng) if augment is not None and rng is not None
              and rng.random() < augment.color_jitter_probability else None)
    if flip:
        frames = {f: np.ascontiguousarray(image[:, ::-1]) for f, image in frames.items()}
        K[0, 2] = (width - 1) - K[0, 2]
        if turns is not None:
            turns = {f: MIRROR @ R @ MIRROR for f, R in turns.items()}
        if depth_gt is not None:
            depth_gt = np.ascontiguousarray(depth_gt[:, ::-1])
        if hints is not None:
            hints = {metric: np.ascontiguousarray(depth[:, ::-1])
                     for metric, depth in hints.items()}
    sample = {}
    for frame_id, image in frames.items():
        color = _to_tensor(image)
        sample[('color', frame_id, 0)] = color
        sample[('color_aug', frame_id, 0)] = color if jitter is None else apply_jitter(color,
                                                                                       *jitter)
    for scale in range(1, NUM_SCALES):
        sample[('color', 0, scale)] = _to_tensor(cv2.resize(
            frames[0], (width >> scale, height >> scale), interpolation=cv2.INTER_AREA))
    # Scaling by 1 still rounds the principal point ((c + 0.5) - 0.5): kept, so that K is the
    # same to the bit as when every scale was built.
    K_full = scale_intrinsics(torch.from_numpy(K), 1.0, 1.0)
    sample[('K', 0)] = K_full
    sample[('inv_K', 0)] = torch.linalg.inv(K_full)
    for frame_id, turn in (turns or {}).items():
        sample[('turn', frame_id)] = torch.from_numpy(np.asarray(turn, np.float32))
    for frame_id, distance in (distances or {}).items():
        sample[('distance', frame_id)] = torch.tensor(distance, dtype=torch.float32)
    if hints is not None:
        for metric, depth in hints.items():
            key = 'metric_hints' if metric else 'hints'
            sample[key] = torch.from_numpy(np.asarray(depth, np.float32))[None]
    if depth_gt is not None:
        sample['depth_gt'] = torch.from_numpy(np.asarray(depth_gt, np.float32))[None]
    return sample


def triplet_turns(frames: dict[int, np.ndarray], K: np.ndarray) -> dict[int, np.ndarray]:
    """make_sample's `turns`, measured between the frames of the triplet directly (for sources
    that read the frames between only at sample time: KITTI, image folders)."""
    measured = pair_turns([frames[-1], frames[0], frames[1]], [K] * 3, 1)
    return {-1: measured[1], 1: measured[2]}


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def _draw_jitter(augment: AugmentConfig, rng: np.random.Generator) -> tuple[float, ...]:
    return (rng.uniform(1 - augment.brightness, 1 + augment.brightness),
            rng.uniform(1 - augment.contrast, 1 + augment.contrast),
            rng.uniform(1 - augment.saturation, 1 + augment.saturation),
            rng.uniform(-augment.hue, augment.hue))


def apply_jitter(color: torch.Tensor, brightness: float, contrast: float, saturation: float,
                 hue: float) -> torch.Tensor:
    """Brightness, contrast, saturation factors and a hue rotation (fraction of a turn) on a
    (3, H, W) image in [0, 1]."""
    gray_weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    color = (color * brightness).clamp(0, 1)
    mean = (color * gray_weights).sum(0).mean()
    color = ((color - mean) * contrast + mean).clamp(0, 1)
    gray = (color * gray_weights).sum(0, keepdim=True)
    color = ((color - gray) * saturation + gray).clamp(0, 1)
    return _rotate_hue(color, hue).clamp(0, 1)


def _rotate_hue(color: torch.Tensor, turns: float) -> torch.Tensor:
    """Rotate chroma about the grey axis in YIQ space (a linear stand-in for an HSV hue shift)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                           [0.211, -0.523, 0.312]])
    angle = 2 * np.pi * turns
    rotation = torch.tensor([[1.0, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                             [0, np.sin(angle), np.cos(angle)]], dtype=torch.float32)
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq
    return torch.einsum('ij,jhw->ihw', matrix, color)
