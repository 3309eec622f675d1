"""Frames of a camera that moves by known amounts of parallax: a far textured picture that stays
put and, in front of it, a checkerboard of near textured blocks that slides sideways, so that
the best homography between two frames is about the mean shift and every tracked corner is off
it by about half the near layer's shift: the parallax MotionTracker measures. Shifts are given
in units of MATCHING_MOTION (the keyframe threshold)."""
import cv2
import numpy as np

from hybrid_depth_core.tracks.image_motion import MATCHING_MOTION

# The near layer moves this many times the parallax wanted: the homography takes up part of
# its motion (measured: the median corner is then off it by about the wanted parallax).
NEAR_GAIN = 2.8


def shifted_frames(shifts, width: int, height: int, seed: int = 0,
                   parallax: bool = True) -> list[np.ndarray]:
    """One (height, width, 3) uint8 frame per shift: the near blocks moved right by
    `NEAR_GAIN * shift * MATCHING_MOTION * width` pixels (sub-pixel, bilinear) from the first,
    the far picture still: a parallax of about `shift * MATCHING_MOTION * width` pixels.
    parallax=False: the near picture alone, filling the frame (a turn: no parallax)."""
    rng = np.random.default_rng(seed)
    margin = int(np.ceil(NEAR_GAIN * max(shifts) * MATCHING_MOTION * width)) + 2
    block = max(8, width // 5)  # near blocks alternate with the far picture

    def texture():
        coarse = rng.integers(0, 256, (height // 4 + 1, (width + margin) // 4 + 1, 3), np.uint8)
        return cv2.resize(coarse, (width + margin, height), interpolation=cv2.INTER_CUBIC)
    far, near = texture(), texture()
    rows, columns = np.mgrid[:height, :width + margin]
    mask = (((rows // block) + (columns // block)) % 2).astype(np.float32) if parallax else (
        np.ones(rows.shape, np.float32))
    frames = []
    for shift in shifts:
        offset = NEAR_GAIN * shift * MATCHING_MOTION * width
        window = np.float32([[1, 0, offset], [0, 1, 0]])  # frame(x) = layer(x + offset)
        moved = [cv2.warpAffine(layer, window, (width, height),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
                 for layer in (near, mask)]
        covered = moved[1][..., None]
        frame = covered * moved[0] + (1 - covered) * far[:, :width]
        frames.append(np.round(frame).astype(np.uint8))
    return frames


def camera_matrix(width: int, height: int) -> np.ndarray:
    return np.array([[0.6 * width, 0, width / 2], [0, 0.6 * width, height / 2], [0, 0, 1]])
