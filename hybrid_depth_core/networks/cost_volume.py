"""ManyDepth's matching: a plane-sweep cost volume between the current frame's layer1 features
and the previous ("lookup") frame's, over depth hypotheses linear in depth."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hybrid_depth_core.geometry import invert_intrinsics, pixel_grid
from hybrid_depth_core.networks.plane_sweep import matching_cost


@dataclass
class Matching:
    """What the cost volume saw, for the losses: (B, D, h, w) cost, (B, 1, h, w) confidence
    (1 where every hypothesis warped inside the lookup image), (B, 1, h, w) the depth of the
    lowest-cost hypothesis (ManyDepth's consistency loss compares it with a teacher)."""

    cost: torch.Tensor
    confidence: torch.Tensor
    argmin_depth: torch.Tensor


class CostVolume(nn.Module):
    def __init__(self, channels: int = 64, num_bins: int = 96, min_depth: float = 0.1,
                 max_depth: float = 20.0):
        super().__init__()
        if not 0 < min_depth < max_depth:
            raise ValueError(f'depth bins need 0 < min < max, got {min_depth}, {max_depth}')
        self.num_bins = num_bins
        # Saved with the model and updated during training from the teacher's depth range.
        self.register_buffer('depth_range', torch.tensor([min_depth, max_depth]))
        self.reduce_conv = nn.Sequential(nn.Conv2d(channels + num_bins, channels, 3, 1, 1),
                                         nn.ReLU(inplace=True))

    def depth_bins(self) -> torch.Tensor:
        """num_bins hypotheses linear in depth over depth_range (tensor ops only, so that
        export sees the range as the buffer it is rather than a constant)."""
        steps = torch.linspace(0, 1, self.num_bins, device=self.depth_range.device)
        return self.depth_range[0] + (self.depth_range[1] - self.depth_range[0]) * steps

    def forward(self, current: torch.Tensor, lookup: torch.Tensor | None, K: torch.Tensor,
                T_lookup_current: torch.Tensor | None,
                lookup_valid: torch.Tensor | None = None) -> tuple[torch.Tensor, Matching]:
        """current, lookup: (B, C, h, w) features; K: (B, 3, 3) intrinsics at the feature
        resolution; T_lookup_current: (B, 4, 4). lookup None = no previous frame: a zero cost
        volume, as in ManyDepth's zero-cost-volume augmentation; lookup_valid (B,) bool does the
        same per sample where it is False. -> fused (B, C, h, w)."""
        batch, channels, height, width = current.shape
        if lookup is None:
            cost = current.new_zeros(batch, self.num_bins, height, width)
            confidence = current.new_zeros(batch, 1, height, width)
            argmin_depth = current.new_zeros(batch, 1, height, width)
        else:
            # Projection in fp32 whatever the autocast: bf16 cannot hold pixel coordinates.
            with torch.autocast(current.device.type, enabled=False):
                cost, confidence, argmin_depth = self._match(
                    current.float(), lookup.float(), K.float(), T_lookup_current.float())
            if lookup_valid is not None:  # ManyDepth skips these samples' matching
                keep = lookup_valid.view(-1, 1, 1, 1).to(cost.dtype)
                cost, confidence = cost * keep, confidence * keep
        fused = self.reduce_conv(torch.cat([current, cost.to(current.dtype)], 1))
        return fused, Matching(cost=cost, confidence=confidence, argmin_depth=argmin_depth)

    def _match(self, current, lookup, K, T):
        batch, channels, height, width = current.shape
        bins = self.depth_bins()
        u, v, z = sweep_coordinates(K, T, bins, height, width)
        valid = ((z > 1e-6) & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
                 ).view(batch, len(bins), height, width)
        cost = matching_cost(current, lookup, u, v) * valid
        # Hypotheses that warp outside the lookup image get the pixel's highest cost, and pixels
        # with any such hypothesis are not trusted at all (ManyDepth).
        cost = torch.where(valid, cost, cost.amax(1, keepdim=True))
        confidence = valid.all(1, keepdim=True).to(cost.dtype)
        argmin_depth = bins[cost.argmin(1, keepdim=True)]
        return cost * confidence, confidence, argmin_depth


def sweep_coordinates(K: torch.Tensor, T_lookup_current: torch.Tensor, depths: torch.Tensor,
                      height: int, width: int):
    """Where each current pixel lands in the lookup camera if its depth were each hypothesis:
    (u, v, z), each (B, D, H*W), for K (B, 3, 3) and T_lookup_current (B, 4, 4)."""
    grid = pixel_grid(height, width, K.device, K.dtype)
    # A pixel's ray at depth d lands at K (R K^-1 p d + t) in the lookup camera.
    rotated = K @ T_lookup_current[:, :3, :3] @ invert_intrinsics(K) @ grid   # (B, 3, N)
    shifted = K @ T_lookup_current[:, :3, 3:]                                 # (B, 3, 1)
    points = depths.view(1, -1, 1, 1) * rotated.unsqueeze(1) + shifted.unsqueeze(1)
    z = points[:, :, 2]
    return points[:, :, 0] / z.clamp(min=1e-6), points[:, :, 1] / z.clamp(min=1e-6), z
