"""Inference API for the node and scripts: numpy image in, metric depth out."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hybrid_depth_core.tracks.image_motion import pair_turns
from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.networks.checkpoint import load_checkpoint, model_section
from hybrid_depth_core.device import autocast, pick_device
from hybrid_depth_core.errors import UserError, one_line
from hybrid_depth_core.geometry import invert_transform
from hybrid_depth_core.networks import DepthModel, PoseNet, disp_to_depth
from hybrid_depth_core.runtime.framing import (Framing, depth_edges, far_from_training, plan,
                                               training_camera)
from hybrid_depth_core.runtime.keyframes import Keyframes


def scale_warning(predictor: DepthPredictor, weights: str) -> str | None:
    """What to say once when the depth will not be in metres: a checkpoint trained without
    measured motion, with depth_scale left at 1."""
    if predictor.metric or predictor.depth_scale != 1.0 or not weights:
        return None
    return (f'{weights} was trained without measured camera motion: its depth is up to scale, '
            f'not metres. Set depth_scale (the median scale ratio `hybrid-depth evaluate` '
            f'reports against ground truth), or retrain on bags with /tf or /odom')


def _print_warning(message: str) -> None:
    print(f'warning: {message}', file=sys.stderr)


class DepthPredictor:
    """predict(rgb (H, W, 3) uint8, K (3, 3), previous=None, turn=None) -> depth (H, W) float32
    metres.

    Images of any camera are framed for the network (framing.py: resized so that their focal
    lengths are the training camera's, then padded to multiples of 32, or cropped past a pixel
    bound), and the depth comes back at the image's size with NaN where the network saw nothing
    (resolution='input') or at the network input's (resolution='model', the camera of
    `framing(...).network`). Multi-frame models match the frame against a lookup frame (same size
    and camera) with the pose network's relative pose; without one they run single-frame.

    For a live stream, `stream(rgb, K)` chooses the lookup frame itself (keyframes.Keyframes,
    the rule the evaluation follows too): within a sequence, the keyframe, the most recent of
    the last frames whose image motion to the new frame is enough, so that a slow camera still
    gives the cost volume a baseline; with none (the first frame, a camera standing still,
    textureless views) the frame runs single-frame. `last_lookup_age` says which frame was
    used (1: the previous one; None: single-frame). Models trained with the turn prior
    (DepthModelConfig.turn_prior) are given the camera's turn from the lookup frame, measured
    on the corners the choice tracked, as in training. The stream keeps each held frame's
    matching features, so a multi-frame step costs one encoder pass, plus pose, cost volume
    and the motion tracking (Lucas-Kanade on a small grey image; docs/benchmarks.md times it);
    `reset()` forgets the history. Single-frame models track nothing.
    """

    def __init__(self, model: DepthModel, pose: PoseNet | None, input_size: tuple[int, int],
                 device: torch.device, precision: str = 'fp32', depth_scale: float = 1.0,
                 memory_format: torch.memory_format | None = None, compile: bool = False,
                 metric: bool = False, focal: tuple[float, float] | None = None,
                 warn: Callable[[str], None] = _print_warning, window_heights=(),
                 edge_filter: float = 0.0):
        # metric: the network learnt metres from measured motion (a checkpoint's 'scale');
        # otherwise its depth is up to a scale that depth_scale must supply.
        self.metric = metric
        # focal: the training camera's (fx, fy) at input_size; None (not recorded): images are
        # resized to input_size, aspect ratio or not.
        self.focal = None if focal is None else (float(focal[0]), float(focal[1]))
        self.window_heights = tuple(window_heights)  # other view heights it trained on
        # > 0: the network's depth is dropped (NaN) where it jumps by more than this fraction
        # between neighbouring pixels (framing.depth_edges): flying pixels, kept out of what
        # the node publishes; 0 (evaluation): every pixel is kept
        self.edge_filter = float(edge_filter)
        self.warn = warn  # says once per camera what the caller should know (a far camera)
        self._framings: dict[tuple, Framing] = {}
        self._warned: set[str] = set()
        self._warm_sizes: set[tuple[int, int]] = set()
        self._warm_multi_frame = True
        # Default channels_last (NHWC) on the CPU, where oneDNN's convolutions ran faster in it
        # (`hybrid-depth bench`, docs/benchmarks.md); NCHW on CUDA until a benchmark there
        # shows channels_last winning.
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
        # torch.compile, opt-in: each network input size compiles its graphs (single- and
        # multi-frame) once, in warm_up: slow on a CPU, fast once Inductor's disk cache has
        # them; then frames run faster (`hybrid-depth bench --compile`, docs/benchmarks.md).
        # A camera's input size is fixed, so a stream never recompiles.
        self.compiled = compile
        self._depth_net, self._pose_net = self.model, self.pose
        if compile:
            self._depth_net = torch.compile(self.model, dynamic=False)
            if self.pose is not None:
                self._pose_net = torch.compile(self.pose, dynamic=False)
        self._keyframes: Keyframes[StreamFrame] | None = Keyframes() if pose is not None else None
        self.last_lookup_age: int | None = None  # the last stream() frame's keyframe age

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = 'auto', precision: str = 'fp32',
                        depth_scale: float = 1.0, compile: bool = False,
                        warn: Callable[[str], None] = _print_warning,
                        edge_filter: float = 0.0) -> DepthPredictor:
        state = load_checkpoint(path)
        section = model_section(state, where=str(path))
        weights = state.get('objective', {})
        model = DepthModel(section.network)
        pose = PoseNet(section.network.pose_downsample) if section.network.multi_frame else None
        try:
            model.load_state_dict(_prefixed(weights, 'depth.'))
            if pose is not None:
                pose.load_state_dict(_prefixed(weights, 'pose.'))
        except RuntimeError as error:  # missing, unexpected or mis-shaped tensors
            raise UserError(f'{path}: the weights do not fit the network its config describes '
                            f'({one_line(error)})') from None
        return cls(model, pose, section.input_size, pick_device(device), precision, depth_scale,
                   compile=compile, metric=section.metric, focal=section.focal, warn=warn,
                   window_heights=section.window_heights, edge_filter=edge_filter)

    @property
    def multi_frame(self) -> bool:
        return self.pose is not None

    @property
    def turn_prior(self) -> bool:
        """The pose network corrects a measured turn (DepthModelConfig.turn_prior)."""
        return self.multi_frame and self.model.config.turn_prior

    def framing(self, width: int, height: int, K: np.ndarray) -> Framing:
        """How images of this camera (`width` x `height`, intrinsics K) meet the network; the
        first time a camera is seen, a warning if it is far from the training camera, and the
        compilation of its graphs when compiling."""
        K = _check_intrinsics(K)
        key = (int(width), int(height), K.tobytes())
        framing = self._framings.get(key)
        if framing is None:
            try:
                camera = PinholeCamera.from_matrix(K, width, height)
            except ValueError as error:
                raise ValueError(f'K: {error}') from None
            framing = plan(camera, (self.width, self.height), self.focal)
            if len(self._framings) >= 16:  # a zooming camera: keep the cache small
                self._framings.clear()
            self._framings[key] = framing
            warning = far_from_training(framing, (self.width, self.height), self.focal,
                                        self.window_heights)
            if warning and warning not in self._warned:
                self._warned.add(warning)
                self.warn(warning)
            if self.compiled and framing.size not in self._warm_sizes:
                self.warm_up(framing, self._warm_multi_frame)
        return framing

    def warm_up(self, framing: Framing | None = None, multi_frame: bool = True) -> None:
        """Run the graphs a stream runs (single-frame, and multi-frame with a held frame's
        features unless `multi_frame` is False: a node that never matches frames) once at
        `framing`'s network size (default, at start: the training input with the training
        camera), so that a compiled network compiles now, not on a live frame, and a bad device
        or precision fails now. Later sizes are warmed up alike, announced through `warn`."""
        self._warm_multi_frame = multi_frame
        if framing is None:
            size = (self.width, self.height)
            # Without a recorded training camera any camera is resized to the input size: one
            # 90 degrees wide stands in.
            focal = self.focal or (self.width / 2, self.width / 2)
            framing = plan(training_camera(size, focal), size, self.focal)
        elif self.compiled:  # a camera seen after start: its first frame waits
            self.warn(f'compiling the network for a {framing.size[0]}x{framing.size[1]} input '
                      f'(camera {framing.camera.width}x{framing.camera.height}); frames wait')
        width, height = framing.size
        # Two distinct tensors: the graphs of a stream never see one image as both frames
        # (torch.compile guards on such aliasing and would compile again on live frames).
        previous, image = (self.to_tensor(np.zeros((height, width, 3), np.uint8))
                           for _ in range(2))
        K = torch.from_numpy(framing.network.K).float()[None].to(self.device)
        _, features = self.step(previous, K)
        self._warm_sizes.add(framing.size)
        if self.multi_frame and multi_frame:
            turn = (torch.eye(3, device=self.device)[None] if self.turn_prior else None)
            self.step(image, K, StreamFrame(previous, features, (height, width)), turn)

    def predict(self, rgb: np.ndarray, K: np.ndarray, previous: np.ndarray | None = None,
                turn: np.ndarray | None = None, resolution: str = 'input') -> np.ndarray:
        """One frame, matched (multi-frame models) against `previous` exactly as given: the
        caller chose the lookup frame (no keyframe choice, no motion check; None: single-frame).
        It is encoded again on every call; `stream` reuses its features. `turn` (3, 3): the
        camera's rotation from `previous` (data/image_motion.turn) for turn-prior models, measured
        between the two frames here if not given."""
        height, width = _check_image(rgb, 'rgb')
        lookup = None
        if self.multi_frame and previous is not None:
            if _check_image(previous, 'previous') != (height, width):
                raise ValueError('previous frame and current frame differ in size')
            framing = self.framing(width, height, K)
            lookup = StreamFrame(self.to_tensor(framing.network_image(previous)), None,
                                 (height, width))
            if self.turn_prior and turn is None:
                turn = pair_turns([previous, rgb], [_check_intrinsics(K)] * 2, 1)[1]
            elif turn is not None and (np.shape(turn) != (3, 3)
                                       or not np.isfinite(turn).all()):
                raise ValueError(f'turn must be a finite 3x3 rotation, got {turn}')
        return self._infer(rgb, K, lookup, turn, resolution)[0]

    def stream(self, rgb: np.ndarray, K: np.ndarray, resolution: str = 'input',
               stamp_ns: int | None = None, frame_id: str | None = None) -> np.ndarray:
        """The next frame of a sequence, matched against its keyframe among the frames of the
        earlier calls (single-frame if none has moved enough); `last_lookup_age` records the
        choice. A frame starts the sequence over, as `reset()` does, when its size, K or
        `frame_id` (a message's header.frame_id: which camera) differ from the last frame's, or
        its `stamp_ns` does not follow that frame's within keyframes.MAX_LOOKUP_GAP_NS (None:
        not checked; call reset() yourself on a jump in time)."""
        if self._keyframes is None:  # single-frame model: nothing to match, nothing to track
            self.last_lookup_age = None
            return self._infer(rgb, K, None, None, resolution)[0]
        height, width = _check_image(rgb, 'rgb')
        framing = self.framing(width, height, K)
        self.last_lookup_age, lookup = self._keyframes.choose(rgb, stamp_ns, (frame_id, framing))
        turn = (self._keyframes.turn(self.last_lookup_age, _check_intrinsics(K))
                if lookup is not None and self.turn_prior else None)
        depth, frame = self._infer(rgb, K, lookup, turn, resolution)
        self._keyframes.keep(frame)
        return depth

    def reset(self) -> None:
        """Forget the stream's history: the next frame starts a new sequence."""
        self.last_lookup_age = None
        if self._keyframes is not None:
            self._keyframes.reset()

    @torch.no_grad()
    def _infer(self, rgb: np.ndarray, K: np.ndarray, previous: StreamFrame | None,
               turn: np.ndarray | None, resolution: str) -> tuple[np.ndarray, StreamFrame]:
        if resolution not in ('input', 'model'):
            raise ValueError(f'resolution must be input or model, got {resolution!r}')
        height, width = _check_image(rgb, 'rgb')
        framing = self.framing(width, height, K)
        image = self.to_tensor(framing.network_image(rgb))
        K_model = torch.from_numpy(framing.network.K).float()[None].to(self.device)
        if turn is not None:
            turn = torch.from_numpy(np.asarray(turn, np.float32))[None].to(self.device)
        depth, features = self.step(image, K_model, previous, turn)
        depth = (depth[0, 0].cpu().numpy() * self.depth_scale).astype(np.float32)
        if self.edge_filter > 0:  # the camera's part only: padding has no edges of its own
            seen = depth[framing.seen()]
            seen[depth_edges(seen, self.edge_filter)] = np.nan
        depth = (framing.camera_depth(depth) if resolution == 'input'
                 else framing.network_depth(depth))
        return depth, StreamFrame(image, features, (height, width))

    @torch.no_grad()
    def step(self, image: torch.Tensor, K: torch.Tensor, previous: StreamFrame | None = None,
             turn: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The networks alone: image (1, 3, h, w) at the model size in [0, 1], K (1, 3, 3) of
        that size, the lookup frame (an earlier frame: keyframe) or None, and the measured turn
        from it (1, 3, 3) (turn-prior models; None: none measured) -> depth (1, 1, h, w) in the
        network's units, and this frame's matching features (for a later step's
        `previous`)."""
        with autocast(self.device, self.precision):
            if self.multi_frame and previous is not None:
                # T_previous_current
                turn = turn if self.turn_prior else None
                T = invert_transform(self._pose_net(previous.image, image, turn))
                output = self._depth_net(image, previous.image, K, T, previous.features)
            else:
                output = self._depth_net(image)
        config = self.model.config
        depth = disp_to_depth(output.disparities[0].float(), config.min_depth, config.max_depth)
        return depth, output.features

    def to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """A network input image (h, w, 3) uint8 (a camera's image through
        `framing(...).network_image`) -> (1, 3, h, w) in [0, 1] on the device."""
        tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255
        return tensor.unsqueeze(0).to(self.device).contiguous(memory_format=self.memory_format)


@dataclass
class StreamFrame:
    """A frame as a later multi-frame step needs it as its lookup frame: the model-size image
    (for the pose network), its matching features (None: the model encodes the image) and its
    input size."""
    image: torch.Tensor
    features: torch.Tensor | None
    size: tuple[int, int]


def _prefixed(weights: dict, prefix: str) -> dict:
    return {key[len(prefix):]: value for key, value in weights.items() if key.startswith(prefix)}


def _check_intrinsics(K) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f'K must be a finite 3x3 intrinsic matrix with fx, fy > 0, got {K}')
    return K


def _check_image(image: np.ndarray, name: str) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        shape = getattr(image, 'shape', None)
        raise ValueError(f'{name} must be an (H, W, 3) uint8 RGB image, got {shape} '
                         f'{getattr(image, "dtype", type(image).__name__)}')
    return image.shape[:2]
