"""Exports of a trained checkpoint: inference weights (fp16, what a robot needs: no optimiser,
no teacher), and ONNX graphs checked against PyTorch with onnxruntime (for TensorRT, Jetson
and other runtimes; needs `pip install onnx onnxscript onnxruntime`).

Graphs (batch dimension dynamic, height and width those of the checkpoint):
  single-frame:  image (B, 3, H, W) RGB in [0, 1] -> depth (B, 1, H, W)
                 [+ features (B, 64, H/4, W/4) for a multi-frame checkpoint: the stream's
                 first frame]
  --multi-frame: image, previous_image (B, 3, H, W), previous_features (B, 64, H/4, W/4),
                 K (B, 3, 3) of the H x W input [+ turn (B, 3, 3): the camera's rotation
                 from the previous frame measured on tracked corners (data/image_motion.turn),
                 for models trained with the turn prior] -> depth, features
                 (one streamed step: pass each step's features to the next one)
Depth is in the network's units (metres up to the monocular scale; multiply by the node's
depth_scale as it does).
"""
from __future__ import annotations

import io
import logging
import warnings
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hybrid_depth_core.atomic import check_output_file, new_file
from hybrid_depth_core.tracks.image_motion import pair_turns
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.geometry import invert_transform
from hybrid_depth_core.networks import DepthModel, PoseNet, disp_to_depth
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.networks.checkpoint import load_checkpoint, model_section, save_checkpoint

INFERENCE_PREFIXES = ('depth.', 'pose.')  # of SelfSupervisedObjective: not the teacher
OPSET = 18
PARITY_TOLERANCE = 1e-3  # largest |onnxruntime - PyTorch| / PyTorch depth accepted
PARITY_BATCH_SIZES = (1, 3)  # the export traces batch 2: two other sizes show it is dynamic


class SingleFrameGraph(nn.Module):
    def __init__(self, model: DepthModel):
        super().__init__()
        self.model = model

    def forward(self, image):
        output = self.model(image)
        depth = _depth(self.model, output)
        return (depth, output.features) if self.model.cost_volume is not None else depth


class StreamStepGraph(nn.Module):
    def __init__(self, model: DepthModel, pose: PoseNet):
        super().__init__()
        self.model, self.pose = model, pose

    def forward(self, image, previous_image, previous_features, K, turn=None):
        T_previous_current = invert_transform(self.pose(previous_image, image, turn))
        output = self.model(image, None, K, T_previous_current, previous_features)
        return _depth(self.model, output), output.features


@dataclass
class ExportReport:
    path: Path
    inputs: list[str]
    outputs: list[str]
    max_relative_error: float   # onnxruntime vs PyTorch depth, over the test inputs
    batch_sizes: tuple[int, ...]


def export_onnx(checkpoint: Path, out: Path, multi_frame: bool = False) -> ExportReport:
    """Write the graph to `out` (atomically) and check it with onnxruntime at two batch sizes;
    raises UserError if a package is missing or the outputs disagree."""
    check_output_file(out, 'ONNX output', [checkpoint])
    try:
        import onnxruntime
    except ImportError:
        raise UserError('export needs onnx, onnxscript and onnxruntime: '
                        'pip install onnx onnxscript onnxruntime') from None
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')
    model, pose = predictor.model.float().eval(), predictor.pose
    if multi_frame and pose is None:
        raise UserError(f'{checkpoint} is a single-frame model; export it without --multi-frame')
    graph, names, outputs = _graph(model, pose, multi_frame)
    graph.eval()
    examples = _example_inputs(predictor, multi_frame, batch=2)
    batch = torch.export.Dim('batch', min=1, max=64)
    dynamic = {name: {0: batch} for name in names}
    try:
        # The exporter's progress chatter and its notes on torchvision ops this model lacks.
        with redirect_stdout(io.StringIO()), torch.no_grad(), warnings.catch_warnings(), \
                _quiet('torch.onnx'):
            warnings.simplefilter('ignore', FutureWarning)
            warnings.filterwarnings('ignore', 'The axis name', UserWarning)
            program = torch.onnx.export(graph, tuple(examples.values()), dynamo=True,
                                        input_names=names, output_names=outputs,
                                        dynamic_shapes=dynamic, opset_version=OPSET)
            data = program.model_proto.SerializeToString()
    except ImportError as error:
        raise UserError(f'export needs onnx and onnxscript ({error}): '
                        f'pip install onnx onnxscript onnxruntime') from None
    session = onnxruntime.InferenceSession(data, providers=['CPUExecutionProvider'])
    worst = 0.0
    for batch_size in PARITY_BATCH_SIZES:
        inputs = _example_inputs(predictor, multi_frame, batch=batch_size)
        with torch.no_grad():
            expected = graph(*inputs.values())
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {name: value.numpy() for name, value in inputs.items()})
        depth, reference = got[0], expected[0].numpy()
        worst = max(worst, float(np.max(np.abs(depth - reference) / reference)))
    if worst > PARITY_TOLERANCE:
        raise UserError(f'the exported graph disagrees with PyTorch: depth differs by up to '
                        f'{100 * worst:.3f}% (tolerance {100 * PARITY_TOLERANCE:.1f}%); '
                        f'nothing written')
    with new_file(out) as file:
        file.write(data)
    return ExportReport(Path(out), names, outputs, worst, PARITY_BATCH_SIZES)


