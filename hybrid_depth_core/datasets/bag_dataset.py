"""Training samples from recorded bags: frames decoded once, undistorted, resized, cached.

Per bag: images in recording order -> rectified with the nearest camera_info (or undistorted
with an intrinsics YAML) -> resized to the training size -> cached on disk, keyed by the bag's
content and everything that changes the decoded frames. Then frames where the camera did not
move are dropped, sequences break at gaps in time, the last `val_fraction` of each bag (by
time) is held out, and (t - s, t, t + s) triplets are built with the frame stride s.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hybrid_depth_core.atomic import new_file
from hybrid_depth_core.recordings.bag_motion import CameraMotion, MotionOptions, read_camera_motion
from hybrid_depth_core.datasets.image_folder import read_intrinsics
from hybrid_depth_core.tracks.image_motion import (MAX_MATCHING_GAP, choose_stride, is_static,
                                                   pair_turns, stride_motions)
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.datasets.samples import AugmentConfig, make_sample
from hybrid_depth_core.recordings.time_span import TimeSpan
from hybrid_depth_core.errors import UserError, one_line
from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.images import BadMessage
from hybrid_depth_core.tracks.hints import Hints, hint_map, hint_settings, recording_hints
from hybrid_depth_core.tracks import sweep_stereo
from hybrid_depth_core.tracks.dense_hints import (matcher_for, settings as dense_settings,
                                                  with_dense_hints)
from hybrid_depth_core.tracks.shutter import (RATE_SPAN_NS, Timing, fit_timing, hints_to_raw,
                                              timing_settings, turn_rates, unrolled)
from hybrid_depth_core.user_files import read_text

CACHE_VERSION = 1           # bump when decoding changes what a cached frame holds
HINTS_VERSION = 3           # bump when tracks/'s code changes what the hints hold
# Hints are tracked on frames this wide whatever the training size: a tracking error of a pixel
# at 128 wide is too much of the triangulation's angle (docs/benchmarks.md, "Depth hints").
HINTS_WIDTH = 320
HINTS_WINDOW = 10           # frames a track is followed for
MIN_HINTS_HEIGHT = 32
GAP_FACTOR = 3.0            # a frame interval this many times the median breaks a sequence
FINGERPRINT_BYTES = 1 << 20  # hashed from each end of every bag file


@dataclass(frozen=True)
class BagSource:
    """What to read from one bag and how."""

    path: Path
    image_topic: str = ''
    camera_info_topic: str = ''
    intrinsics: str = ''          # YAML used when the bag has no camera_info
    allow_partial: bool = False
    motion: MotionOptions = MotionOptions(enabled=False)
    span: TimeSpan = TimeSpan()   # the part of the recording to use


@dataclass
class Recording:
    rgb: np.ndarray        # (N, H, W, 3) uint8 at the training size, rectified
    stamps_ns: np.ndarray  # (N,) int64
    K: np.ndarray          # (N, 3, 3) float64 intrinsics at the training size


def decode_recording(source: BagSource, width: int, height: int,
                     progress: bool = True) -> Recording:
    """Read, rectify and resize every image of the bag (see the module docstring)."""
    intrinsics = read_intrinsics(Path(source.intrinsics)) if source.intrinsics else None
    with Bag(source.path, source.image_topic or None, source.camera_info_topic or None,
             source.allow_partial) as bag:
        infos = bag.camera_infos()
        if not len(infos) and intrinsics is None:
            raise UserError(f'bag {bag.path} has no camera_info for {bag.image_topic}; give the '
                            f'intrinsics with --intrinsics FILE.yaml')
        frames, stamps, Ks = [], [], []
        size = None
        bar = tqdm(bag.images(), total=bag.message_count(bag.image_topic), unit='frame',
                   desc=f'decoding {bag.path.name}', disable=not progress)
        for stamp, rgb, _ in bar:
            if size is None:
                size = rgb.shape[:2]
            elif rgb.shape[:2] != size:
                raise UserError(f'bag {bag.path}: images change size mid-bag, from '
                                f'{size[1]}x{size[0]} to {rgb.shape[1]}x{rgb.shape[0]} at '
                                f'{stamp / 1e9:.3f} s; split the bag where the camera changed')
            if intrinsics is not None:
                camera, rectifier = intrinsics
                if rgb.shape[:2] != (camera.height, camera.width):
                    raise UserError(f'bag {bag.path}: images are {rgb.shape[1]}x{rgb.shape[0]} '
                                    f'but {source.intrinsics} describes '
                                    f'{camera.width}x{camera.height}')
            else:
                try:
                    camera, rectifier = camera_from_info(infos.nearest(stamp), rgb.shape[1],
                                                         rgb.shape[0])
                except BadMessage as error:
                    raise UserError(f'bag {bag.path}: camera_info on {bag.camera_info_topic}: '
                                    f'{error}') from None
            rgb, K = (rectifier(rgb) if rectifier else rgb), camera.K
            frames.append(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA))
            Ks.append(scale_intrinsics(K, width / rgb.shape[1], height / rgb.shape[0]))
            stamps.append(stamp)
        if bag.damage:
            print(f'warning: bag {bag.path}: training on the {len(frames)} frames left by '
                  f'its damage (above)')
    if len(frames) < 3:
        raise UserError(f'bag {source.path} has {len(frames)} readable images on '
                        f'{source.image_topic or "its image topic"}; training needs at least 3')
    order = np.argsort(np.array(stamps), kind='stable')  # header stamps can arrive out of order
    return Recording(np.stack(frames)[order], np.array(stamps, np.int64)[order],
                     np.stack(Ks)[order])


def load_recording(source: BagSource, width: int, height: int, cache_dir: Path | None,
                   progress: bool = True) -> Recording:
    """decode_recording through the disk cache (cache_dir None: no cache)."""
    if cache_dir is None:
        return decode_recording(source, width, height, progress)
    path = Path(cache_dir) / f'{_cache_key(source, width, height)}.npz'
    cached = _read_cache(path, 'cached frames', 'decoding the bag again',
                         lambda data: Recording(data['rgb'], data['stamps_ns'], data['K']))
    if cached is not None:
        return cached
    recording = decode_recording(source, width, height, progress)
    with new_file(path) as file:  # readers see the whole file or none
        np.savez(file, rgb=recording.rgb, stamps_ns=recording.stamps_ns, K=recording.K)
    return recording


def _within(recording: Recording, source: BagSource) -> Recording:
    """The part of `recording` that `source.span` holds (the cache keeps the whole bag)."""
    chosen = source.span.mask(recording.stamps_ns)
    if chosen.sum() < 3:
        raise UserError(f'bag {source.path}: {source.span.describe(recording.stamps_ns)}; '
                        f'training needs at least 3')
    return Recording(recording.rgb[chosen], recording.stamps_ns[chosen], recording.K[chosen])


def image_aspect(source: BagSource) -> float:
    """Width / height of the bag's images, as recorded."""
    with Bag(source.path, source.image_topic or None, source.camera_info_topic or None,
             source.allow_partial) as bag:
        for _, rgb, _ in bag.images():
            return rgb.shape[1] / rgb.shape[0]
    raise UserError(f'bag {source.path} has no readable image on its image topic')


