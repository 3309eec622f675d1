"""CMT transformer blocks (Guo et al., CVPR 2022), the paper's "global blocks".

Block: x = x + LPU(x); x = x + LMHSA(LN(x)); x = x + IRFFN(LN(x)). Feature maps stay (B, C, H, W)
between blocks; attention works on (B, H*W, C) tokens. No learned relative-position table: CMT's
is sized for one input resolution, and a depth node must accept any camera size (the LPU's
depthwise convolution already gives the blocks a position signal).
"""
from __future__ import annotations

import torch
from torch import nn


class LocalPerceptionUnit(nn.Module):
    """LPU(x) = DWConv3x3(x): translation-invariant local structure and a position signal."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class LightweightAttention(nn.Module):
    """LMHSA: queries from all N tokens; keys and values from the map reduced by a depthwise
    conv with kernel = stride = `reduction` (N / reduction^2 tokens), then normalised."""

    def __init__(self, channels: int, heads: int, reduction: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f'{channels} channels do not split into {heads} heads')
        self.heads = heads
        self.reduction = reduction
        self.query = nn.Linear(channels, channels)
        self.key = nn.Linear(channels, channels)
        self.value = nn.Linear(channels, channels)
        self.proj = nn.Linear(channels, channels)
        if reduction > 1:
            self.reduce = nn.Conv2d(channels, channels, reduction, reduction, groups=channels)
            self.reduce_norm = nn.LayerNorm(channels)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, count, channels = tokens.shape
        context = tokens
        if self.reduction > 1:
            grid = tokens.transpose(1, 2).reshape(batch, channels, height, width)
            context = self.reduce_norm(self.reduce(grid).flatten(2).transpose(1, 2))

        def split(x):  # (B, N, C) -> (B, heads, N, C / heads)
            return x.reshape(batch, -1, self.heads, channels // self.heads).transpose(1, 2)

        attended = nn.functional.scaled_dot_product_attention(
            split(self.query(tokens)), split(self.key(context)), split(self.value(context)))
        return self.proj(attended.transpose(1, 2).reshape(batch, count, channels))

    def attention_macs(self, height: int, width: int, channels: int) -> int:
        """Multiply-adds of QK^T and attention x V (summed over heads) for an H x W input."""
        keys = (height // self.reduction) * (width // self.reduction)
        return 2 * height * width * keys * channels


class InvertedResidualFFN(nn.Module):
    """IRFFN: 1x1 expand (GELU, BN) -> depthwise 3x3 with residual (GELU, BN) -> 1x1 project
    (BN)."""

    def __init__(self, channels: int, expansion: int):
        super().__init__()
        hidden = channels * expansion
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.GELU(),
                                    nn.BatchNorm2d(hidden))
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden),
                                       nn.GELU(), nn.BatchNorm2d(hidden))
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.expand(x)
        return self.project(hidden + self.depthwise(hidden))


class CMTBlock(nn.Module):
    def __init__(self, channels: int, heads: int, reduction: int, expansion: int):
        super().__init__()
        self.lpu = LocalPerceptionUnit(channels)
        self.attention_norm = nn.LayerNorm(channels)
        self.attention = LightweightAttention(channels, heads, reduction)
        self.ffn_norm = nn.LayerNorm(channels)
        self.ffn = InvertedResidualFFN(channels, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        x = x + self.lpu(x)
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.attention(self.attention_norm(tokens), height, width)
        x = tokens.transpose(1, 2).reshape(batch, channels, height, width)
        normed = self.ffn_norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.ffn(normed)


class CMTStage(nn.Module):
    """Stride-2 patch embedding (2x2 conv + LayerNorm) followed by `depth` CMT blocks."""

    def __init__(self, in_channels: int, channels: int, depth: int, heads: int, reduction: int,
                 expansion: int):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, channels, 2, 2)
        self.patch_norm = nn.LayerNorm(channels)
        self.blocks = nn.Sequential(*[CMTBlock(channels, heads, reduction, expansion)
                                      for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self.patch_norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.blocks(x)
