"""Inference API for the node and scripts: numpy image in, metric depth out."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from hybrid_depth_core.device import autocast, pick_device
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.geometry import invert_transform, scale_intrinsics
from hybrid_depth_core.networks import DepthModel, PoseNet, disp_to_depth
from hybrid_depth_core.training.checkpoint import load_checkpoint
from hybrid_depth_core.training.config import TrainConfig, from_dict


class DepthPredictor:
    """predict(rgb (H, W, 3) uint8, K (3, 3), previous=None) -> depth (H, W) float32 metres.

    Inputs of any size are resized to the model's input size, with K scaled to match, and the
    depth is resized back. Multi-frame models use `previous` (the preceding frame, same size
    and camera) with the pose network's relative pose; without it they run single-frame.
    For a live stream, `stream(rgb, K)` keeps the previous frame itself, with its matching
    features, so that a multi-frame step costs one encoder pass (plus pose and cost volume);
    `reset()` forgets it.
    """

    def __init__(self, model: DepthModel, pose: PoseNet | None, input_size: tuple[int, int],
                 device: torch.device, precision: str = 'fp32', depth_scale: float = 1.0,
                 memory_format: torch.memory_format | None = None, compile: bool = False):
        # Default channels_last (NHWC) on the CPU, where oneDNN's convolutions ran 1.1-1.3x
        # faster in it (`hybrid-depth bench`, docs/benchmarks.md); NCHW on CUDA until a
        # benchmark there shows channels_last winning.
        if memory_format is None:
            memory_format = (torch.channels_last if device.type == 'cpu'
                             else torch.contiguous_format)
        self.memory_format = memory_format
        self.model = model.to(device, memory_format=self.memory_format).eval()
        self.pose = pose
        if pose is not None:
            self.pose = pose.to(device, memory_format=self.memory_format).eval()
        self.width, self.height = input_size
        self.device, self.precision, self.depth_scale = device, precision, depth_scale
        # torch.compile, opt-in: the first frame (one of each kind, single- and multi-frame)
        # compiles for about a minute on a CPU (seconds once Inductor's disk cache has it),
        # then frames run up to 1.35x faster there (`hybrid-depth bench --compile`,
        # docs/benchmarks.md). The input size is the model's, fixed: a stream never recompiles.
        self.compiled = compile
        self._depth_net, self._pose_net = self.model, self.pose
        if compile:
            self._depth_net = torch.compile(self.model, dynamic=False)
            if self.pose is not None:
                self._pose_net = torch.compile(self.pose, dynamic=False)
        self._previous: StreamFrame | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = 'auto', precision: str = 'fp32',
                        depth_scale: float = 1.0, compile: bool = False) -> DepthPredictor:
        state = load_checkpoint(path)
        config = from_dict(TrainConfig, state.get('config'), where=f'{path}: config')
        weights = state.get('objective', {})
        model = DepthModel(config.model)
        pose = PoseNet(config.model.pose_downsample) if config.model.multi_frame else None
        try:
            model.load_state_dict(_prefixed(weights, 'depth.'))
            if pose is not None:
                pose.load_state_dict(_prefixed(weights, 'pose.'))
        except RuntimeError as error:  # missing, unexpected or mis-shaped tensors
            summary = ' '.join(str(error).split())
            raise UserError(f'{path}: the weights do not fit the network its config describes '
                            f'({summary[:300]})') from None
        return cls(model, pose, (config.data.width, config.data.height), pick_device(device),
                   precision, depth_scale, compile=compile)

    @property
    def multi_frame(self) -> bool:
        return self.pose is not None

    def predict(self, rgb: np.ndarray, K: np.ndarray,
                previous: np.ndarray | None = None) -> np.ndarray:
        height, width = _check_image(rgb, 'rgb')
        lookup = None
        if self.multi_frame and previous is not None:
            if _check_image(previous, 'previous') != (height, width):
                raise ValueError('previous frame and current frame differ in size')
            lookup = StreamFrame(self.to_tensor(previous), None, (height, width))
        depth, _ = self._infer(rgb, K, lookup)
        return depth

    def stream(self, rgb: np.ndarray, K: np.ndarray, use_previous: bool = True) -> np.ndarray:
        """The next frame of a sequence: predicted with the frame of the last call (if it has
        the same size, and unless the caller knows better: use_previous=False), which this
        frame then replaces."""
        previous = self._previous if use_previous else None
        if previous is not None and previous.size != rgb.shape[:2]:
            previous = None  # the camera changed resolution: start over
        depth, self._previous = self._infer(rgb, K, previous)
        return depth

    def reset(self) -> None:
        self._previous = None

    @torch.no_grad()
    def _infer(self, rgb: np.ndarray, K: np.ndarray,
               previous: StreamFrame | None) -> tuple[np.ndarray, StreamFrame]:
        height, width = _check_image(rgb, 'rgb')
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f'K must be a finite 3x3 intrinsic matrix with fx, fy > 0, got {K}')
        image = self.to_tensor(rgb)
        K_model = scale_intrinsics(torch.from_numpy(K).float(), self.width / width,
                                   self.height / height).unsqueeze(0).to(self.device)
        depth, features = self.step(image, K_model, previous)
        depth = depth[0, 0].cpu().numpy() * self.depth_scale
        if (height, width) != (self.height, self.width):
            depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_LINEAR)
        return depth.astype(np.float32), StreamFrame(image, features, (height, width))

    @torch.no_grad()
    def step(self, image: torch.Tensor, K: torch.Tensor, previous: StreamFrame | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The networks alone: image (1, 3, h, w) at the model size in [0, 1], K (1, 3, 3) of
        that size, previous frame or None -> depth (1, 1, h, w) in the network's units, and
        this frame's matching features (for the next step's `previous`)."""
        with autocast(self.device, self.precision):
            if self.multi_frame and previous is not None:
                # T_previous_current
                T = invert_transform(self._pose_net(previous.image, image))
                output = self._depth_net(image, previous.image, K, T, previous.features)
            else:
                output = self._depth_net(image)
        config = self.model.config
        depth = disp_to_depth(output.disparities[0].float(), config.min_depth, config.max_depth)
        return depth, output.features

    def to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, h, w) in [0, 1] at the model size, on the device."""
        if rgb.shape[:2] != (self.height, self.width):
            rgb = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_AREA)
        tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255
        return tensor.unsqueeze(0).to(self.device).contiguous(memory_format=self.memory_format)


@dataclass
class StreamFrame:
    """A frame as the next multi-frame step needs it: the model-size image (for the pose
    network), its matching features (None: the model encodes the image) and its input size."""
    image: torch.Tensor
    features: torch.Tensor | None
    size: tuple[int, int]


def _prefixed(weights: dict, prefix: str) -> dict:
    return {key[len(prefix):]: value for key, value in weights.items() if key.startswith(prefix)}


def _check_image(image: np.ndarray, name: str) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        shape = getattr(image, 'shape', None)
        raise ValueError(f'{name} must be an (H, W, 3) uint8 RGB image, got {shape} '
                         f'{getattr(image, "dtype", type(image).__name__)}')
    return image.shape[:2]