def load_motion(source: BagSource, stamps_ns: np.ndarray) -> tuple[CameraMotion | None, str]:
    """The camera's motion at the recording's stamps and the report line (bag_motion)."""
    with Bag(source.path, source.image_topic or None, source.camera_info_topic or None,
             source.allow_partial) as bag:
        return read_camera_motion(bag, stamps_ns, source.motion)


def hint_frames(source: BagSource, recording: Recording, cache_dir: Path | None,
                progress: bool = True) -> Recording:
    """The frames of `recording` (the span of the bag it holds) as hints are tracked on them:
    HINTS_WIDTH wide at the bag's own aspect, through the frame cache."""
    height = max(MIN_HINTS_HEIGHT, round(HINTS_WIDTH / image_aspect(source)))
    frames = load_recording(source, HINTS_WIDTH, height, cache_dir, progress)
    frames = _within(frames, source) if not source.span.whole else frames
    if not np.array_equal(frames.stamps_ns, recording.stamps_ns):  # both decoded from the bag
        raise RuntimeError(f'bag {source.path}: the frames for depth hints are not the '
                           f'training frames')
    return frames


def load_hints(source: BagSource, frames: Recording, cache_dir: Path | None,
               motion: CameraMotion | None = None, progress: bool = True) -> Hints:
    """tracks/hints.py's hints for every one of `frames` (`hint_frames`), through the disk
    cache; pixels in those frames. Without `motion`, each window's geometry comes from its own
    tracks (up to scale); with it, from the measured poses (metres), joined, where the two
    agree, by dense hints with those poses (`_metric_hints`)."""
    poses = None if motion is None else motion.poses
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps([
            _cache_key(source, frames.rgb.shape[2], frames.rgb.shape[1]), HINTS_VERSION,
            HINTS_WINDOW, hint_settings(), dense_settings(), cv2.__version__, str(source.span),
            None if poses is None else [str(source.motion), timing_settings(), hashlib.sha256(
                np.ascontiguousarray(poses).tobytes()).hexdigest()]]).encode()).hexdigest()[:32]
        path = Path(cache_dir) / f'{key}.hints.npz'
        cached = _read_cache(path, 'cached depth hints', 'tracking them again',
                             lambda data: Hints.from_arrays(dict(data), len(frames.stamps_ns)))
        if cached is not None:
            return cached
    if poses is None:
        hints = recording_hints(frames.rgb, frames.K, None, HINTS_WINDOW,
                                progress=f'up-to-scale depth hints, {source.path.name}'
                                if progress else None)
    else:
        hints = _metric_hints(source, frames, poses, cache_dir, progress)
    if path is not None:
        with new_file(path) as file:  # readers see the whole file or none
            np.savez(file, **hints.arrays())
    return hints


