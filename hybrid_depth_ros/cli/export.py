"""`hybrid-depth export`: a checkpoint as fp16 inference weights, or as an ONNX graph checked
against PyTorch."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'export', help='export a checkpoint: fp16 inference weights, or ONNX',
        description='--weights: write the depth and pose networks of CHECKPOINT in fp16 with its '
                    'config (about a tenth of a training checkpoint; the node and every command '
                    'load it like one). --onnx: write the depth network as an ONNX graph with a '
                    'dynamic batch dimension, for TensorRT, Jetson and other runtimes, and check '
                    'it against PyTorch with onnxruntime at batch sizes 1 and 3. Single-frame '
                    'graph: image (B, 3, H, W) RGB in [0, 1] -> depth (B, 1, H, W) (+ features '
                    'for a multi-frame checkpoint). --multi-frame: one streamed step, image, '
                    'previous_image, previous_features, K -> depth, features. Needs `pip install '
                    'onnx onnxscript onnxruntime`.')
    parser.add_argument('--checkpoint', type=Path, required=True)
    outputs = parser.add_mutually_exclusive_group(required=True)
    outputs.add_argument('--weights', type=Path, help='output .pt file of fp16 weights')
    outputs.add_argument('--onnx', type=Path, help='output .onnx file')
    parser.add_argument('--multi-frame', action='store_true',
                        help='export the streamed multi-frame step (multi-frame checkpoints)')
    parser.add_argument('--force', action='store_true', help='replace an existing OUT')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.atomic import check_output_file
    from hybrid_depth_core.errors import UserError
    from hybrid_depth_core.deploy.export import export_onnx, export_weights

    out = args.weights or args.onnx
    # Found now, not after minutes of exporting; the input is refused before --force is
    # considered: replacing a training checkpoint with its export would end the run.
    check_output_file(out, '--weights' if args.weights else '--onnx', [args.checkpoint])
    if out.exists() and not args.force:
        raise UserError(f'{out} already exists; pass --force to replace it')
    if args.weights:
        if args.multi_frame:
            raise UserError('--multi-frame applies to --onnx only')
        count = export_weights(args.checkpoint, out)
        print(f'wrote {out} ({out.stat().st_size / 2 ** 20:.1f} MiB): {count / 1e6:.2f} M '
              f'parameters of the depth and pose networks in fp16')
        return 0
    report = export_onnx(args.checkpoint, args.onnx, args.multi_frame)
    size = report.path.stat().st_size / 2 ** 20
    print(f'wrote {report.path} ({size:.1f} MiB): inputs {", ".join(report.inputs)} -> '
          f'{", ".join(report.outputs)}; onnxruntime matches PyTorch within '
          f'{100 * report.max_relative_error:.4f}% at batch sizes '
          f'{", ".join(map(str, report.batch_sizes))}')
    return 0
