"""A folder of consecutive images from one camera, plus its intrinsics in YAML.

Intrinsics YAML, either the simple form
    fx: 718.9   fy: 718.9   cx: 607.2   cy: 185.2   width: 1242   height: 375
    distortion_model: plumb_bob        # optional, with
    distortion: [k1, k2, p1, p2, k3]   # optional
or the file ROS's camera_calibration writes (image_width, image_height, camera_matrix.data,
distortion_model, distortion_coefficients.data). Distorted images are undistorted with OpenCV
keeping the same K (plumb_bob, rational_polynomial, equidistant).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from hybrid_depth_core.data.kitti import read_rgb
from hybrid_depth_core.data.samples import AugmentConfig, make_sample, triplet_turns
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.geometry import scale_intrinsics

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial', 'equidistant')


@dataclass(frozen=True)
class Intrinsics:
    K: np.ndarray                # (3, 3)
    width: int
    height: int
    distortion_model: str = 'plumb_bob'
    distortion: tuple[float, ...] = ()

    def undistort(self, image: np.ndarray) -> np.ndarray:
        if not any(self.distortion):
            return image
        D = np.array(self.distortion, dtype=np.float64)
        if self.distortion_model == 'equidistant':
            return cv2.fisheye.undistortImage(image, self.K, D, Knew=self.K)
        return cv2.undistort(image, self.K, D)


def read_intrinsics(path: Path) -> Intrinsics:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise UserError(f'cannot read intrinsics {path}: {error.strerror}') from None
    except yaml.YAMLError as error:
        raise UserError(f'intrinsics {path} is not valid YAML: {error}') from None
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
    return Intrinsics(K, width, height, model, tuple(float(d) for d in distortion))


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
        self.intrinsics = read_intrinsics(intrinsics)
        self.width, self.height = width, height
        self.K = scale_intrinsics(self.intrinsics.K, width / self.intrinsics.width,
                                  height / self.intrinsics.height)
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
        expected = (self.intrinsics.height, self.intrinsics.width)
        if image.shape[:2] != expected:
            raise UserError(f'{path} is {image.shape[1]}x{image.shape[0]}, but the intrinsics '
                            f'describe {expected[1]}x{expected[0]} images')
        image = self.intrinsics.undistort(image)
        return cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)

    def __getitem__(self, item: int) -> dict:
        t = item + self.stride
        frames = {sign: self._load(self.paths[t + sign * self.stride]) for sign in (-1, 0, 1)}
        rng = np.random.default_rng([self.seed, self.epoch, item]) if self.augment else None
        turns = triplet_turns(frames, self.K) if self.turns else None
        return make_sample(frames, self.K, rng, self.augment, turns=turns)
