"""The network behind the node: a trained checkpoint, or a randomly initialised one (weights
empty) that exercises every topic without meaningful depth."""
from __future__ import annotations

import numpy as np
import torch

from hybrid_depth_core.device import pick_device
from hybrid_depth_core.errors import UserError, one_line
from hybrid_depth_core.networks import DepthModel, DepthModelConfig
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.runtime.node_config import RANDOM_INPUT_SIZE, NodeConfig


def load_predictor(config: NodeConfig) -> DepthPredictor:
    """DepthPredictor for `config`, already run once (twice for multi-frame), so that a bad
    device or precision stops the node at start (UserError, one line) instead of failing on
    every frame, and so that `compile` compiles before the first image rather than on it."""
    if config.weights:
        predictor = DepthPredictor.from_checkpoint(config.weights, config.device,
                                                   config.precision, config.depth_scale,
                                                   compile=config.compile)
    else:
        torch.manual_seed(0)  # the same random network every run
        model = DepthModel(DepthModelConfig(arch='hybrid', multi_frame=False))
        predictor = DepthPredictor(model, None, RANDOM_INPUT_SIZE, pick_device(config.device),
                                   config.precision, config.depth_scale,
                                   compile=config.compile)
    width, height = predictor.width, predictor.height
    K = np.array([[width / 2, 0, width / 2], [0, width / 2, height / 2], [0, 0, 1]])
    blank = np.zeros((height, width, 3), np.uint8)
    try:
        predictor.predict(blank, K)
        if predictor.multi_frame:  # also builds the CPU matching kernel now, not on frame 2
            predictor.predict(blank, K, previous=blank)
    except RuntimeError as error:  # CUDA out of memory, unsupported dtype on this device...
        raise UserError(f'inference on {predictor.device} with precision {config.precision} '
                        f'failed: {one_line(error)}') from None
    return predictor


def describe(predictor: DepthPredictor) -> str:
    frames = 'multi-frame' if predictor.multi_frame else 'single-frame'
    depth = 'metric' if predictor.metric else 'relative'
    return (f'{predictor.model.config.arch} {frames} network, input {predictor.width}x'
            f'{predictor.height}, {depth} depth, on {predictor.device} ({predictor.precision}'
            f'{", compiled" if predictor.compiled else ""})')
