"""How a camera's image becomes the network's input, and the network's depth comes back.

A single-image depth prior ties apparent size in pixels to depth through the focal length, so a
network trained at one focal length sees another camera's world at the wrong scale (Metric3D's
canonical camera, Yin et al. 2023). The image is therefore resized until its focal lengths are
the training camera's (at the network's input size), each axis to its own: for square training
pixels (the automatic input size keeps the source's aspect ratio, within rounding) that is one
factor and keeps the aspect ratio, and it shows the training camera's images to the network
exactly as training did, however they were resized. Then the image is padded (edge pixels
repeated), centred, to the next multiples of 32 (the network's stride), so that no view is lost.
The network input holds at most MAX_PIXELS_RATIO times the training input's pixels: a camera
that would need more is cropped instead, centred, and gets no depth outside. K follows every
step exactly (PinholeCamera.scaled, .cropped), and the depth goes back through the same steps:
at the camera's resolution with NaN where the network saw nothing, or at the network's.

A checkpoint that records no training camera (written before it was recorded) keeps the old
anisotropic resize to its input size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from hybrid_depth_core.camera import PinholeCamera

MAX_PIXELS_RATIO = 4.0  # bounds the network input's cost for a wide or high-resolution camera
# A camera whose view at the training focal length differs from the training input's by more
# than this factor in width or height is far from anything the network saw (a 4:3 camera
# through the shipped 3:1 model, 2x taller: docs/benchmarks.md).
FAR_RATIO = 1.5
# Neighbouring pixels of the network's depth more than this far apart (relative to the nearer)
# are on two sides of an edge: the depth goes back to the camera by nearest neighbour there.
EDGE_JUMP = 0.1


@dataclass(frozen=True)
class Framing:
    """The network input of one camera: the camera's image resized to `resized` (width,
    height), then the window of the network's size whose top-left pixel is the resized image's
    pixel `window` (x, y; negative or reaching past the image: padding)."""

    camera: PinholeCamera    # the (rectified) input image's camera
    resized: tuple[int, int]
    window: tuple[int, int]
    network: PinholeCamera   # the network input's camera; its size is the network input size

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the network input."""
        return self.network.width, self.network.height

    def network_image(self, rgb: np.ndarray) -> np.ndarray:
        """The camera's image (H, W, C) -> the network input (h, w, C)."""
        if rgb.shape[:2] != (self.camera.height, self.camera.width):
            raise ValueError(f'image is {rgb.shape[1]}x{rgb.shape[0]}, its camera '
                             f'{self.camera.width}x{self.camera.height}')
        (x, y), (width, height) = self.window, self.size
        if self.resized[0] * self.resized[1] > self.camera.width * self.camera.height:
            # Enlarging: sample the window straight from the camera's image (bilinear, as
            # cv2.resize enlarges), never building the whole enlarged image.
            sx, sy = self.resized[0] / self.camera.width, self.resized[1] / self.camera.height
            to_camera = np.array([[1 / sx, 0, (x + 0.5) / sx - 0.5],
                                  [0, 1 / sy, (y + 0.5) / sy - 0.5]])
            return cv2.warpAffine(rgb, to_camera, self.size,
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE)
        if rgb.shape[1::-1] != self.resized:
            rgb = cv2.resize(rgb, self.resized, interpolation=cv2.INTER_AREA)
        rows, cols = self.seen()
        inside = rgb[max(y, 0):y + height, max(x, 0):x + width]
        pads = (rows.start, height - rows.stop, cols.start, width - cols.stop)
        if any(pads):
            inside = cv2.copyMakeBorder(inside, *pads, cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(inside)

    def network_depth(self, depth: np.ndarray) -> np.ndarray:
        """The network's depth (h, w) with NaN on the padding (no camera pixel there)."""
        rows, cols = self.seen()
        out = np.full(depth.shape, np.nan, np.float32)
        out[rows, cols] = depth[rows, cols]
        return out

    def camera_depth(self, depth: np.ndarray) -> np.ndarray:
        """The network's depth (h, w) -> the camera's resolution (H, W), NaN where the camera's
        pixel was cropped away. Bilinear, but nearest neighbour wherever the network's depth
        jumps by more than EDGE_JUMP between neighbours (depth_edges): bilinear there would
        put points between a foreground edge and the background."""
        width, height = self.camera.width, self.camera.height
        rows, cols = self.seen()
        seen = np.ascontiguousarray(depth[rows, cols])
        if self.window == (0, 0) and self.resized == self.size:  # resize only
            out = cv2.resize(depth, (width, height), interpolation=cv2.INTER_LINEAR)
        else:
            out = self._warp(seen, cv2.INTER_LINEAR)
        edges = depth_edges(seen, EDGE_JUMP)  # (NaN, dropped by edge_filter, is no edge)
        if edges.any():
            edges = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8))
            near = self._warp(seen, cv2.INTER_NEAREST)
            mask = self._warp(edges, cv2.INTER_NEAREST) > 0
            out[mask] = near[mask]
        return out

    def _warp(self, seen: np.ndarray, interpolation: int) -> np.ndarray:
        """The seen part of the network's output (its `seen()` rows and columns) at the
        camera's resolution, NaN where the camera's pixel was cropped away."""
        width, height = self.camera.width, self.camera.height
        rows, cols = self.seen()
        # Camera pixel u sits at (u + 0.5) sx - 0.5 in the resized image (pixel centres, as
        # cv2.resize), and at that minus the seen part's offset in `seen`.
        sx, sy = self.resized[0] / width, self.resized[1] / height
        ox, oy = self.window[0] + cols.start, self.window[1] + rows.start
        to_seen = np.array([[sx, 0, 0.5 * sx - 0.5 - ox], [0, sy, 0.5 * sy - 0.5 - oy]])
        out = cv2.warpAffine(seen, to_seen, (width, height),
                             flags=interpolation | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
        if out.dtype.kind != 'f':
            return out
        u = (np.arange(width) + 0.5) * sx - 0.5 - ox
        v = (np.arange(height) + 0.5) * sy - 0.5 - oy
        out[:, (u < -0.5) | (u > seen.shape[1] - 0.5)] = np.nan
        out[(v < -0.5) | (v > seen.shape[0] - 0.5), :] = np.nan
        return out

    def seen(self) -> tuple[slice, slice]:
        """Rows and columns of the network input that lie inside the resized image."""
        (x, y), (width, height) = self.window, self.size
        return (slice(max(0, -y), min(height, self.resized[1] - y)),
                slice(max(0, -x), min(width, self.resized[0] - x)))


def depth_edges(depth: np.ndarray, jump: float) -> np.ndarray:
    """(h, w) bool: pixels whose depth differs from one of its four neighbours by more than
    `jump` times the nearer of the two: the two sides of a depth discontinuity, and the pixels
    of a blurred edge between them (flying pixels). Invalid depth (NaN, <= 0) is no edge."""
    edges = np.zeros(depth.shape, bool)
    with np.errstate(invalid='ignore', divide='ignore'):
        for axis in (0, 1):
            a, b = (np.delete(depth, -1, axis), np.delete(depth, 0, axis))
            nearer = np.minimum(a, b)
            step = (np.abs(a - b) > jump * nearer) & (nearer > 0)  # False where either is NaN
            head = [slice(None)] * 2
            head[axis] = slice(0, -1)
            edges[tuple(head)] |= step
            head[axis] = slice(1, None)
            edges[tuple(head)] |= step
    return edges


def training_camera(input_size: tuple[int, int], focal: tuple[float, float]) -> PinholeCamera:
    """The camera the network trained on, the one `plan` maps every camera onto: the input size
    (width, height) with focal lengths `focal` (fx, fy). A checkpoint records only those, so
    the principal point is put at the centre."""
    width, height = input_size
    return PinholeCamera(width, height, focal[0], focal[1], (width - 1) / 2, (height - 1) / 2)


def plan(camera: PinholeCamera, input_size: tuple[int, int],
         focal: tuple[float, float] | None) -> Framing:
    """The framing of `camera` for a network trained at `input_size` (width, height) with
    focal lengths `focal` (fx, fy in pixels at that size; None: not recorded, resize only)."""
    if focal is None:
        return Framing(camera, tuple(input_size), (0, 0), camera.scaled(*input_size))
    resized = (max(1, int(camera.width * focal[0] / camera.fx + 0.5)),
               max(1, int(camera.height * focal[1] / camera.fy + 0.5)))
    width, height = (max(64, 32 * math.ceil(side / 32)) for side in resized)
    limit = MAX_PIXELS_RATIO * input_size[0] * input_size[1]
    if width * height > limit:
        shrink = math.sqrt(limit / (width * height))
        width, height = (max(64, 32 * int(side * shrink / 32)) for side in (width, height))
    x, y = (resized[0] - width) // 2, (resized[1] - height) // 2
    return Framing(camera, resized, (x, y),
                   camera.scaled(*resized).cropped(x, y, width, height))


def far_from_training(framing: Framing, input_size: tuple[int, int],
                      focal: tuple[float, float] | None, window_heights=()) -> str | None:
    """One line for a camera far from the training camera (None: close enough, or no
    training camera recorded): the two fields of view and what the network makes of it.
    `window_heights`: other view heights it trained on; views from the shortest to the tallest
    trained height (the input's included) count as familiar, give or take FAR_RATIO."""
    if focal is None:
        return None
    camera, (width, height) = framing.camera, framing.size
    problems = []
    heights = (input_size[1], *window_heights)
    trained = (f'{input_size[0]}x{min(heights)} to {input_size[0]}x{max(heights)}'
               if len(set(heights)) > 1 else f'{input_size[0]}x{input_size[1]}')
    if not (1 / FAR_RATIO <= width / input_size[0] <= FAR_RATIO
            and min(heights) / FAR_RATIO <= height <= max(heights) * FAR_RATIO):
        problems.append(f'at the training focal length the network sees it as {width}x{height} '
                        f'against {trained} in training')
    rows, cols = framing.seen()
    seen = ((cols.stop - cols.start) / framing.resized[0],
            (rows.stop - rows.start) / framing.resized[1])
    if min(seen) < 0.9:
        problems.append(f'only the central {100 * seen[0]:.0f}% x {100 * seen[1]:.0f}% fits '
                        f'the network input (the rest gets no depth)')
    if not problems:
        return None
    fov, trained_fov = camera.fov_deg, training_camera(input_size, focal).fov_deg
    return (f'camera {camera.width}x{camera.height} ({fov[0]:.0f}x{fov[1]:.0f} deg field of '
            f'view) is far from the training camera ({trained_fov[0]:.0f}x{trained_fov[1]:.0f} '
            f'deg at {input_size[0]}x{input_size[1]}): {"; ".join(problems)}; expect less '
            f'accurate depth')
