"""A rolling shutter and a time offset against the measured motion (tracks/shutter.py): on a room
rendered row by row by a turning camera, the fit finds the readout and offset it was rendered
with, and keeps a global shutter as recorded; the unrolled frames are the room as a global
shutter sees it: training's metric hints (datasets/bag_dataset.py), found on them and carried
back, land on the recorded pixels at the rendered depth, where hints found as if the shutter
were global do not."""
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from hybrid_depth_core.datasets import bag_dataset
from hybrid_depth_core.synthetic import raycast, textures
from hybrid_depth_core.synthetic.room import RoomWalk, RoomWalkConfig
from hybrid_depth_core.tracks import shutter
from hybrid_depth_core.tracks.hints import recording_hints, resized_pixels
from hybrid_depth_core.tracks import flow_stereo
from hybrid_depth_core.tracks.dense_hints import matcher_for, with_dense_hints

RATE = 30.0                                # frames per second
AXIS = np.array([0.1, 0.99, 0.05]) / np.linalg.norm([0.1, 0.99, 0.05])  # mostly a pan
PEAK, SWAY = 1.0, 1.0                      # rad/s at most, Hz: a handheld camera's sway
WALK = np.array([0.25, 0.0, 0.05])         # m/s in the camera's first frame
BAND = 8                                   # rows the renderer casts at once
# (At a constant rate of turn neither a readout nor an offset shows in the tracks: every
# frame's rows are turned alike, and poses shifted in time differ by one fixed transform.)


def _rates(seconds: float) -> np.ndarray:
    """The angular velocity (rad/s, body frame) at `seconds` and its rate of change."""
    phase = 2 * np.pi * SWAY * seconds
    return AXIS * PEAK * np.array([[np.sin(phase)], [2 * np.pi * SWAY * np.cos(phase)]])


def _pose(start: np.ndarray, seconds) -> np.ndarray:
    angle = PEAK / (2 * np.pi * SWAY) * (1 - np.cos(2 * np.pi * SWAY * seconds))
    pose = start.copy()
    pose[:3, :3] = start[:3, :3] @ cv2.Rodrigues(AXIS * angle)[0]
    pose[:3, 3] = start[:3, 3] + start[:3, :3] @ WALK * seconds
    return pose


def _rolling_shutter_room(readout: float, offset: float, frames: int = 24):
    """Frames of a room, each row rendered from the pose at its own time (frame i's middle row
    at i / RATE, a row `readout` / height later than the one above it), stamped `offset`
    before its middle row's time; the rendered depth of each pixel in its row's camera; and
    poses_at(stamps) giving the camera's exact pose at any stamp."""
    walk = RoomWalk(RoomWalkConfig(width=320, height=240, frames=70, seed=1))
    start, camera = walk.poses[40], walk.camera
    rays = camera.pixel_rays()
    rows = (np.arange(camera.height) / camera.height - 0.5) * readout
    rgb, depth = [], []
    for i in range(frames):
        middle = _pose(start, i / RATE)
        turned = np.stack([_pose(start, i / RATE + s)[:3, :3] for s in rows])  # (H, 3, 3)
        dirs = np.einsum('hjk,hwk->hwj', turned, rays)
        hits = [_cast(walk, dirs, _pose(start, i / RATE + rows[top:top + BAND].mean()), top)
                for top in range(0, camera.height, BAND)]
        hits = raycast.Hits(*(np.concatenate(parts) for parts in zip(
            *((h.depth, h.material, h.index, h.face) for h in hits))))
        shade = textures.shade(walk.scene, hits, middle[:3, 3], dirs, camera.fx)
        rgb.append(np.round(shade * 255).astype(np.uint8))
        depth.append(hits.depth.astype(np.float32))
    stamps = np.round((np.arange(frames) / RATE - offset) * 1e9).astype(np.int64)

    def poses_at(stamps_ns):
        return np.stack([_pose(start, t / 1e9) for t in stamps_ns])

    K = np.repeat(camera.K[None], frames, 0)
    return np.stack(rgb), np.stack(depth), K, stamps, poses_at


def _cast(walk, dirs, pose, top):
    """The hits of rows top to top + BAND of `dirs`, cast from `pose`: the renderer skips the
    boxes that do not project into the image as that pose sees it, so each band of rows is
    cast with its own pose (within a band the camera turns by a tenth of a pixel)."""
    band = dataclasses.replace(walk.camera, height=min(BAND, walk.camera.height - top),
                               cy=walk.camera.cy - top)
    return raycast.cast(walk.scene, band, pose, dirs[top:top + BAND], walk.max_depth)


@pytest.fixture(scope='module')
def rolling():
    return _rolling_shutter_room(readout=0.03, offset=0.01)


