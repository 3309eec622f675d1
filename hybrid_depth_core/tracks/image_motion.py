"""Did the camera move between two frames, and by how much in the image? Multi-frame depth
needs a baseline: view synthesis and the cost volume learn nothing from a camera that stood
still, and too little image motion between the frames of a triplet is the same problem."""
from __future__ import annotations

import cv2
import numpy as np

from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.tracks.hints import follow

# Mean |difference| in grey levels, at 1/4 size, below which a camera counts as static:
# above sensor and compression noise, below what any real motion in a textured scene gives.
STATIC_DIFFERENCE = 1.0

# Frames are compared at this width (grey, area-resampled), so that a motion measured on the
# training frames and one measured on a live camera's frames are the same number.
MOTION_WIDTH = 160
# Median parallax (image motion a homography does not explain: what translation adds to a
# turn), as a fraction of the image width, that frames used for matching should have. Training
# picks the frame stride that reaches it and inference the keyframe that does. It is the
# street's between consecutive frames, where training learns (docs/benchmarks.md, "Training
# that learns on any recording"); a handheld camera that mostly turns needs longer strides.
MATCHING_MOTION = 0.004
# The most frames apart two matched frames may be: the longest stride training chooses and the
# oldest keyframe inference keeps.
MAX_MATCHING_GAP = 10
# Corners tracked from each frame: the median of fewer moved with the choice of corners.
CORNERS = 150
_MIN_TRACKS = 8  # fewer tracked corners than this: the motion is unknown (textureless frames)


def is_static(previous: np.ndarray, current: np.ndarray,
              threshold: float = STATIC_DIFFERENCE) -> bool:
    """True when two RGB frames differ by less than `threshold` grey levels on average: the
    camera stood still, and a cost volume over a zero baseline says nothing about depth.
    Compared at 1/4 size, where area averaging cuts per-pixel noise by 4."""
    size = (max(1, current.shape[1] // 4), max(1, current.shape[0] // 4))
    small = [cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), size,
                        interpolation=cv2.INTER_AREA).astype(np.float32)
             for image in (previous, current)]
    return float(np.abs(small[0] - small[1]).mean()) < threshold


def motion_image(rgb: np.ndarray) -> np.ndarray:
    """The grey MOTION_WIDTH-wide image motion is measured on."""
    height = max(8, round(rgb.shape[0] * MOTION_WIDTH / rgb.shape[1]))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return cv2.resize(grey, (MOTION_WIDTH, height), interpolation=cv2.INTER_AREA)


def motion_intrinsics(K: np.ndarray, width: int) -> np.ndarray:
    """The intrinsics of the motion image of frames `width` wide with intrinsics K."""
    scale = MOTION_WIDTH / width
    return scale_intrinsics(K, scale, scale)


