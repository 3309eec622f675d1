"""The network behind the node: a trained checkpoint, or, asked for explicitly (random_weights),
a randomly initialised one that exercises every topic without meaningful depth."""
from __future__ import annotations

from collections.abc import Callable

import torch

from hybrid_depth_core.device import pick_device
from hybrid_depth_core.errors import UserError, one_line
from hybrid_depth_core.networks import DepthModel, DepthModelConfig
from hybrid_depth_core.runtime.framing import training_camera
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.runtime.node_config import RANDOM_INPUT_SIZE, NodeConfig


def load_predictor(config: NodeConfig, warn: Callable[[str], None] | None = None
                   ) -> DepthPredictor:
    """DepthPredictor for `config`, its stream's graphs already run once at the training
    camera's input size (DepthPredictor.warm_up), so that a bad device or precision stops the
    node at start (UserError, one line) instead of failing on every frame, and so that
    `compile` compiles before the first image rather than on it. `warn` receives what the
    predictor has to say (a camera far from the training one; default: stderr)."""
    options = {} if warn is None else {'warn': warn}
    if not config.weights and not config.random_weights:
        raise UserError('parameter weights is empty: give the checkpoint to run (weights:='
                        '/path/to/last.pt); a random network publishes phantom obstacles, so it '
                        'runs only when asked for with random_weights:=true')
    if config.weights:
        predictor = DepthPredictor.from_checkpoint(config.weights, config.device,
                                                   config.precision, config.depth_scale,
                                                   compile=config.compile,
                                                   edge_filter=config.edge_filter, **options)
    else:
        torch.manual_seed(0)  # the same random network every run
        model = DepthModel(DepthModelConfig(arch='hybrid', multi_frame=False))
        predictor = DepthPredictor(model, None, RANDOM_INPUT_SIZE, pick_device(config.device),
                                   config.precision, config.depth_scale,
                                   compile=config.compile, edge_filter=config.edge_filter,
                                   **options)
    try:
        predictor.warm_up(multi_frame=not config.single_frame)
    except RuntimeError as error:  # CUDA out of memory, unsupported dtype on this device...
        raise UserError(f'inference on {predictor.device} with precision {config.precision} '
                        f'failed: {one_line(error)}') from None
    return predictor


def describe(predictor: DepthPredictor) -> str:
    frames = 'multi-frame' if predictor.multi_frame else 'single-frame'
    depth = 'metric' if predictor.metric else 'relative'
    if predictor.focal is None:
        camera = 'no training camera recorded: images resized to the input size'
    else:
        training = training_camera((predictor.width, predictor.height), predictor.focal)
        camera = f'training camera {training.fov_deg[0]:.0f} deg wide'
    return (f'{predictor.model.config.arch} {frames} network, input {predictor.width}x'
            f'{predictor.height} ({camera}), {depth} depth, on {predictor.device} '
            f'({predictor.precision}{", compiled" if predictor.compiled else ""})')