def _metric_hints(source: BagSource, frames: Recording, poses: np.ndarray,
                  cache_dir: Path | None, progress: bool) -> Hints:
    """Tracked and dense metric hints (`load_hints`) of `frames` with the measured `poses` at
    their stamps. The dense ones by the matcher tracks/dense_hints.py chooses: the plane sweep
    on the frames as recorded for a camera that drives toward what it sees; otherwise optical
    flow on the frames as a global shutter would have taken them at the camera's timing
    against the motion (tracks/shutter.py, `camera_timing`), the hints carried back to the
    frames as recorded, which training sees."""
    size = (frames.rgb.shape[2], frames.rgb.shape[1])
    matcher = matcher_for(poses, frames.K[0], size)
    if progress:
        print(f'{source.path}: dense depth hints by '
              + ('plane-sweep stereo: the camera drives toward what it sees'
                 if matcher is sweep_stereo else
                 'optical flow: the camera does not drive toward what it sees'))
    timing = Timing()  # as recorded
    if matcher is not sweep_stereo:
        timing = camera_timing(source, frames, cache_dir, progress)
        if progress or not timing.recorded:
            print(f'{source.path}: {timing.report()}')
    rgb, rates = frames.rgb, None
    if not timing.recorded:
        at = frames.stamps_ns + timing.offset_ns
        poses = _poses_at(source, at)
        rates = turn_rates(_poses_at(source, at - RATE_SPAN_NS), poses,
                           _poses_at(source, at + RATE_SPAN_NS), RATE_SPAN_NS / 1e9)
        rgb = unrolled(frames.rgb, frames.K, rates, timing.readout_s)
    hints = recording_hints(rgb, frames.K, poses, HINTS_WINDOW,
                            progress=f'metric depth hints, {source.path.name}' if progress
                            else None)
    hints, why_not = with_dense_hints(
        hints, rgb, frames.K, poses, matcher,
        progress=f'dense depth hints, {source.path.name}' if progress else None)
    if why_not:  # (a cached result keeps the decision, not this line)
        print(f'{source.path}: {why_not}')
    if timing.recorded:
        return hints
    return hints_to_raw(hints, frames.K, rates, timing.readout_s, size)