class MotionTracker:
    """Image motion (parallax) between the newest frame and each of the `history` frames before
    it.

    Corners found in each frame are tracked frame to frame (pyramidal Lucas-Kanade, kept only
    where tracking back lands within half a pixel of the start), so motions many frames apart
    are measured through small, reliable steps; matching two distant frames directly loses
    exactly the corners that moved most. The motion between an earlier frame and the newest is
    the parallax of that frame's surviving corners (`parallax`).
    """

    def __init__(self, history: int):
        self.history = history
        self._width = MOTION_WIDTH  # of the pushed frames
        self._grey: np.ndarray | None = None
        self._sets: list[tuple[np.ndarray, np.ndarray]] = []  # (start, now), newest last

    def push(self, rgb: np.ndarray) -> None:
        self._width = rgb.shape[1]
        grey = motion_image(rgb)
        if self._grey is not None and self._grey.shape != grey.shape:
            self.reset()
        if self._grey is not None and self._sets:
            self._sets = _track(self._grey, grey, self._sets)
        corners = cv2.goodFeaturesToTrack(grey, maxCorners=CORNERS, qualityLevel=0.01,
                                          minDistance=5)
        start = (np.zeros((0, 2), np.float32) if corners is None
                 else corners[:, 0].astype(np.float32))
        self._sets = (self._sets + [(start, start.copy())])[-(self.history + 1):]
        self._grey = grey

    def motion(self, age: int) -> float:
        """Motion from the frame `age` pushes before the newest to the newest (fraction of the
        width); NaN if that frame is not held or too few of its corners survived."""
        if not 1 <= age < len(self._sets):
            return float('nan')
        start, now = self._sets[-1 - age]
        if len(start) < _MIN_TRACKS:
            return float('nan')
        return parallax(start, now)

    def matches(self, age: int) -> tuple[np.ndarray, np.ndarray]:
        """The surviving corners of the frame `age` pushes back: (N, 2) positions there and in
        the newest frame, in pixels of the motion image (`motion_scale` converts)."""
        if not 1 <= age < len(self._sets):
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        return self._sets[-1 - age]

    def rotation(self, age: int, K: np.ndarray) -> np.ndarray:
        """The camera's turn from the frame `age` pushes back to the newest (`turn`), for
        frames of the pushed size with intrinsics K (3, 3); the identity if it is unknown."""
        earlier, later = self.matches(age)
        return turn(earlier, later, motion_intrinsics(K, self._width))

    def reset(self) -> None:
        self._grey, self._sets = None, []


def parallax(start: np.ndarray, now: np.ndarray) -> float:
    """The median displacement of corners from `start` to `now` (motion-image pixels) that a
    homography does not explain, as a fraction of the width. A camera that only turns moves
    every point by a homography (K R K^-1) and shows no depth; what is left is parallax, from
    translation. (Least squares, so the same corners give the same number; the corners were
    already checked by tracking back. A scene that is one plane shows none either: its motion
    is a homography too.)"""
    H, _ = cv2.findHomography(start, now, 0)
    if H is None:
        return float('nan')
    mapped = cv2.perspectiveTransform(start.reshape(-1, 1, 2).astype(np.float64), H)[:, 0]
    return float(np.median(np.linalg.norm(now - mapped, axis=1))) / MOTION_WIDTH


def turn(earlier: np.ndarray, later: np.ndarray, K: np.ndarray) -> np.ndarray:
    """The rotation R (3, 3) that best turns the viewing rays of corners at `earlier` onto those
    at `later` (pixels of images with intrinsics K): the rotation of T_later_earlier, the pose
    network's convention, if the camera only turned. Robust least squares (Kabsch, reweighted
    so that the parallax of near corners counts less); the identity if too few corners.

    It is the rotation training and inference give the pose network to correct (its `turn`
    argument): a handheld camera turns up to about 20 degrees between frames a third of a
    second apart, far more than view synthesis finds from zero. A sideways step looks like a
    turn, so the turn takes up part of it (at most about the parallax angle); the pose network
    corrects that. A least-squares homography had outliers where translation dominated, the
    essential matrix flips of 180 degrees (docs/benchmarks.md, "The turn prior")."""
    if len(earlier) < _MIN_TRACKS:
        return np.eye(3)
    # K's intrinsic part only: a bottom row other than (0, 0, 1) must not make it singular
    (fx, skew, cx), (_, fy, cy) = np.asarray(K, np.float64)[:2]
    inverse = np.linalg.inv(np.array([[fx, skew, cx], [0, fy, cy], [0, 0, 1]]))

    def rays(points):
        v = np.c_[points, np.ones(len(points))] @ inverse.T
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    before, after = rays(earlier), rays(later)
    weights = np.ones(len(before))
    for _ in range(3):
        U, _, Vt = np.linalg.svd((after * weights[:, None]).T @ before)
        R = U @ np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))]) @ Vt
        residual = np.linalg.norm(after - before @ R.T, axis=1)
        weights = 1 / np.maximum(residual, np.median(residual) + 1e-12)
    return R


