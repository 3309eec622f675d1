"""The two depth encoders. Both share ResNet18's stem and layer1 ("local blocks", 1/2 and 1/4
resolution, 64 channels) and return five feature maps at 1/2 .. 1/32 with 64/64/128/256/512
channels; they differ in what follows layer1. Parameter names of the ResNet parts are
torchvision's, so ImageNet weights load onto either encoder as is."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hybrid_depth_core.networks.cmt import CMTStage
from hybrid_depth_core.networks.resnet import ResNetStem, make_layer


@dataclass(frozen=True)
class HybridConfig:
    """The global part of the hybrid encoder: one CMT stage per resolution 1/8, 1/16, 1/32.

    The defaults reproduce the paper's Table 1 counts (see docs/benchmarks.md): ResNet widths so
    the Monodepth2 decoder is unchanged, 2 blocks per stage (the paper), heads and K/V
    reductions as CMT uses at these resolutions (reduction 4/2/1 also keeps every input size
    that is a multiple of 32 valid), IRFFN expansion 3.
    """

    channels: tuple[int, int, int] = (128, 256, 512)
    depths: tuple[int, int, int] = (2, 2, 2)
    heads: tuple[int, int, int] = (2, 4, 8)
    reductions: tuple[int, int, int] = (4, 2, 1)
    expansion: int = 3


class ResNet18Encoder(ResNetStem):
    """ResNet18 without fc: the ManyDepth / Monodepth2 baseline (and, on 2 stacked frames, the
    pose network's encoder)."""

    def __init__(self, in_frames: int = 1):
        super().__init__(in_frames)
        self.layer2 = make_layer(64, 128, 2)
        self.layer3 = make_layer(128, 256, 2)
        self.layer4 = make_layer(256, 512, 2)

    def deep_features(self, quarter: torch.Tensor) -> list[torch.Tensor]:
        eighth = self.layer2(quarter)
        sixteenth = self.layer3(eighth)
        return [eighth, sixteenth, self.layer4(sixteenth)]


class HybridEncoder(ResNetStem):
    """ResNet18 stem + layer1, then three CMT stages (the paper's hybrid encoder)."""

    def __init__(self, config: HybridConfig = HybridConfig()):
        super().__init__()
        self.config = config
        in_channels = (64,) + config.channels[:-1]
        self.stages = torch.nn.ModuleList([
            CMTStage(cin, cout, depth, heads, reduction, config.expansion)
            for cin, cout, depth, heads, reduction in zip(
                in_channels, config.channels, config.depths, config.heads, config.reductions)])

    def deep_features(self, quarter: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = quarter
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
