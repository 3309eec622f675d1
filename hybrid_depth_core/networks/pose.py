"""Pose network: ResNet18 on two stacked frames + Monodepth2-style pose decoder."""
from __future__ import annotations

import torch
from torch import nn

from hybrid_depth_core.geometry import pose_vector_to_matrix
from hybrid_depth_core.networks.encoders import ResNet18Encoder

# Raw outputs are scaled down so that the initial motion is near identity (Monodepth2 uses 0.01).
OUTPUT_SCALE = 0.01


class PoseDecoder(nn.Module):
    def __init__(self, in_channels: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 256, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 6, 1))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> axis-angle (B, 3), translation (B, 3)."""
        pose = OUTPUT_SCALE * self.net(features).mean(dim=(2, 3))
        return pose[:, :3], pose[:, 3:]


class PoseNet(nn.Module):
    """`forward(earlier, later)` -> T_later_earlier (B, 4, 4): maps points from the earlier
    camera's frame into the later camera's frame. Frames in time order, so one network sees
    one direction of motion; invert the result for the other direction."""

    def __init__(self):
        super().__init__()
        self.encoder = ResNet18Encoder(in_frames=2)
        self.decoder = PoseDecoder()

    def forward(self, earlier: torch.Tensor, later: torch.Tensor) -> torch.Tensor:
        half, quarter = self.encoder(torch.cat([earlier, later], 1))
        deepest = self.encoder.deep_features(quarter)[-1]
        axis_angle, translation = self.decoder(deepest)
        # fp32 even under autocast: a bf16 rotation matrix is off by ~0.2 degrees.
        return pose_vector_to_matrix(axis_angle.float(), translation.float())
