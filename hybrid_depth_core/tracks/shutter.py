"""When each pixel was taken, against the measured motion: a rolling shutter and a time offset.

A rolling-shutter camera exposes its rows one after another over `readout` seconds, and the
stamp of its image may not be the time the motion source gives for the same instant. While a
handheld camera turns, a few milliseconds move the image by about as much as the whole
parallax that depth hints measure, so hints triangulated with the poses at the image stamps
are biased. Here an image is taken as seen at its stamp plus `offset` by its middle row, and
row r at (r / height - 1/2) x readout after that; over so short a time the camera's turn is
taken as a constant angular velocity and acceleration (from its poses then and RATE_SPAN_NS
either side: a handheld camera's turn changes within a readout) and its translation is left
out (millimetres at walking pace).

`fit_timing` chooses the offset and readout on a grid where the recording's own tracks fit the
measured poses best (the median over tracks of their worst reprojection error after
triangulation with each observation's own pose), and keeps the recorded timing unless that is
MIN_GAIN better. `unrolled` redraws frames as a global shutter would have taken them at that
time, so that the tracking and stereo of tracks/ run unchanged on them, and `hints_to_raw`
carries hints found there back to the recorded frames, which training sees
(datasets/bag_dataset.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hybrid_depth_core.geometry import axis_angle_to_matrix
from hybrid_depth_core.tracks.hints import (MIN_VIEWS, Hints, linear_points, resized_pixels,
                                            track)

OFFSETS_MS = (-20, -15, -10, -5, 0, 5, 10, 15, 20)
READOUTS_MS = (0, 10, 20, 30, 40)
MIN_GAIN = 0.9          # the chosen timing's fit must be this times the recorded one's or less
RATE_SPAN_NS = 10_000_000  # the turn's rates from the poses this far either side
FIT_WINDOWS = 40        # windows of tracks the fit uses at most, spread over the recording
FIT_WINDOW = 10         # frames per window


def timing_settings() -> list:
    """What the timing depends on besides the frames and poses (for caches)."""
    return [OFFSETS_MS, READOUTS_MS, MIN_GAIN, RATE_SPAN_NS, FIT_WINDOWS, FIT_WINDOW]


@dataclass(frozen=True)
class Timing:
    """A camera's timing against its motion (the module docstring), and how well it fits."""

    offset_ns: int = 0
    readout_s: float = 0.0
    fit_px: float = float('nan')       # the tracks' fit with this timing
    recorded_px: float = float('nan')  # and with the recorded one (offset 0, global shutter)

    @property
    def recorded(self) -> bool:
        return self.offset_ns == 0 and self.readout_s == 0

    def report(self) -> str:
        if not np.isfinite(self.recorded_px):
            return 'camera timing: as recorded (too few tracks to fit it)'
        fit = (f'tracks fit the motion to {self.fit_px:.2f} px, {self.recorded_px:.2f} px as '
               f'recorded')
        if self.recorded:
            return f'camera timing: as recorded ({self.recorded_px:.2f} px)'
        return (f'camera timing: image stamps {self.offset_ns / 1e6:+.0f} ms against the '
                f'motion, rolling-shutter readout {1e3 * self.readout_s:.0f} ms ({fit})')


def turn_rates(before: np.ndarray, now: np.ndarray, after: np.ndarray,
               seconds: float) -> np.ndarray:
    """The camera's turn (N, 2, 3): body angular velocity w (rad/s) and its rate of change a
    (rad/s^2), R(t + s) = R(t) exp(w s + a s^2 / 2), from poses T_world_camera (N, 4, 4)
    `seconds` before, at and after t; 0 where any is unknown."""
    rates = np.zeros((len(now), 2, 3))
    for i, poses in enumerate(zip(before, now, after)):
        if all(np.isfinite(pose).all() for pose in poses):
            early, late = (cv2.Rodrigues(a[:3, :3].T @ b[:3, :3])[0][:, 0] / seconds
                           for a, b in zip(poses, poses[1:]))
            rates[i] = (early + late) / 2, (late - early) / seconds
    return rates


