"""Dense depth hints: plane-sweep stereo between each frame and the frames around it, with the
camera's measured poses.

For a reference frame the sources are up to SOURCES frames within SEARCH frames of it that see
most of it (OVERLAP of a grid of its pixels, put at the recording's typical depth, lands inside
them) and whose motion moves those pixels by MIN_PARALLAX_PX or more, those nearest
TARGET_PARALLAX_PX first: too little parallax and a fraction of a pixel of matching error is a
large part of the depth, too much and the views differ more than a patch can match. The
hypotheses are PLANES depths evenly spaced in inverse depth, from the typical depth / NEAR to
the typical depth x FAR. A hypothesis costs 1 - ZNCC over a PATCH x PATCH window per source, and
per pixel the mean over the best two sources (a point hidden in one source does not spoil it).
A pixel's depth is its cheapest hypothesis refined by a parabola through its neighbours, kept
only where that cost is below MAX_COST, the best cost away from it (more than UNIQUE_PLANES
planes off) is at least UNIQUENESS times higher, it is not at either end of the range, the
reference patch has texture (MIN_TEXTURE), and the depth moves the pixel by MIN_PARALLAX_PX or
more in some source (its conditioning, as the triangulation angle is for a track). Last, as
multi-view stereo fusion does (MVSNet, Yao et al. 2018: 1 pixel, 1%), a depth stays only where
MIN_CONSISTENT of its sources' own depth maps agree with it (`consistent`): a wrong match, or
poses that do not fit the images, rarely agree across frames.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.tracks.hints import Hints
from hybrid_depth_core.tracks.views import parallax, widest_angles

SEARCH = 15
SOURCES = 4
OVERLAP = 0.6
MIN_PARALLAX_PX = 2.0
TARGET_PARALLAX_PX = 6.0
PLANES = 48
NEAR, FAR = 4.0, 16.0
PATCH = 5
MAX_COST = 0.3
UNIQUENESS = 1.5
UNIQUE_PLANES = 2
MIN_TEXTURE = 0.01  # standard deviation of the grey patch, grey in [0, 1]
MIN_CONSISTENT = 1
CONSISTENT_PX = 1.0
CONSISTENT_DEPTH = 0.01
WIDTH = 160         # frames are matched this wide (pixel figures above are at this width)
# Dense hints are used only if, at the pixels of the tracked hints (the same poses), their
# median ratio to those is within AGREEMENT of 1 (dense_hints.agrees): where the
# measured poses do not fit the images (docs/benchmarks.md, "Depth hints"), stereo with them
# is off by more than the tracks, whose every view must agree within a pixel.
AGREEMENT = 0.1


def settings() -> list:
    """What the dense hints depend on besides the frames (for caches)."""
    return [SEARCH, SOURCES, OVERLAP, MIN_PARALLAX_PX, TARGET_PARALLAX_PX, PLANES, NEAR, FAR,
            PATCH, MAX_COST, UNIQUENESS, UNIQUE_PLANES, MIN_TEXTURE, MIN_CONSISTENT, CONSISTENT_PX,
            CONSISTENT_DEPTH, WIDTH, AGREEMENT]


def choose_sources(poses: np.ndarray, K: np.ndarray, index: int, depth: float,
                   size: tuple[int, int]) -> list[int]:
    """The frames to match frame `index` against (see the module docstring): poses
    T_world_camera (N, 4, 4), NaN where unknown; `depth` the scene's typical depth; `size`
    (width, height)."""
    scored = []
    for other in range(max(0, index - SEARCH), min(len(poses), index + SEARCH + 1)):
        moved = (None if other == index
                 else parallax(poses, K, index, other, depth, size, OVERLAP))
        if moved is not None and moved >= MIN_PARALLAX_PX:
            scored.append((abs(moved - TARGET_PARALLAX_PX), other))
    return [other for _, other in sorted(scored)[:SOURCES]]


def sweep(reference: torch.Tensor, sources: torch.Tensor, K: np.ndarray,
          T_source_reference: np.ndarray, depth: float) -> np.ndarray:
    """Depth (H, W) of grey `reference` (H, W) in [0, 1] from grey `sources` (S, H, W) with
    poses T_source_reference (S, 4, 4) around the scene's typical `depth`; NaN where it is not
    kept (module docstring)."""
    height, width = reference.shape
    inverse = torch.linspace(NEAR / depth, 1.0 / (FAR * depth), PLANES, dtype=torch.float64)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64), indexing='ij')
    pixels = torch.stack([u.ravel(), v.ravel(), torch.ones(u.numel(), dtype=torch.float64)])
    Kt = torch.as_tensor(K, dtype=torch.float64)
    rays = torch.linalg.inv(Kt) @ pixels
    mean_r, var_r = _moments(reference[None, None])
    costs, parallaxes = [], []
    for source, T in zip(sources, torch.as_tensor(T_source_reference, dtype=torch.float64)):
        turned = Kt @ T[:3, :3] @ rays                      # (3, HW): at infinite depth
        shift = (Kt @ T[:3, 3:])                            # (3, 1): per unit inverse depth
        projected = turned[None] + inverse[:, None, None] * shift[None]  # (D, 3, HW)
        z = projected[:, 2]
        uv = projected[:, :2] / z.clamp(min=1e-9)[:, None]
        inside = ((z > 1e-9) & (uv[:, 0] >= 0) & (uv[:, 0] <= width - 1) & (uv[:, 1] >= 0)
                  & (uv[:, 1] <= height - 1)).view(PLANES, 1, height, width)
        grid = torch.stack([2 * uv[:, 0] / (width - 1) - 1, 2 * uv[:, 1] / (height - 1) - 1],
                           -1).view(PLANES, height, width, 2).float()
        warped = F.grid_sample(source[None, None].expand(PLANES, 1, height, width), grid,
                               mode='bilinear', padding_mode='border', align_corners=True)
        costs.append(torch.where(inside, _zncc_cost(reference, warped, mean_r, var_r), 2.0))
        far = (turned[:2] / turned[2:].clamp(min=1e-9)).float()
        moved = uv.float()
        parallaxes.append(torch.hypot(moved[:, 0] - far[0], moved[:, 1] - far[1])
                          .view(PLANES, height, width) * inside[:, 0])
    stacked = torch.stack(costs)[:, :, 0]                     # (S, D, H, W)
    best_two = stacked.sort(0).values[:min(2, len(costs))].mean(0)  # (D, H, W)
    return _pick(best_two, torch.stack(parallaxes).amax(0), inverse, var_r[0, 0])


def _box(images: torch.Tensor) -> torch.Tensor:
    """The mean over each pixel's PATCH x PATCH window (of the part inside the image), in two
    passes."""
    rows = F.avg_pool2d(images, (1, PATCH), 1, (0, PATCH // 2), count_include_pad=False)
    return F.avg_pool2d(rows, (PATCH, 1), 1, (PATCH // 2, 0), count_include_pad=False)


def _moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = _box(images)
    return mean, (_box(images * images) - mean * mean).clamp(min=0)


def _zncc_cost(reference, warped, mean_r, var_r) -> torch.Tensor:
    """1 - zero-mean normalised cross-correlation over PATCH x PATCH, (D, 1, H, W)."""
    mean_w, var_w = _moments(warped)
    product = _box(warped * reference[None, None])
    ncc = (product - mean_r * mean_w) / torch.sqrt(var_r * var_w + 1e-8)
    return 1 - ncc.clamp(-1, 1)


def _pick(cost: torch.Tensor, parallax: torch.Tensor, inverse: torch.Tensor,
          var_r: torch.Tensor) -> np.ndarray:
    """Cost (D, H, W), parallax (D, H, W) px, hypotheses `inverse` (D,) -> depth (H, W)."""
    planes = cost.shape[0]
    best_cost, best = cost.min(0)
    index = torch.arange(planes)[:, None, None]
    away = (index - best[None]).abs() > UNIQUE_PLANES
    second = torch.where(away, cost, torch.inf).min(0).values
    below = cost.gather(0, (best - 1).clamp(min=0)[None])[0]
    above = cost.gather(0, (best + 1).clamp(max=planes - 1)[None])[0]
    curvature = below - 2 * best_cost + above
    offset = torch.where(curvature > 0, 0.5 * (below - above) / curvature.clamp(min=1e-9),
                         torch.zeros_like(curvature)).clamp(-0.5, 0.5)
    step = inverse[1] - inverse[0]
    chosen = inverse[best] + offset.double() * step
    moved = parallax.gather(0, best[None])[0]
    keep = ((best_cost < MAX_COST) & (second >= UNIQUENESS * best_cost) & (best > 0)
            & (best < planes - 1) & (var_r >= MIN_TEXTURE ** 2) & (moved >= MIN_PARALLAX_PX)
            & (chosen > 0))
    return torch.where(keep, 1.0 / chosen.clamp(min=1e-12), torch.nan).float().numpy()


def dense_hints(rgb: np.ndarray, K: np.ndarray, poses: np.ndarray, depth: float,
                progress: str | None = None) -> Hints:
    """Dense hints for every frame of a recording, frames (N, H, W, 3) uint8 with intrinsics K
    (N, 3, 3) and measured poses T_world_camera (N, 4, 4; NaN where unknown, metres), around the
    scene's typical `depth` (the sparse hints' median): the kept pixels of the frames resized to
    WIDTH, their `angles` the widest triangulation angle to a source (degrees)."""
    scale = WIDTH / rgb.shape[2]
    size = (WIDTH, max(PATCH, round(rgb.shape[1] * scale)))
    grey = torch.as_tensor(np.stack([
        cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
        for frame in rgb]), dtype=torch.float32) / 255
    K = scale_intrinsics(K, size[0] / rgb.shape[2], size[1] / rgb.shape[1])
    maps, sources = [], []
    for index in tqdm(range(len(rgb)), desc=progress, unit='frame', disable=progress is None):
        chosen = choose_sources(poses, K[index], index, depth, size)
        found = np.full(size[::-1], np.nan, np.float32)
        if chosen:
            relative = np.stack([np.linalg.inv(poses[other]) @ poses[index] for other in chosen])
            found = sweep(grey[index], grey[chosen], K[index], relative, depth)
        maps.append(found)
        sources.append(chosen)
    v, u = np.mgrid[0:size[1], 0:size[0]]
    pixels, depths, angles = [], [], []
    for index, (found, chosen) in enumerate(zip(maps, sources)):
        found = consistent(found, K[index], [maps[other] for other in chosen],
                           [K[other] for other in chosen],
                           [np.linalg.inv(poses[other]) @ poses[index] for other in chosen])
        kept = np.isfinite(found)
        pixels.append(np.stack([u[kept], v[kept]], 1).astype(np.float32))
        depths.append(found[kept])
        angles.append(widest_angles(K[index], u[kept], v[kept], found[kept], poses, index, chosen))
    return Hints(pixels, depths, angles, metric=True, size=size)


def consistent(depth: np.ndarray, K: np.ndarray, others: list[np.ndarray], other_Ks: list,
               T_other_this: list[np.ndarray]) -> np.ndarray:
    """`depth` (H, W) kept where at least MIN_CONSISTENT of the `others` (their depth maps,
    intrinsics and poses T_other_this) agree with it: the pixel sent to the other frame at its
    depth, and back again at the other frame's depth there, lands within CONSISTENT_PX of
    itself with a depth within CONSISTENT_DEPTH of its own (the geometric check of multi-view
    stereo fusion: where the poses or a match are wrong, the two frames disagree)."""
    height, width = depth.shape
    v, u = np.nonzero(np.isfinite(depth))
    z = depth[v, u].astype(np.float64)
    agree = np.zeros(len(z), int)
    points = np.linalg.inv(K) @ np.stack([u, v, np.ones_like(u)]).astype(np.float64) * z
    for other, K_other, T in zip(others, other_Ks, T_other_this):
        there = T[:3, :3] @ points + T[:3, 3:]
        projected = K_other @ there
        with np.errstate(divide='ignore', invalid='ignore'):
            x = np.round(projected[0] / projected[2]).astype(np.int64, copy=False)
            y = np.round(projected[1] / projected[2]).astype(np.int64, copy=False)
        inside = (there[2] > 0) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
        z_other = np.full(len(z), np.nan)
        z_other[inside] = other[y[inside], x[inside]]
        back = np.linalg.inv(T) @ np.vstack([
            np.linalg.inv(K_other) @ np.stack([x, y, np.ones_like(x)]).astype(np.float64)
            * z_other, np.ones(len(z))])
        with np.errstate(invalid='ignore', divide='ignore'):
            returned = K @ back[:3]
            moved = np.hypot(returned[0] / returned[2] - u, returned[1] / returned[2] - v)
            agree += (moved < CONSISTENT_PX) & (np.abs(back[2] / z - 1) < CONSISTENT_DEPTH)
    kept = np.full_like(depth, np.nan)
    good = agree >= MIN_CONSISTENT
    kept[v[good], u[good]] = depth[v[good], u[good]]
    return kept
