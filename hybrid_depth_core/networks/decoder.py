"""Monodepth2-style depth decoder: upsampling with skip connections, sigmoid disparity at 4
scales; and the disparity -> depth mapping."""
from __future__ import annotations

import math

import torch
from torch import nn

DECODER_CHANNELS = (16, 32, 64, 128, 256)
ENCODER_CHANNELS = (64, 64, 128, 256, 512)


class ConvBlock(nn.Module):
    """3x3 convolution with reflection padding (no zero border at image edges), then ELU."""

    def __init__(self, in_channels: int, out_channels: int, activation: bool = True):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)
        self.activation = nn.ELU(inplace=True) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(self.pad(x)))


class DepthDecoder(nn.Module):
    """Features at 1/2 .. 1/32 (ENCODER_CHANNELS) -> the logits of the disparities (their
    sigmoid is the disparity in (0, 1)) at 1/1, 1/2, 1/4, 1/8 of the input resolution, as a
    list ordered from full resolution down."""

    scales = (0, 1, 2, 3)

    def __init__(self, encoder_channels=ENCODER_CHANNELS, decoder_channels=DECODER_CHANNELS,
                 initial_disparity: float = 0.5):
        super().__init__()
        self.upconvs = nn.ModuleList()
        self.fuseconvs = nn.ModuleList()
        for i in range(4, -1, -1):
            in_channels = encoder_channels[-1] if i == 4 else decoder_channels[i + 1]
            self.upconvs.append(ConvBlock(in_channels, decoder_channels[i]))
            skip = encoder_channels[i - 1] if i > 0 else 0
            self.fuseconvs.append(ConvBlock(decoder_channels[i] + skip, decoder_channels[i]))
        self.dispconvs = nn.ModuleList([ConvBlock(decoder_channels[s], 1, activation=False)
                                        for s in self.scales])
        # The heads' bias sets the disparity the untrained network predicts everywhere.
        for head in self.dispconvs:
            logit = math.log(initial_disparity / (1 - initial_disparity))
            nn.init.constant_(head.conv.bias, logit)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        x = features[-1]
        logits = {}
        for level, (upconv, fuseconv) in zip(range(4, -1, -1), zip(self.upconvs, self.fuseconvs)):
            x = nn.functional.interpolate(upconv(x), scale_factor=2, mode='nearest')
            if level > 0:
                x = torch.cat([x, features[level - 1]], 1)
            x = fuseconv(x)
            if level in self.scales:
                logits[level] = self.dispconvs[level](x)
        return [logits[s] for s in self.scales]


def depth_to_disp(depth, min_depth: float, max_depth: float):
    """The inverse of disp_to_depth: the sigmoid output that gives `depth` (a number or a
    tensor)."""
    min_disp, max_disp = 1 / max_depth, 1 / min_depth
    return (1 / depth - min_disp) / (max_disp - min_disp)


def disp_to_depth(disp: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Sigmoid output in [0, 1] -> depth in [min_depth, max_depth], linear in inverse depth."""
    min_disp, max_disp = 1 / max_depth, 1 / min_depth
    return 1 / (min_disp + (max_disp - min_disp) * disp)
