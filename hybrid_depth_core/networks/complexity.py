"""Parameter and multiply-add counts, as the paper counts them (its Table 1; docs/benchmarks.md).

MACs are counted with forward hooks at batch 1: convolutions (out elements x in channels per
group x kernel area), linear layers (out elements x in features) and, separately, the attention
matmuls QK^T and AV, which a thop-style counter (what the paper's Table 1 most likely used)
does not see. The cost volume's sampling and differences are not multiply-adds; they are
reported as their own operation count.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from hybrid_depth_core.networks.cmt import LightweightAttention
from hybrid_depth_core.networks.depth_model import build_depth_model, build_pose_model

# The paper's Table 1 (KITTI, 640x192): encoder+decoder params; encoder-only GMACs.
PAPER_TABLE_1 = {'resnet18': (14.277, 4.461), 'hybrid': (11.097, 3.406)}


def trainable_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class MacCounter:
    """Counts MACs of the modules under `root` during forward passes inside the `with`."""

    def __init__(self, root: nn.Module):
        self.root = root
        self.conv_linear = 0
        self.attention = 0
        self._hooks = []

    def __enter__(self):
        for module in self.root.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                self._hooks.append(module.register_forward_hook(self._count_layer))
            elif isinstance(module, LightweightAttention):
                self._hooks.append(module.register_forward_hook(self._count_attention))
        return self

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()

    @property
    def total(self) -> int:
        return self.conv_linear + self.attention

    def _count_layer(self, module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = module.in_channels // module.groups * kh * kw
        else:
            per_output = module.in_features
        self.conv_linear += output.numel() // output.shape[0] * per_output

    def _count_attention(self, module, inputs, output):
        tokens, height, width = inputs
        self.attention += module.attention_macs(height, width, tokens.shape[-1])


@dataclass
class ModelProfile:
    model: str
    params_m: float                # depth encoder + decoder (multi-frame: incl. reduce conv)
    encoder_gmacs: float           # encoder alone, conv + linear + attention matmuls
    encoder_gmacs_thop: float      # encoder alone, conv + linear only (thop-style)
    frame_gmacs: float             # full per-frame inference, all MACs (see profile_models)
    cost_volume_gops: float = 0.0  # multi-frame matching: bilinear samples + abs differences


def profile_models(width: int = 640, height: int = 192,
                   pose_downsample: int = 1) -> list[ModelProfile]:
    """Counts for resnet18 and hybrid, single and multi-frame, and the pose network.

    Per-frame cost: single-frame = encoder + decoder; multi-frame = a streamed step: encoder
    (incl. the reduce conv) + decoder + one pose-network pass (on frames average-pooled by
    `pose_downsample`), the previous frame's matching features being kept from its own step
    (DepthPredictor.stream).
    """
    image = torch.rand(1, 3, height, width)
    K = torch.tensor([[[0.58 * width, 0, width / 2], [0, 1.92 * height, height / 2], [0, 0, 1]]])
    T = torch.eye(4).unsqueeze(0)
    T[0, 0, 3] = -0.3
    pose_net = build_pose_model(downsample=pose_downsample).eval()
    with MacCounter(pose_net) as pose_macs, torch.no_grad():
        pose_net(image, image)
    rows = []
    for arch in ('resnet18', 'hybrid'):
        for multi_frame in (False, True):
            model = build_depth_model(arch, multi_frame=multi_frame).eval()
            encoder_params = trainable_params(model.encoder)
            if multi_frame:
                encoder_params += trainable_params(model.cost_volume)
            with torch.no_grad():
                _, kept = model.encoder(image)
            with MacCounter(model) as frame, torch.no_grad():
                if multi_frame:
                    model(image, K=K, T_lookup_current=T, lookup_features=kept)
                else:
                    model(image)
            encoder = frame.total - _decoder_macs(model, image)
            rows.append(ModelProfile(
                model=f'{arch} {"multi" if multi_frame else "single"}-frame',
                params_m=(encoder_params + trainable_params(model.decoder)) / 1e6,
                encoder_gmacs=encoder / 1e9,
                encoder_gmacs_thop=(encoder - frame.attention) / 1e9,
                frame_gmacs=(frame.total + (pose_macs.total if multi_frame else 0)) / 1e9,
                cost_volume_gops=_cost_volume_ops(model, width, height) / 1e9))
    rows.append(ModelProfile(model='pose network (2 frames)',
                             params_m=trainable_params(pose_net) / 1e6,
                             encoder_gmacs=pose_macs.total / 1e9,
                             encoder_gmacs_thop=pose_macs.conv_linear / 1e9,
                             frame_gmacs=pose_macs.total / 1e9))
    return rows


def _decoder_macs(model, image) -> int:
    with torch.no_grad():
        half, quarter = model.encoder(image)
        features = [half, quarter] + model.encoder.deep_features(quarter)
        with MacCounter(model.decoder) as counter:
            model.decoder(features)
    return counter.total


def _cost_volume_ops(model, width: int, height: int) -> int:
    """Bilinear sampling (4 multiply-adds) + |difference| (1) per channel, hypothesis, pixel."""
    if model.cost_volume is None:
        return 0
    return 5 * 64 * model.cost_volume.num_bins * (width // 4) * (height // 4)


def position_table_params(width: int, height: int) -> int:
    """Parameters CMT's learned relative-position bias (heads x N x N/k^2 per block) would add to
    the hybrid encoder at this input size. This model has none: such a table fixes the size."""
    encoder = build_depth_model('hybrid').encoder
    total = 0
    for level, stage in enumerate(encoder.stages, start=3):
        tokens = (height >> level) * (width >> level)
        for block in stage.blocks:
            attention = block.attention
            total += attention.heads * tokens * tokens // attention.reduction ** 2
    return total


def as_dicts(rows: list[ModelProfile]) -> list[dict]:
    return [asdict(row) for row in rows]
