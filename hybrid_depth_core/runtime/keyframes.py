"""The keyframe rule of multi-frame inference, the one the node (DepthPredictor.stream) and the
evaluation follow: which frames form a sequence, which earlier frame of it a new frame is
matched against, and which frames are held as keyframes for later ones."""
from __future__ import annotations

from typing import Generic, TypeVar

import numpy as np

from hybrid_depth_core.tracks.image_motion import (MATCHING_MOTION, MAX_MATCHING_GAP,
                                                   MotionTracker)

# A gap longer than this between consecutive frames starts a new sequence: older frames differ
# too much for the cost volume, and motion tracking cannot bridge them.
MAX_LOOKUP_GAP_NS = 1_000_000_000

Frame = TypeVar('Frame')


def continues_sequence(previous_ns: int | None, stamp_ns: int) -> bool:
    """Whether a frame stamped `stamp_ns` continues the sequence of the one stamped
    `previous_ns` (None: there was none): later, by at most MAX_LOOKUP_GAP_NS. Stamps going
    back (a bag that loops), a repeated stamp or a long gap start a new one."""
    return previous_ns is not None and 0 < stamp_ns - previous_ns <= MAX_LOOKUP_GAP_NS


class Keyframes(Generic[Frame]):
    """A sequence of frames and the keyframe choice within it.

    Sequence: a frame continues the sequence of the last kept frame (keep), if any, unless the
    image size changed, `camera` (whatever identifies the camera and its intrinsics, compared
    with ==: the node's frame id and framing) differs from that frame's, or `stamp_ns` does not
    continue its stamp (continues_sequence). Otherwise choose(rgb, stamp_ns, camera) starts a
    new one, forgetting every held frame. A frame without a stamp (None: a caller that breaks
    sequences itself with reset()) is not checked by time.

    Keyframe: a new frame is matched against the most recent of the last `history` frames
    whose image motion to it (MotionTracker: median corner displacement, a fraction of the
    width) is at least `motion` (MATCHING_MOTION, the motion training's frame stride aims at).
    `history` defaults to MAX_MATCHING_GAP, the longest stride training uses: at 30 Hz a third
    of a second, enough for a handheld camera, and views that still overlap as the pose
    network's training pairs did. A frame whose motion is unknown (NaN: too few corners
    survived) is not a keyframe.

    choose(...) returns (age, frame) of the new frame's keyframe (age 1: the previous frame) or
    (None, None); keep(frame) then holds what later frames need of it (a StreamFrame, an
    image...). A frame choose() was called for but that was not kept (its inference failed) is
    no part of the sequence: never a keyframe, and not what the next frame is checked against.
    """

    def __init__(self, history: int = MAX_MATCHING_GAP, motion: float = MATCHING_MOTION):
        self.history, self.motion = history, motion
        self._tracker = MotionTracker(history)
        self._held: list[Frame | None] = []  # aligned with the tracker's pushes, newest last
        self._size: tuple[int, ...] | None = None
        # (stamp, camera) of the last kept frame, None at a sequence's start; and of the frame
        # choose() was last called for, until keep() makes it the last kept
        self._last: tuple[int | None, object] | None = None
        self._chosen: tuple[int | None, object] | None = None

    def choose(self, rgb: np.ndarray, stamp_ns: int | None = None, camera: object = None
               ) -> tuple[int | None, Frame | None]:
        if self._starts_sequence(rgb, stamp_ns, camera):
            self.reset()
            self._size = rgb.shape[:2]
        self._chosen = (stamp_ns, camera)
        self._tracker.push(rgb)
        # The new frame's slot stays None (never a keyframe) until keep() fills it.
        self._held = (self._held + [None])[-(self.history + 1):]
        for age in range(1, len(self._held)):
            frame = self._held[-1 - age]
            if frame is not None and self._tracker.motion(age) >= self.motion:
                return age, frame
        return None, None

    def turn(self, age: int, K: np.ndarray) -> np.ndarray:
        """The camera's turn (image_motion.turn) from the frame `age` back to the newest
        chosen, on the corners the choice tracked; K (3, 3) of the frames' size."""
        return self._tracker.rotation(age, K)

    def keep(self, frame: Frame) -> None:
        """Hold `frame` as the one choose() was last called for."""
        if self._held:
            self._held[-1] = frame
            self._last = self._chosen

    def reset(self) -> None:
        """Forget every frame: the next one starts a new sequence."""
        self._tracker.reset()
        self._held, self._size, self._last, self._chosen = [], None, None, None

    def _starts_sequence(self, rgb: np.ndarray, stamp_ns: int | None, camera: object) -> bool:
        if rgb.shape[:2] != self._size or self._last is None:
            return True
        last_ns, last_camera = self._last
        return camera != last_camera or (stamp_ns is not None
                                         and not continues_sequence(last_ns, stamp_ns))