def export_weights(checkpoint: Path, out: Path) -> int:
    """Write the depth and pose networks of `checkpoint` in fp16 with its config and step, in
    the checkpoint format (DepthPredictor.from_checkpoint and the node load it; the weights
    are cast back to fp32 on loading). Returns the number of parameters written."""
    check_output_file(out, 'weights output', [checkpoint])
    state = load_checkpoint(checkpoint)
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')  # refuses bad ones
    # Buffers (the cost volume's depth range, batch-norm statistics) stay fp32: they are
    # small, and the depth range is a measured quantity rather than a learned weight.
    buffers = {f'depth.{name}' for name, _ in predictor.model.named_buffers()}
    if predictor.pose is not None:
        buffers |= {f'pose.{name}' for name, _ in predictor.pose.named_buffers()}
    weights = {key: value.half() if value.is_floating_point() and key not in buffers else value
               for key, value in state['objective'].items()
               if key.startswith(INFERENCE_PREFIXES)}
    save_checkpoint(out, {'model': model_section(state, str(checkpoint)).to_dict(),
                          'config': state['config'], 'step': state.get('step', 0),
                          'scale': state.get('scale'), 'objective': weights})
    return sum(value.numel() for value in weights.values())


def _graph(model, pose, multi_frame: bool):
    if multi_frame:
        inputs = ['image', 'previous_image', 'previous_features', 'K']
        return (StreamStepGraph(model, pose.float().eval()),
                inputs + (['turn'] if model.config.turn_prior else []), ['depth', 'features'])
    outputs = ['depth', 'features'] if model.cost_volume is not None else ['depth']
    return SingleFrameGraph(model), ['image'], outputs


def _example_inputs(predictor: DepthPredictor, multi_frame: bool, batch: int) -> dict:
    """Consecutive synthetic frames at the checkpoint's size: real motion for the cost volume."""
    from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive

    width, height = predictor.width, predictor.height
    drive = SyntheticDrive(DriveConfig(width=width, height=height, frames=batch + 1, seed=1000))
    rgb = [predictor.to_tensor(drive.render(index).rgb) for index in range(batch + 1)]
    image = torch.cat(rgb[1:])
    if not multi_frame:
        return {'image': image}
    previous = torch.cat(rgb[:-1])
    with torch.no_grad():
        _, features = predictor.model.encoder(previous)
    K = torch.from_numpy(drive.camera.K).float().expand(batch, 3, 3).contiguous()
    inputs = {'image': image, 'previous_image': previous, 'previous_features': features, 'K': K}
    if predictor.turn_prior:
        # the turns the stream would measure (data/image_motion.turn), as (3, 3) float32
        frames = [drive.render(index).rgb for index in range(batch + 1)]
        turns = pair_turns(frames, [drive.camera.K] * len(frames), 1)[1:]
        inputs['turn'] = torch.from_numpy(turns.astype(np.float32))
    return inputs


def _depth(model: DepthModel, output) -> torch.Tensor:
    config = model.config
    return disp_to_depth(output.disparities[0], config.min_depth, config.max_depth)


@contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
