"""Pose network: ResNet18 on two stacked frames + Monodepth2-style pose decoder."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hybrid_depth_core.geometry import pose_vector_to_matrix
from hybrid_depth_core.networks.encoders import ResNet18Encoder

# Rotation (radians) is scaled down so that small rotations are easy to express, as in
# Monodepth2. Translation (metres) is not: Monodepth2 scales it by 0.01 too, which makes its
# effective learning rate 100x smaller; trained from scratch, the translation then stayed at
# 1-2 cm per frame for hundreds of steps and the depth scale with it, until the near road
# needed depths below min_depth and was pushed to max_depth instead (docs/benchmarks.md).
ROTATION_SCALE = 0.01
TRANSLATION_SCALE = 1.0
# The length of the translation a pose network starts from when the data shows a heading
# (`start_moving`): 0.5 m a frame against the depth network's initial 10 m. The scale is
# arbitrary (monocular); the direction is what matters.
INITIAL_SPEED = 0.5
# Factors by which the pose network may see smaller frames than the depth network
# (DepthModelConfig.pose_downsample).
POSE_DOWNSAMPLING = (1, 2, 4)


class PoseDecoder(nn.Module):
    def __init__(self, in_channels: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 256, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 6, 1))
        # Start from a camera that stands still (neutral), with the random part of the output
        # 100x smaller than usual; the trainer then points the start along the heading the
        # recording shows, if it shows one (`start_moving`, data/image_motion.camera_heading).
        last = self.net[-1]
        with torch.no_grad():
            last.weight.mul_(0.01)
            last.bias.zero_()

    def start_moving(self, translation) -> None:
        """Make the untrained output translation `translation` (T_later_earlier's, metres)."""
        with torch.no_grad():
            self.net[-1].bias[3:] = torch.as_tensor(translation, dtype=torch.float32
                                                    ) / TRANSLATION_SCALE

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> axis-angle (B, 3), translation (B, 3)."""
        pose = self.net(features).mean(dim=(2, 3))
        return ROTATION_SCALE * pose[:, :3], TRANSLATION_SCALE * pose[:, 3:]


class PoseNet(nn.Module):
    """`forward(earlier, later, turn=None)` -> T_later_earlier (B, 4, 4): maps points from the
    earlier camera's frame into the later camera's frame. Frames in time order, so one network
    sees one direction of motion; invert the result for the other direction.

    `turn` (B, 3, 3), a rotation measured on tracked corners (data/image_motion.turn), is what the
    network corrects: its output is the correction applied after the turn, [R | t] @ [turn | 0].
    """

    def __init__(self, downsample: int = 1):
        super().__init__()
        self.downsample = downsample
        self.encoder = ResNet18Encoder(in_frames=2)
        self.decoder = PoseDecoder()

    def forward(self, earlier: torch.Tensor, later: torch.Tensor,
                turn: torch.Tensor | None = None) -> torch.Tensor:
        frames = torch.cat([earlier, later], 1)
        if self.downsample > 1:
            frames = F.avg_pool2d(frames, self.downsample)
        half, quarter = self.encoder(frames)
        deepest = self.encoder.deep_features(quarter)[-1]
        axis_angle, translation = self.decoder(deepest)
        # fp32 even under autocast: a bf16 rotation matrix is off by ~0.2 degrees.
        T = pose_vector_to_matrix(axis_angle.float(), translation.float())
        if turn is None:
            return T
        with torch.autocast(T.device.type, enabled=False):  # fp32, as above
            rotation = T[:, :3, :3] @ turn.to(T)
        return torch.cat([torch.cat([rotation, T[:, :3, 3:]], 2), T[:, 3:]], 1)
