"""The depth network (single- or multi-frame) and the factories for depth and pose models."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.networks.cost_volume import CostVolume, Matching
from hybrid_depth_core.networks.decoder import DepthDecoder, depth_to_disp
from hybrid_depth_core.networks.encoders import HybridConfig, HybridEncoder, ResNet18Encoder
from hybrid_depth_core.networks.pose import POSE_DOWNSAMPLING, PoseNet
from hybrid_depth_core.networks.resnet import load_imagenet_weights

ARCHITECTURES = ('hybrid', 'resnet18')


@dataclass(frozen=True)
class DepthModelConfig:
    arch: str = 'hybrid'             # 'hybrid' (the paper) or 'resnet18' (ManyDepth's baseline)
    multi_frame: bool = False        # ManyDepth cost volume against the previous frame
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    num_depth_bins: int = 96         # ManyDepth's default
    min_depth_bin: float = 0.1       # initial hypothesis range (metres); adapted in training
    max_depth_bin: float = 20.0
    min_depth: float = 0.1           # range of the sigmoid disparity output (disp_to_depth)
    max_depth: float = 100.0
    # What the untrained network predicts everywhere. With the pose net's metre-scale
    # translation (networks/pose.py) this starts training near a street's true scale; the
    # sigmoid's middle (0.2 m for 0.1-100 m) would leave near surfaces needing less than
    # min_depth, and training then pushes them to max_depth instead (docs/benchmarks.md).
    initial_depth: float = 10.0
    # The pose network sees both frames average-pooled by this factor (1: the depth network's
    # size, as ManyDepth). Camera motion is one global estimate; at 2 the pose network costs
    # a quarter, which is most of what a streamed multi-frame step adds (docs/benchmarks.md).
    pose_downsample: int = 1
    # The pose network corrects the rotation measured on tracked corners between its two frames
    # (networks/pose.py, data/image_motion.turn) instead of finding it from zero; training and
    # inference both measure it. Off by default: on the handheld room it brought the held-out
    # photometric loss to a third but not the depth error down within 30 CPU minutes
    # (docs/benchmarks.md, "The turn prior").
    turn_prior: bool = False
    # The multi-frame run's single-frame teacher (training only): ManyDepth's ResNet18, or the
    # hybrid network (docs/benchmarks.md measures both).
    teacher_arch: str = 'resnet18'

    def __post_init__(self):
        for name in ('arch', 'teacher_arch'):
            if getattr(self, name) not in ARCHITECTURES:
                raise ValueError(f'{name} must be one of {ARCHITECTURES}, got '
                                 f'{getattr(self, name)!r}')
        if not 0 < self.min_depth < self.max_depth:
            raise ValueError(f'need 0 < min_depth < max_depth, got {self.min_depth}, '
                             f'{self.max_depth}')
        if not self.min_depth < self.initial_depth < self.max_depth:
            raise ValueError(f'initial_depth must lie in (min_depth, max_depth) = '
                             f'({self.min_depth}, {self.max_depth}), got {self.initial_depth}')
        if self.pose_downsample not in POSE_DOWNSAMPLING:
            raise ValueError(f'pose_downsample must be one of {POSE_DOWNSAMPLING}, got '
                             f'{self.pose_downsample}')
        if self.num_depth_bins < 2:
            raise ValueError(f'num_depth_bins must be >= 2, got {self.num_depth_bins}')
        if not 0 < self.min_depth_bin < self.max_depth_bin:
            raise ValueError(f'need 0 < min_depth_bin < max_depth_bin, got '
                             f'{self.min_depth_bin}, {self.max_depth_bin}')


@dataclass
class DepthOutput:
    disparities: list[torch.Tensor]  # (B, 1, H / 2^s, W / 2^s) in (0, 1), s = 0..3
    matching: Matching | None        # multi-frame only
    # This frame's matching features (stem + layer1, 1/4 resolution): a stream passes them as
    # the next frame's lookup_features instead of encoding the previous frame again.
    features: torch.Tensor | None = None
    # The disparities' logits (the sigmoid's input), for a loss whose pull must not fade where
    # the sigmoid saturates (training/losses.hint_leash).
    logits: list[torch.Tensor] | None = None


class DepthModel(nn.Module):
    """image (B, 3, H, W) in [0, 1], H and W multiples of 32 (>= 64) -> DepthOutput.

    Multi-frame: pass the previous frame `lookup` (or its `lookup_features` from the previous
    call's output), intrinsics `K` (B, 3, 3) of the input resolution and `T_lookup_current`
    (B, 4, 4); neither runs the single-frame mode (zero cost volume), for the first frame or a
    static camera. `lookup_valid` (B,) bool gives samples of a batch the zero cost volume where
    it is False (ManyDepth's training augmentation).
    """

    def __init__(self, config: DepthModelConfig):
        super().__init__()
        self.config = config
        self.encoder = (HybridEncoder(config.hybrid) if config.arch == 'hybrid'
                        else ResNet18Encoder())
        self.decoder = DepthDecoder(initial_disparity=depth_to_disp(
            config.initial_depth, config.min_depth, config.max_depth))
        self.cost_volume = (CostVolume(64, config.num_depth_bins, config.min_depth_bin,
                                       config.max_depth_bin) if config.multi_frame else None)

    def forward(self, image: torch.Tensor, lookup: torch.Tensor | None = None,
                K: torch.Tensor | None = None,
                T_lookup_current: torch.Tensor | None = None,
                lookup_features: torch.Tensor | None = None,
                lookup_valid: torch.Tensor | None = None) -> DepthOutput:
        height, width = image.shape[-2:]
        if height % 32 or width % 32 or min(height, width) < 64:
            # 1/32 resolution must be >= 2 pixels for the decoder's reflection padding.
            raise ValueError(f'input width and height must be multiples of 32, at least 64; '
                             f'got {width}x{height}')
        half, quarter = self.encoder(image)
        matching, features = None, quarter
        if self.cost_volume is not None:
            if lookup is not None and lookup_features is None:
                with torch.no_grad():  # ManyDepth: no gradient through the lookup features
                    _, lookup_features = self.encoder(lookup)
            if lookup_features is not None:
                if K is None or T_lookup_current is None:
                    raise ValueError('multi-frame inference with a lookup frame needs K and '
                                     'T_lookup_current')
                K = scale_intrinsics(K, quarter.shape[-1] / width, quarter.shape[-2] / height)
            quarter, matching = self.cost_volume(quarter, lookup_features, K, T_lookup_current,
                                                 lookup_valid)
        pyramid = [half, quarter] + self.encoder.deep_features(quarter)
        logits = self.decoder(pyramid)
        return DepthOutput(disparities=[torch.sigmoid(logit) for logit in logits],
                           matching=matching, features=features, logits=logits)


def build_depth_model(arch: str = 'hybrid', multi_frame: bool = False,
                      pretrained: bool | str | Path = False, **config) -> DepthModel:
    """`hybrid` and `resnet18` are one argument apart. `pretrained`: ImageNet ResNet18 weights
    for the ResNet parts (True = download, or a path to resnet18-f37072fd.pth)."""
    model = DepthModel(DepthModelConfig(arch=arch, multi_frame=multi_frame, **config))
    load_imagenet_weights(model.encoder, pretrained)
    return model


def build_pose_model(pretrained: bool | str | Path = False, downsample: int = 1) -> PoseNet:
    model = PoseNet(downsample)
    load_imagenet_weights(model.encoder, pretrained)
    return model
