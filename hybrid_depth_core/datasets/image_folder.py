"""A folder of consecutive images from one camera, plus its intrinsics in YAML.

Intrinsics YAML, either the simple form
    fx: 718.9   fy: 718.9   cx: 607.2   cy: 185.2   width: 1242   height: 375
    distortion_model: plumb_bob        # optional, with
    distortion: [k1, k2, p1, p2, k3]   # optional
or the file ROS's camera_calibration writes (image_width, image_height, camera_matrix.data,
distortion_model, distortion_coefficients.data). Distorted images are undistorted keeping the
same K (plumb_bob, rational_polynomial, equidistant), by camera.rectifier as the node does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from hybrid_depth_core.camera import DISTORTION_MODELS, PinholeCamera, rectifier
from hybrid_depth_core.datasets.kitti import read_rgb
from hybrid_depth_core.datasets.samples import AugmentConfig, make_sample, triplet_turns
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.user_files import read_yaml

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')


def read_intrinsics(path: Path) -> tuple[PinholeCamera, Callable | None]:
    """The camera an intrinsics file describes, and the rectifier that undistorts its images
    (None: they need none)."""
    path = Path(path)
    data = read_yaml(path, 'intrinsics')
    if not isinstance(data, dict):
        raise UserError(f'intrinsics {path} must be a mapping')
    try:
        if 'camera_matrix' in data:  # ROS camera_calibration format
            K = np.array(data['camera_matrix']['data'], dtype=np.float64).reshape(3, 3)
            width, height = int(data['image_width']), int(data['image_height'])
            distortion = tuple(data.get('distortion_coefficients', {}).get('data', ()))
        else:
            K = np.array([[data['fx'], 0, data['cx']], [0, data['fy'], data['cy']], [0, 0, 1]],
                         dtype=np.float64)
            width, height = int(data['width']), int(data['height'])
            distortion = tuple(data.get('distortion', ()))
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f'intrinsics {path}: missing or malformed {error}; expected fx, fy, '
                        f'cx, cy, width, height (or a ROS camera_calibration file)') from None
    model = data.get('distortion_model', 'plumb_bob')
    if model not in DISTORTION_MODELS:
        raise UserError(f'intrinsics {path}: distortion_model {model!r} is not one of '
                        f'{DISTORTION_MODELS}')
    if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or width <= 0 or height <= 0:
        raise UserError(f'intrinsics {path}: need finite fx, fy > 0 and a positive size')
    try:
        return (PinholeCamera.from_matrix(K, width, height),
                rectifier(K, [float(d) for d in distortion], model, width, height))
    except ValueError as error:  # a coefficient count that does not fit the model
        raise UserError(f'intrinsics {path}: {error}') from None


class ImageFolderDataset(torch.utils.data.Dataset):
    """(t-s, t, t+s) samples (s = frame_stride) from consecutive images (sorted by name)."""

    def __init__(self, folder: Path, intrinsics: Path, width: int, height: int,
                 augment: AugmentConfig | None = None, seed: int = 0, frame_stride: int = 1,
                 turns: bool = False):
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f'image folder {folder} is not a directory')
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.stride, self.turns = frame_stride, turns
        if len(self.paths) < 2 * frame_stride + 1:
            raise UserError(f'image folder {folder} has {len(self.paths)} images; training '
                            f'with frame_stride {frame_stride} needs at least '
                            f'{2 * frame_stride + 1} consecutive ones')
        self.camera, self.rectify = read_intrinsics(intrinsics)
        self.width, self.height = width, height
        self.K = self.camera.scaled(width, height).K
        self.augment, self.seed, self.epoch = augment, seed, 0

    def distances(self) -> np.ndarray:
        """None known (a folder of images holds no motion): depth stays relative."""
        return np.zeros(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths) - 2 * self.stride

    def _load(self, path: Path) -> np.ndarray:
        image = read_rgb(path)
        expected = (self.camera.height, self.camera.width)
        if image.shape[:2] != expected:
            raise UserError(f'{path} is {image.shape[1]}x{image.shape[0]}, but the intrinsics '
                            f'describe {expected[1]}x{expected[0]} images')
        if self.rectify is not None:
            image = self.rectify(image)
        return cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)

    def __getitem__(self, item: int) -> dict:
        t = item + self.stride
        frames = {sign: self._load(self.paths[t + sign * self.stride]) for sign in (-1, 0, 1)}
        rng = np.random.default_rng([self.seed, self.epoch, item]) if self.augment else None
        turns = triplet_turns(frames, self.K) if self.turns else None
        return make_sample(frames, self.K, rng, self.augment, turns=turns)