def _turned(rates: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Rotations (M, 3, 3) of a camera turning at `rates` (M, 2, 3) or (2, 3) after `times`
    (M,) seconds."""
    rates = np.broadcast_to(rates, (len(times), 2, 3))
    t = times[:, None]
    return axis_angle_to_matrix(torch.from_numpy(rates[:, 0] * t + rates[:, 1] * t ** 2 / 2)
                                ).numpy()


def to_raw(pixels: np.ndarray, depths: np.ndarray | None, K: np.ndarray, rates: np.ndarray,
           readout: float, height: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels (M, 2) of an image as a global shutter takes it at the middle row's time (and
    their depths, or None) -> where the rolling shutter put them, and their depths there. The
    row a point lands on sets its time, so this iterates from the row it has in the global
    shutter's image."""
    rays = np.c_[pixels, np.ones(len(pixels))] @ np.linalg.inv(K).T
    if depths is not None:
        rays = rays * np.asarray(depths)[:, None]
    landed, points = np.asarray(pixels, np.float64), rays
    for _ in range(3):
        times = (landed[:, 1] / height - 0.5) * readout
        points = (_turned(rates, times).transpose(0, 2, 1) @ rays[..., None])[..., 0]
        projected = points @ K.T
        landed = projected[:, :2] / projected[:, 2:]
    return landed, (None if depths is None else points[:, 2])


def unrolled(rgb: np.ndarray, K: np.ndarray, rates: np.ndarray, readout: float) -> np.ndarray:
    """Frames (N, H, W, 3) of a rolling shutter with intrinsics K (N, 3, 3) turning at `rates`
    (N, 2, 3; `turn_rates`) -> as a global shutter would have taken them at their middle row's
    time."""
    height, width = rgb.shape[1:3]
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    grid = np.c_[u.ravel(), v.ravel()]
    out = np.empty_like(rgb)
    for i, frame in enumerate(rgb):
        source, _ = to_raw(grid, None, K[i], rates[i], readout, height)
        out[i] = cv2.remap(frame, *source.T.reshape(2, height, width).astype(np.float32),
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def fit_timing(rgb: np.ndarray, K: np.ndarray, stamps_ns: np.ndarray,
               poses_at: Callable[[np.ndarray], np.ndarray],
               progress: str | None = None) -> Timing:
    """The timing (module docstring) of frames `rgb` (N, H, W, 3) with intrinsics K (N, 3, 3)
    and stamps, `poses_at(stamps_ns)` giving the measured T_world_camera (NaN unknown). Only
    the frames of FIT_WINDOWS windows at most are tracked and posed, however long the
    recording."""
    # windows overlap by half at most: more would repeat the same tracks at the same cost
    count = min(FIT_WINDOWS, max(1, 2 * len(rgb) // FIT_WINDOW - 1))
    starts = np.unique(np.linspace(0, max(0, len(rgb) - FIT_WINDOW), count).astype(int))
    used = np.unique(np.minimum(starts[:, None] + np.arange(FIT_WINDOW), len(rgb) - 1))
    grey = [None] * len(rgb)
    for index in used:
        grey[index] = cv2.cvtColor(rgb[index], cv2.COLOR_RGB2GRAY)
    windows = [(start, *track(grey, start, FIT_WINDOW)) for start in starts]
    scores = {}
    for offset_ms in tqdm(OFFSETS_MS, desc=progress, unit='offset', disable=progress is None):
        at = stamps_ns[used] + int(offset_ms * 1e6)
        poses = np.full((len(rgb), 4, 4), np.nan)
        rates = np.zeros((len(rgb), 2, 3))
        poses[used] = poses_at(at)
        rates[used] = turn_rates(poses_at(at - RATE_SPAN_NS), poses[used],
                                 poses_at(at + RATE_SPAN_NS), RATE_SPAN_NS / 1e9)
        for readout_ms in READOUTS_MS:
            scores[offset_ms, readout_ms] = _fit(windows, K, poses, rates, readout_ms / 1e3,
                                                 rgb.shape[1])
    recorded = scores[0, 0]
    (offset_ms, readout_ms), best = min(scores.items(),
                                        key=lambda item: np.nan_to_num(item[1], nan=np.inf))
    if not np.isfinite(recorded):
        return Timing()
    if best > MIN_GAIN * recorded:
        return Timing(0, 0.0, recorded, recorded)
    return Timing(int(offset_ms * 1e6), readout_ms / 1e3, best, recorded)


def _fit(windows, K, poses, rates, readout, height) -> float:
    """The median over the windows' tracks seen MIN_VIEWS times of their worst reprojection
    error (pixels) after linear triangulation (hints.linear_points), each observation with its
    row's pose and the window's first intrinsics, as recording_hints triangulates."""
    worst = []
    for start, points, seen in windows:
        for t in np.flatnonzero(seen.sum(1) >= MIN_VIEWS):
            views = start + np.flatnonzero(seen[t])
            if not np.isfinite(poses[views]).all():
                continue
            pixels = points[t, seen[t]].astype(np.float64)
            times = (pixels[:, 1] / height - 0.5) * readout
            at_row = poses[views].copy()
            at_row[:, :3, :3] = at_row[:, :3, :3] @ _turned(rates[views], times)
            with np.errstate(divide='ignore', invalid='ignore'):  # a point at infinity
                X = linear_points(pixels[None], K[start], at_row)[0]
            if not np.isfinite(X).all():
                continue
            seen_at = (np.linalg.inv(at_row)[:, :3, :] @ np.append(X, 1.0)) @ K[start].T
            if (seen_at[:, 2] <= 0).any():
                continue
            worst.append(np.linalg.norm(seen_at[:, :2] / seen_at[:, 2:] - pixels, axis=1).max())
    return float(np.median(worst)) if len(worst) >= 20 else float('nan')


def hints_to_raw(hints: Hints, K: np.ndarray, rates: np.ndarray, readout: float,
                 size: tuple[int, int]) -> Hints:
    """`hints` found on `unrolled` frames of `size` (width, height; intrinsics K (N, 3, 3)) ->
    the same hints at the recorded frames' pixels and depths (`to_raw`), in their own size."""
    scale = np.array(size, np.float64) / np.array(hints.size, np.float64)
    pixels, depths = [], []
    for i, (found, depth) in enumerate(zip(hints.pixels, hints.depths)):
        if len(depth):
            found, depth = to_raw(resized_pixels(found, scale), depth, K[i], rates[i], readout,
                                  size[1])
            found = resized_pixels(found, 1 / scale)
        pixels.append(found)
        depths.append(depth)
    return Hints(pixels, depths, hints.angles, hints.metric, hints.size)