def camera_timing(source: BagSource, frames: Recording, cache_dir: Path | None,
                  progress: bool = False) -> Timing:
    """tracks/shutter.py's fit of the camera's timing against the bag's motion, on `frames`
    (`hint_frames`), through the disk cache."""
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps([
            _cache_key(source, frames.rgb.shape[2], frames.rgb.shape[1]), timing_settings(),
            hint_settings(), cv2.__version__, str(source.span),
            str(source.motion)]).encode()).hexdigest()[:32]
        path = Path(cache_dir) / f'{key}.timing.npz'
        cached = _read_cache(path, 'cached camera timing', 'fitting it again',
                             lambda data: Timing(int(data['offset_ns']), float(data['readout_s']),
                                                 float(data['fit_px']),
                                                 float(data['recorded_px'])))
        if cached is not None:
            return cached
    timing = fit_timing(frames.rgb, frames.K, frames.stamps_ns,
                        lambda stamps_ns: _poses_at(source, stamps_ns),
                        f'camera timing against its motion, {source.path.name}' if progress
                        else None)
    if path is not None:
        with new_file(path) as file:
            np.savez(file, **dataclasses.asdict(timing))
    return timing


def _poses_at(source: BagSource, stamps_ns: np.ndarray) -> np.ndarray:
    """The camera's poses at (sorted) stamps, NaN where the motion does not say."""
    motion, _ = load_motion(source, stamps_ns)
    return np.full((len(stamps_ns), 4, 4), np.nan) if motion is None else motion.poses


def _read_cache(path: Path, what: str, remedy: str, read: Callable):
    """read(the arrays of the .npz at `path`), or None where there is no such file or it cannot
    be read: the caller then makes it again and rewrites it whole (new_file). A cache file cut
    short (a full disk, a copied cache), or damaged, is said once and never stops training."""
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            return read(data)
    except Exception as error:  # noqa: BLE001 - BadZipFile, zlib, EOF, a missing array: alike
        print(f'warning: {what} {path} cannot be read ({type(error).__name__}: '
              f'{one_line(error, 120)}); {remedy}')
        return None


