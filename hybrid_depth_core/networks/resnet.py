"""ResNet18 written here (torchvision cannot be imported on every machine), with torchvision's
parameter names, so the published ImageNet file resnet18-f37072fd.pth loads as is."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hybrid_depth_core.errors import UserError

IMAGENET_URL = 'https://download.pytorch.org/models/resnet18-f37072fd.pth'
# Monodepth2's input normalisation for ImageNet-initialised encoders (images in [0, 1]).
IMAGE_MEAN, IMAGE_STD = 0.45, 0.225


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


def make_layer(in_channels: int, channels: int, stride: int) -> nn.Sequential:
    """A ResNet18 stage: two basic blocks, the first one striding."""
    return nn.Sequential(BasicBlock(in_channels, channels, stride), BasicBlock(channels, channels))


class ResNetStem(nn.Module):
    """conv1 + bn1 + relu (1/2 resolution, 64 ch) and maxpool + layer1 (1/4, 64 ch): ManyDepth's
    `layer0` and `layer1`, the paper's "local blocks". `in_frames` > 1 stacks frames on the
    channel axis (pose network)."""

    def __init__(self, in_frames: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(3 * in_frames, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = make_layer(64, 64, 1)

    def layer0(self, image: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1((image - IMAGE_MEAN) / IMAGE_STD)))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.layer0(image)
        return half, self.layer1(self.maxpool(half))


def load_imagenet_weights(module: nn.Module, source: bool | str | Path) -> None:
    """Load torchvision's ImageNet ResNet18 into `module` where names match (fc is dropped;
    stages the module does not have are skipped). `source`: True = download from torchvision's
    URL (needs internet), or a path to resnet18-f37072fd.pth. A 6-channel conv1 (two stacked
    frames) gets the RGB filters repeated and halved, so stacked identical frames start out
    exactly like one frame."""
    if source is False or source is None:
        return
    if source is True:
        try:
            state = torch.hub.load_state_dict_from_url(IMAGENET_URL, map_location='cpu',
                                                       progress=True)
        except Exception as error:  # no internet, proxy, disk: all mean "use a local file"
            raise UserError(f'cannot download ImageNet weights from {IMAGENET_URL} ({error}); '
                            f'pass the path of resnet18-f37072fd.pth instead') from None
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f'ImageNet weights file {path} does not exist')
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as error:
            raise UserError(f'{path} is not a readable PyTorch state_dict ({error})') from None
    own = module.state_dict()
    matched = {}
    for name, tensor in state.items():
        if name not in own:
            continue
        if name == 'conv1.weight' and own[name].shape[1] != tensor.shape[1]:
            frames = own[name].shape[1] // tensor.shape[1]
            tensor = tensor.repeat(1, frames, 1, 1) / frames
        if own[name].shape != tensor.shape:
            raise UserError(f'ImageNet weights: {name} has shape {tuple(tensor.shape)}, '
                            f'expected {tuple(own[name].shape)}: not a ResNet18 file?')
        matched[name] = tensor
    if 'conv1.weight' not in matched:
        raise UserError('ImageNet weights: no ResNet18 parameters found (no conv1.weight)')
    module.load_state_dict(matched, strict=False)
