"""Camera geometry on tensors: pure functions; device and dtype follow the inputs.

Conventions: pixel centres at integer coordinates (as in ROS CameraInfo and OpenCV); camera
optical frame z forward, x right, y down; `T_a_b` (4x4) maps points in frame b to frame a.
"""
from __future__ import annotations

import numpy as np
import torch


def scale_intrinsics(K, scale_x: float, scale_y: float):
    """Intrinsics (..., 3, 3) of the image resized by (scale_x, scale_y); a tensor or a numpy
    array (returned as float64).

    With pixel centres at integers, the resized principal point is (c + 0.5) * s - 0.5.
    """
    K = K.clone() if isinstance(K, torch.Tensor) else np.array(K, dtype=np.float64)
    K[..., 0, 0] *= scale_x
    K[..., 0, 1] *= scale_x  # skew (zero for almost every camera)
    K[..., 1, 1] *= scale_y
    K[..., 0, 2] = (K[..., 0, 2] + 0.5) * scale_x - 0.5
    K[..., 1, 2] = (K[..., 1, 2] + 0.5) * scale_y - 0.5
    return K


def invert_intrinsics(K: torch.Tensor) -> torch.Tensor:
    """K^-1 of intrinsics (..., 3, 3) [[fx, s, cx], [0, fy, cy], [0, 0, 1]], in closed form:
    exact, and exportable to ONNX, which has no matrix inverse."""
    fx, skew, cx = K[..., 0, 0], K[..., 0, 1], K[..., 0, 2]
    fy, cy = K[..., 1, 1], K[..., 1, 2]
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    rows = [torch.stack([1 / fx, -skew / (fx * fy), (skew * cy - cx * fy) / (fx * fy)], -1),
            torch.stack([zero, 1 / fy, -cy / fy], -1),
            torch.stack([zero, zero, one], -1)]
    return torch.stack(rows, -2)


def pixel_grid(height: int, width: int, device=None, dtype=None) -> torch.Tensor:
    """Homogeneous pixel coordinates (3, H*W): rows u, v, 1, in row-major pixel order."""
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                          torch.arange(width, device=device, dtype=dtype), indexing='ij')
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)])


def backproject(depth: torch.Tensor, inv_K: torch.Tensor) -> torch.Tensor:
    """Depth (B, 1, H, W) metres along z, inv_K (B, 3, 3) -> points (B, 3, H*W) in the camera."""
    batch, _, height, width = depth.shape
    rays = inv_K @ pixel_grid(height, width, depth.device, depth.dtype)
    return rays * depth.reshape(batch, 1, -1)


def project(points: torch.Tensor, K: torch.Tensor, T: torch.Tensor | None = None,
            eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (B, 3, N) (optionally moved by T (B, 4, 4) first) -> pixels (B, 2, N), depth (B, N).

    Depth is clamped to `eps` before division so points behind the camera stay finite; callers
    mask them with the returned depth.
    """
    if T is not None:
        points = T[:, :3, :3] @ points + T[:, :3, 3:]
    camera = K @ points
    z = camera[:, 2]
    return camera[:, :2] / z.clamp(min=eps).unsqueeze(1), z


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: rotation vectors (..., 3) (angle = norm, radians) -> rotations (..., 3, 3).

    Uses the Taylor expansion near zero so gradients stay finite at the identity.
    """
    angle_sq = (axis_angle ** 2).sum(-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    angle = angle_sq.clamp(min=1e-12).sqrt()
    small = angle_sq < 1e-8
    sin_term = torch.where(small, 1 - angle_sq / 6, torch.sin(angle) / angle)
    cos_term = torch.where(small, 0.5 - angle_sq / 24, (1 - torch.cos(angle)) / angle_sq.clamp(
        min=1e-12))
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(
        axis_angle.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + sin_term * skew + cos_term * skew @ skew


def pose_vector_to_matrix(axis_angle: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(B, 3) rotation vector and (B, 3) translation -> (B, 4, 4) rigid transform [R | t]."""
    T = torch.zeros(axis_angle.shape[:-1] + (4, 4), dtype=axis_angle.dtype,
                    device=axis_angle.device)
    T[..., :3, :3] = axis_angle_to_matrix(axis_angle)
    T[..., :3, 3] = translation
    T[..., 3, 3] = 1
    return T


def invert_transform(T: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid transforms (..., 4, 4): [R^T | -R^T t]."""
    R_t = T[..., :3, :3].transpose(-1, -2)
    inverse = torch.zeros_like(T)
    inverse[..., :3, :3] = R_t
    inverse[..., :3, 3:] = -R_t @ T[..., :3, 3:]
    inverse[..., 3, 3] = 1
    return inverse


def warp(source: torch.Tensor, depth: torch.Tensor, T_source_target: torch.Tensor,
         K: torch.Tensor, inv_K: torch.Tensor) -> torch.Tensor:
    """Synthesise the target view from `source` (B, C, H, W): each target pixel is backprojected
    with its depth (B, 1, H, W), moved into the source camera by T_source_target (B, 4, 4),
    projected with K (B, 3, 3) of this resolution, and the source sampled there (bilinear,
    border-clamped, as Monodepth2 does)."""
    batch, _, height, width = depth.shape
    pixels, _ = project(backproject(depth, inv_K), K, T_source_target)
    grid = pixels.reshape(batch, 2, height, width).permute(0, 2, 3, 1)
    scale = torch.tensor([2 / (width - 1), 2 / (height - 1)], device=grid.device,
                         dtype=grid.dtype)
    return torch.nn.functional.grid_sample(source, grid * scale - 1, mode='bilinear',
                                           padding_mode='border', align_corners=True)