def _cache_key(source: BagSource, width: int, height: int) -> str:
    """Changes with the bag's content (each file's size and first and last MiB: cheap on big
    bags, and a re-recorded bag differs there) and with every setting that changes frames."""
    digest = hashlib.sha256()
    root = Path(source.path)
    files = sorted(p for p in root.rglob('*') if p.is_file()) if root.is_dir() else [root]
    for file in files:
        size = file.stat().st_size
        digest.update(f'{file.name}:{size}'.encode())
        with open(file, 'rb') as handle:
            digest.update(handle.read(FINGERPRINT_BYTES))
            handle.seek(max(0, size - FINGERPRINT_BYTES))
            digest.update(handle.read(FINGERPRINT_BYTES))
    # Read as the user's file it is: a missing or non-UTF-8 one is named before any decoding.
    intrinsics = (read_text(source.intrinsics, 'intrinsics').encode() if source.intrinsics
                  else b'')
    digest.update(intrinsics)
    digest.update(json.dumps([CACHE_VERSION, source.image_topic, source.camera_info_topic,
                              source.allow_partial, width, height]).encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Triplets:
    train: list[tuple[int, int, int]]
    val: list[tuple[int, int, int]]
    static_frames: int  # dropped: the camera did not move
    gaps: int           # sequence breaks
    stride: int         # the frame stride used (chosen from the motion when asked for 0)
    motion: float       # median parallax at that stride, fraction of the width
    # (N, 3, 3) per frame of the recording: the turn from the frame `stride` kept frames before
    # it in its sequence (motion.pair_turns; the identity where there is none); None when not
    # asked for
    turns: np.ndarray | None


def build_triplets(recording: Recording, stride: int = 0, static_threshold: float = 1.0,
                   val_fraction: float = 0.1, turns: bool = False) -> Triplets:
    """(previous, current, next) frame indices. Frames identical to the last kept one (up to
    `static_threshold` grey levels) are dropped; a gap longer than GAP_FACTOR x the median
    frame interval starts a new sequence; frames in the last `val_fraction` of the recording's
    time span are validation. No triplet spans a gap or the train/val boundary. Stride 0: the
    smallest stride whose median parallax (motion.parallax) on the training frames reaches
    motion.MATCHING_MOTION (motion.choose_stride)."""
    stamps = recording.stamps_ns
    kept, static = [0], 0
    for index in range(1, len(stamps)):
        if is_static(recording.rgb[kept[-1]], recording.rgb[index], static_threshold):
            static += 1
        else:
            kept.append(index)
    # Gaps are in the recording (messages missing), not where standing frames were dropped:
    # a camera that stopped carries on from where it stood.
    intervals = np.diff(stamps)
    limit = GAP_FACTOR * float(np.median(intervals)) if len(intervals) else 0.0
    boundary = stamps[0] + (1 - val_fraction) * (stamps[-1] - stamps[0])
    segments, gaps = [[kept[0]]], 0
    for previous, index in zip(kept, kept[1:]):
        gap = intervals[previous:index].max() > limit
        crosses = (stamps[previous] <= boundary) != (stamps[index] <= boundary)
        if gap or crosses:
            gaps += gap
            segments.append([])
        segments[-1].append(index)
    training = [segment for segment in segments if stamps[segment[0]] <= boundary]
    longest = max((len(segment) for segment in training), default=0)
    motions = stride_motions([recording.rgb[segment] for segment in training],
                             max(1, min(MAX_MATCHING_GAP, (longest - 1) // 2)))
    if stride == 0:
        stride = choose_stride(motions)
    train, val = [], []
    measured = np.tile(np.eye(3), (len(stamps), 1, 1)) if turns else None
    for segment in segments:
        if turns:
            measured[segment] = pair_turns(recording.rgb[segment], recording.K[segment], stride)
        for i in range(stride, len(segment) - stride):
            triplet = (segment[i - stride], segment[i], segment[i + stride])
            (train if stamps[segment[i]] <= boundary else val).append(triplet)
    return Triplets(train, val, static, gaps, stride, motions.get(stride, float('nan')),
                    measured)


class BagDataset(torch.utils.data.Dataset):
    """Training (or validation) triplets of one or more bags, in the sample contract."""

    def __init__(self, sources: list[BagSource], width: int, height: int,
                 augment: AugmentConfig | None = None, seed: int = 0, stride: int = 0,
                 static_threshold: float = 1.0, val_fraction: float = 0.1,
                 split: str = 'train', cache_dir: Path | None = None, progress: bool = True,
                 turns: bool = False, hints: bool = False):
        self.recordings, self.items, self.strides, self.held_out_items = [], [], [], []
        # per recording, [hints from the images alone (up to scale), and from the measured
        # motion (metres) where there is one] (tracks.hints.Hints; empty: not asked for)
        self.hints = []
        self.turns = []   # per recording, Triplets.turns
        self.motion = []  # per recording, CameraMotion or None
        for source in sources:
            recording = load_recording(source, width, height, cache_dir, progress)
            if not source.span.whole:
                if progress:
                    print(f'{source.path}: {source.span.describe(recording.stamps_ns)}')
                recording = _within(recording, source)
            triplets = build_triplets(recording, stride, static_threshold, val_fraction, turns)
            motion, motion_report = (load_motion(source, recording.stamps_ns)
                                     if source.motion.enabled else (None, ''))
            chosen = getattr(triplets, split)
            self.held_out_items += [(len(self.recordings), triplet) for triplet in triplets.val]
            if progress:
                chosen_by = 'chosen from the motion' if stride == 0 else 'as configured'
                print(f'{source.path}: {len(recording.stamps_ns)} frames, '
                      f'{triplets.static_frames} static skipped, {triplets.gaps} gaps; frame '
                      f'stride {triplets.stride} ({chosen_by}; median parallax '
                      f'{100 * triplets.motion:.1f}% of the width); '
                      f'{len(triplets.train)} train / {len(triplets.val)} val triplets'
                      + (f'; {motion_report}' if motion_report else ''))
            found = []
            if hints:
                frames = hint_frames(source, recording, cache_dir, progress)
                found = [load_hints(source, frames, cache_dir, kind, progress)
                         for kind in ([None] if motion is None else [None, motion])]
            if progress:
                for kind in found:
                    print(f'{source.path}: {"metric" if kind.metric else "up-to-scale"} '
                          f'{kind.report()}')
            self.hints.append(found)
            self.strides.append(triplets.stride)
            self.motion.append(motion)
            self.turns.append(triplets.turns)
            self.items += [(len(self.recordings), triplet) for triplet in chosen]
            self.recordings.append(recording)
        if not self.items:
            names = ', '.join(str(source.path) for source in sources)
            raise UserError(f'no usable {split} triplets in {names} (too few moving frames; '
                            f'lower the frame stride or the static threshold)')
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.with_motion = any(source.motion.enabled for source in sources)
        self.hint_kinds = {kind.metric for kinds in self.hints for kind in kinds}

    def distances(self) -> np.ndarray:
        """The known distances of the training pairs (t - s, t) and (t, t + s), metres."""
        found = [self._distance(which, a, b) for which, (previous, current, following)
                 in self.items for a, b in ((current, previous), (current, following))]
        return np.array([d for d in found if np.isfinite(d)])

    def _distance(self, which: int, a: int, b: int) -> float:
        motion = self.motion[which]
        return float('nan') if motion is None else motion.distance(a, b)

    def held_out(self) -> BagDataset | None:
        """The validation triplets of the same bags, unaugmented (None if there are none)."""
        if not self.held_out_items:
            return None
        held_out = copy.copy(self)
        held_out.items, held_out.augment = self.held_out_items, None
        return held_out

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: int) -> dict:
        which, (previous, current, following) = self.items[item]
        recording = self.recordings[which]
        frames = {-1: recording.rgb[previous], 0: recording.rgb[current],
                  1: recording.rgb[following]}
        rng = np.random.default_rng([self.seed, self.epoch, item]) if self.augment else None
        measured = self.turns[which]
        turns = (None if measured is None else
                 {-1: measured[current], 1: measured[following]})
        distances = ({-1: self._distance(which, current, previous),
                      1: self._distance(which, current, following)}
                     if self.with_motion else None)
        height, width = recording.rgb.shape[1:3]
        # every sample carries every kind the dataset has (a batch collates alike): NaN maps
        # for a recording without that kind (a bag without motion beside one with)
        hints = {metric: np.full((height, width), np.nan, np.float32)
                 for metric in self.hint_kinds}
        hints.update({kind.metric: hint_map(kind.pixels[current], kind.depths[current],
                                            (width / kind.size[0], height / kind.size[1]),
                                            width, height)
                      for kind in self.hints[which]})
        return make_sample(frames, recording.K[current], rng, self.augment, turns=turns,
                           distances=distances, hints=hints or None)
