"""KITTI raw data: calibration, Velodyne ground truth, split files, and training samples.

Layout (as downloaded): ROOT/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, and
ROOT/<date>/<drive>_sync/image_02|03/data/<10-digit frame>.png (or .jpg), with
velodyne_points/data/<frame>.bin for ground truth. Split files list one frame per line in
Monodepth2's format: `<date>/<drive>_sync <frame index> l|r` (l = image_02, r = image_03).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from hybrid_depth_core.datasets.samples import AugmentConfig, make_sample, triplet_turns
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.user_files import read_text

CAMERAS = {'l': '02', 'r': '03'}


@dataclass(frozen=True)
class KittiFrame:
    drive: str       # '<date>/<drive>_sync'
    index: int
    side: str        # 'l' or 'r'


def read_split(path: Path) -> list[KittiFrame]:
    path = Path(path)
    lines = read_text(path, 'split file').splitlines()
    frames = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in CAMERAS:
            raise UserError(f'{path}:{number}: expected "<date>/<drive>_sync <frame> l|r", '
                            f'got {line!r}')
        frames.append(KittiFrame(parts[0], int(parts[1]), parts[2]))
    if not frames:
        raise UserError(f'split file {path} lists no frames')
    return frames


def read_calibration_file(path: Path) -> dict[str, np.ndarray]:
    values = {}
    for line in read_text(path, 'KITTI calibration').splitlines():
        key, sep, rest = line.partition(':')
        if not sep:
            continue
        try:
            values[key.strip()] = np.array([float(x) for x in rest.split()])
        except ValueError:
            continue  # e.g. calib_time: 09-Jan-2012 13:57:47
    return values


class KittiCalibration:
    """Camera intrinsics of a rectified colour camera and the Velodyne-to-image projection."""

    def __init__(self, date_dir: Path, camera: str):
        cam = read_calibration_file(date_dir / 'calib_cam_to_cam.txt')
        velo = read_calibration_file(date_dir / 'calib_velo_to_cam.txt')
        try:
            self.P = cam[f'P_rect_{camera}'].reshape(3, 4)
            self.size = tuple(int(v) for v in cam[f'S_rect_{camera}'])  # (width, height)
            R_rect = np.eye(4)
            R_rect[:3, :3] = cam['R_rect_00'].reshape(3, 3)
            velo_to_cam = np.eye(4)
            velo_to_cam[:3, :3] = velo['R'].reshape(3, 3)
            velo_to_cam[:3, 3] = velo['T']
        except (KeyError, ValueError) as error:
            raise UserError(f'KITTI calibration in {date_dir} lacks or mangles {error}') from None
        self.K = self.P[:, :3].copy()
        self.velo_to_image = self.P @ R_rect @ velo_to_cam

    def depth_map(self, velodyne_points: np.ndarray) -> np.ndarray:
        """Sparse GT (H, W) float32 from Velodyne points, NaN where no point lands.

        As the standard KITTI evaluation code does: points behind the scanner dropped, the
        projection rounded and shifted by one (KITTI's calibration is 1-based), depth = the
        point's forward (Velodyne x) distance, the nearest point kept where several land.
        """
        width, height = self.size
        points = velodyne_points[velodyne_points[:, 0] >= 0].copy()
        points[:, 3] = 1.0
        projected = points @ self.velo_to_image.T
        uv = np.round(projected[:, :2] / projected[:, 2:3]).astype(np.int64) - 1
        depth = points[:, 0]
        inside = (uv[:, 0] >= 0) & (uv[:, 1] >= 0) & (uv[:, 0] < width) & (uv[:, 1] < height)
        uv, depth = uv[inside], depth[inside]
        order = np.argsort(-depth)  # far first, so the nearest point is written last
        result = np.full((height, width), np.nan, np.float32)
        result[uv[order, 1], uv[order, 0]] = depth[order]
        return result


def read_velodyne(path: Path) -> np.ndarray:
    try:
        return np.fromfile(path, dtype=np.float32).reshape(-1, 4)
    except (OSError, ValueError) as error:
        raise UserError(f'cannot read Velodyne scan {path}: {error}') from None


def _image_stem(root: Path, frame: KittiFrame, offset: int) -> Path:
    """The image's path without its extension (.png or .jpg)."""
    folder = root / frame.drive / f'image_{CAMERAS[frame.side]}' / 'data'
    return folder / f'{frame.index + offset:010d}'


def find_image(root: Path, frame: KittiFrame, offset: int = 0) -> Path | None:
    stem = _image_stem(root, frame, offset)
    return next((path for path in (stem.with_suffix('.png'), stem.with_suffix('.jpg'))
                 if path.is_file()), None)


def image_path(root: Path, frame: KittiFrame, offset: int = 0) -> Path:
    path = find_image(root, frame, offset)
    if path is None:
        raise UserError(f'KITTI image {_image_stem(root, frame, offset)}.png (or .jpg) does not '
                        f'exist')
    return path


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f'{path} is not a readable image')
    return np.ascontiguousarray(image[..., ::-1])


class KittiRawDataset(torch.utils.data.Dataset):
    """(t-s, t, t+s) training samples (s = frame_stride) for the frames of a split file,
    resized to (width, height) with the intrinsics scaled to match."""

    def __init__(self, root: Path, split: Path, width: int, height: int,
                 augment: AugmentConfig | None = None, seed: int = 0, frame_stride: int = 1,
                 turns: bool = False):
        self.root, self.width, self.height = Path(root), width, height
        self.stride, self.turns = frame_stride, turns
        if not self.root.is_dir():
            raise UserError(f'KITTI root {self.root} is not a directory')
        self.frames = read_split(split)
        if frame_stride > 1:  # split files promise frames t-1 and t+1, not t-s and t+s
            self.frames = [frame for frame in self.frames if frame.index >= frame_stride
                           and find_image(self.root, frame, -frame_stride)
                           and find_image(self.root, frame, frame_stride)]
            if not self.frames:
                raise UserError(f'no frame of {split} has frames t-{frame_stride} and '
                                f't+{frame_stride} under {self.root}')
        self.augment, self.seed, self.epoch = augment, seed, 0
        self._calibration: dict[tuple[str, str], KittiCalibration] = {}

    def calibration(self, frame: KittiFrame) -> KittiCalibration:
        key = (frame.drive.split('/')[0], CAMERAS[frame.side])
        if key not in self._calibration:
            self._calibration[key] = KittiCalibration(self.root / key[0], key[1])
        return self._calibration[key]

    def distances(self) -> np.ndarray:
        """None known (KITTI raw holds OXTS motion, not read yet): depth stays relative."""
        return np.zeros(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: int) -> dict:
        frame = self.frames[item]
        images = {sign: read_rgb(image_path(self.root, frame, sign * self.stride))
                  for sign in (-1, 0, 1)}
        native_height, native_width = images[0].shape[:2]
        K = scale_intrinsics(self.calibration(frame).K, self.width / native_width,
                             self.height / native_height)
        resized = {sign: cv2.resize(image, (self.width, self.height),
                                    interpolation=cv2.INTER_AREA)
                   for sign, image in images.items()}
        rng = np.random.default_rng([self.seed, self.epoch, item]) if self.augment else None
        turns = triplet_turns(resized, K) if self.turns else None
        return make_sample(resized, K, rng, self.augment, turns=turns)