def pair_turns(frames, Ks, stride: int) -> np.ndarray:
    """(N, 3, 3): for each of the N frames (RGB, in order, with intrinsics Ks (N, 3, 3)) the
    turn (`turn`) from the frame `stride` before it, tracked through the frames between; the
    identity for the first `stride` frames."""
    turns = np.tile(np.eye(3), (len(frames), 1, 1))
    tracker = MotionTracker(stride)
    for index, frame in enumerate(frames):
        tracker.push(frame)
        if index >= stride:
            turns[index] = tracker.rotation(stride, Ks[index])
    return turns


def _track(previous: np.ndarray, current: np.ndarray,
           sets: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every set's points moved from `previous` to `current` in one Lucas-Kanade call; lost
    points dropped."""
    points = np.concatenate([now for _, now in sets]).reshape(-1, 2)
    if not len(points):
        return sets
    window = dict(winSize=(15, 15), maxLevel=2,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
    tracked, good = follow(previous, current, points, window, 0.5)
    moved, first = [], 0
    for start, now in sets:
        keep = good[first:first + len(now)]
        moved.append((start[keep], tracked[first:first + len(now)][keep]))
        first += len(now)
    return moved


def stride_motions(sequences, max_stride: int = MAX_MATCHING_GAP) -> dict[int, float]:
    """Median parallax between frames s apart, for s = 1..max_stride, over all frames of
    all `sequences` (each a list of RGB frames in order); NaN where nothing was measured."""
    motions: dict[int, list[float]] = {s: [] for s in range(1, max_stride + 1)}
    for frames in sequences:
        tracker = MotionTracker(max_stride)
        for frame in frames:
            tracker.push(frame)
            for stride in motions:
                motions[stride].append(tracker.motion(stride))
    return {stride: float(np.nanmedian(values)) if np.isfinite(values).any() else float('nan')
            for stride, values in motions.items()}


def choose_stride(motions: dict[int, float], target: float = MATCHING_MOTION) -> int:
    """The smallest stride whose median motion reaches `target`; the stride with the most
    motion when none does (1 when nothing could be measured)."""
    for stride in sorted(motions):
        if motions[stride] >= target:
            return stride
    measured = {s: m for s, m in motions.items() if np.isfinite(m)}
    return max(measured, key=measured.get) if measured else 1


# Frame pairs whose unit translation directions average to at least this length agree on a
# heading (a car, a robot driving forward); below it the camera moves every which way.
HEADING_AGREEMENT = 0.5


def camera_heading(sequences, Ks, stride: int, every: int = 2) -> tuple[np.ndarray, int]:
    """The mean of the unit translations t (x_later = R x_earlier + t, OpenCV's convention,
    which is the pose network's T_later_earlier) of frame pairs `stride` apart, from the
    essential matrix of tracked corners, over every `every`-th frame of `sequences` (RGB frames
    with intrinsics `Ks`, one (3, 3) per sequence) whose motion reaches MATCHING_MOTION.
    Returns (the mean, a 3-vector of length <= 1: 1 = all pairs agree; the number of pairs)."""
    directions = []
    for frames, K in zip(sequences, Ks):
        tracker = MotionTracker(stride)
        for index, frame in enumerate(frames):
            tracker.push(frame)
            if index < stride or index % every or not tracker.motion(stride) >= MATCHING_MOTION:
                continue
            earlier, later = tracker.matches(stride)
            K_motion = motion_intrinsics(K, frame.shape[1])
            E, inliers = cv2.findEssentialMat(earlier, later, K_motion, cv2.RANSAC, 0.999, 0.5)
            if E is None or E.shape != (3, 3):
                continue
            _, _, t, kept = cv2.recoverPose(E, earlier, later, K_motion, mask=inliers)
            if kept.sum() >= _MIN_TRACKS:
                directions.append(t[:, 0] / np.linalg.norm(t))
    if not directions:
        return np.zeros(3), 0
    return np.mean(directions, axis=0), len(directions)