def test_to_raw_puts_a_point_where_the_rolling_shutter_saw_it(rolling):
    _, _, K, _, _ = rolling
    K = K[0]
    points = np.array([[0.3, -0.2, 2.0], [-0.5, 0.35, 1.5], [0.0, 0.0, 3.0]])  # mid-row camera
    rates, readout, height = np.stack([AXIS * PEAK, np.zeros(3)]), 0.03, 240
    seen, depths = [], []
    for X in points:  # the row it is seen on fixes the time it is seen at: solve for it
        row = (K @ X)[1] / X[2]
        for _ in range(20):
            at_row = cv2.Rodrigues(AXIS * PEAK * (row / height - 0.5) * readout)[0].T @ X
            pixel = (K @ at_row)[:2] / at_row[2]
            row = pixel[1]
        seen.append(pixel)
        depths.append(at_row[2])
    middle = (points @ K.T)[:, :2] / points[:, 2:]
    raw, raw_depths = shutter.to_raw(middle, points[:, 2], K, rates, readout, height)
    np.testing.assert_allclose(raw, np.array(seen), atol=1e-3)
    np.testing.assert_allclose(raw_depths, np.array(depths), rtol=1e-6)
    assert np.abs(raw - middle).max() > 1.0  # the shutter moved them: the test measures that
    unmoved, _ = shutter.to_raw(middle, None, K, rates, 0.0, height)
    np.testing.assert_allclose(unmoved, middle, atol=1e-9)


def test_the_fit_finds_the_readout_and_offset_and_keeps_a_global_shutter(rolling, monkeypatch):
    monkeypatch.setattr(shutter, 'OFFSETS_MS', (0, 10, 20))
    monkeypatch.setattr(shutter, 'READOUTS_MS', (0, 30))
    rgb, _, K, stamps, poses_at = rolling
    timing = shutter.fit_timing(rgb, K, stamps, poses_at)
    assert (timing.offset_ns, timing.readout_s) == (10_000_000, 0.03)
    assert timing.fit_px < 0.8 * timing.recorded_px and 'readout 30 ms' in timing.report()
    rgb, _, K, stamps, poses_at = _rolling_shutter_room(readout=0.0, offset=0.0, frames=12)
    timing = shutter.fit_timing(rgb, K, stamps, poses_at)
    assert timing.recorded and 'as recorded' in timing.report()


def test_hints_found_on_the_unrolled_frames_are_the_recorded_pixels_depth(rolling, monkeypatch):
    monkeypatch.setattr(shutter, 'OFFSETS_MS', (0, 10, 20))
    monkeypatch.setattr(shutter, 'READOUTS_MS', (0, 30))
    rgb, depth, K, stamps, poses_at = rolling
    at = stamps + 10_000_000
    rates = shutter.turn_rates(poses_at(at - shutter.RATE_SPAN_NS), poses_at(at),
                               poses_at(at + shutter.RATE_SPAN_NS), shutter.RATE_SPAN_NS / 1e9)
    truth = np.stack([_rates(t / 1e9) for t in at])
    np.testing.assert_allclose(rates[:, 0], truth[:, 0], atol=2e-3)
    np.testing.assert_allclose(rates[:, 1], truth[:, 1], atol=5e-2)
    # training's metric hints (bag_dataset): a turning camera's, by optical flow, with the
    # timing fitted, found on the unrolled frames and carried back to the recorded ones
    monkeypatch.setattr(bag_dataset, '_poses_at', lambda source, stamps_ns: poses_at(stamps_ns))
    monkeypatch.setattr(bag_dataset, 'HINTS_WINDOW', 8)
    assert matcher_for(poses_at(stamps), K[0], (320, 240)) is flow_stereo
    frames = bag_dataset.Recording(rgb, stamps, K)
    source = bag_dataset.BagSource(Path('rolling shutter room'))
    timing = bag_dataset.camera_timing(source, frames, None)
    assert (timing.offset_ns, timing.readout_s) == (10_000_000, 0.03)
    hints = bag_dataset._metric_hints(source, frames, poses_at(stamps), None, progress=False)
    as_recorded, _ = with_dense_hints(recording_hints(rgb, K, poses_at(stamps), window=8), rgb,
                                      K, poses_at(stamps), flow_stereo)

    def errors(found):
        """Per hint, its error against the rendered depth of its pixel (the nearest of the 3x3
        around it: corners sit on edges)."""
        scale = np.array(rgb.shape[2:0:-1], np.float64) / np.array(found.size, np.float64)
        out = []
        for frame, pixels, depths in zip(depth, found.pixels, found.depths):
            for (u, v), z in zip(resized_pixels(pixels, scale), depths):
                patch = frame[max(0, round(v) - 1):round(v) + 2, max(0, round(u) - 1):round(u) + 2]
                patch = patch[np.isfinite(patch)]
                if len(patch):
                    out.append(np.min(np.abs(patch - z) / patch))
        return np.array(out)

    timed_errors, recorded_errors = errors(hints), errors(as_recorded)
    assert len(timed_errors) > 300 and np.median(timed_errors) < 0.04
    assert np.median(recorded_errors) > 3 * np.median(timed_errors)
