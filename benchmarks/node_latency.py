"""Node overhead: end-to-end latency over ROS 2 against the bare model time, at one size.

    python benchmarks/node_latency.py --width 640 --height 192 --rate 3 --out out/node_latency

A multi-frame hybrid with random weights at WIDTHxHEIGHT (time does not depend on weights)
runs (1) bare: DepthPredictor.stream over the sample drive's frames in this process, and
(2) as the depth node in its own process, fed the same drive over DDS at RATE x 10 Hz (3 =
30 Hz), as `hybrid-depth demo` does. Latency = arrival of the depth (or points) here minus
arrival of its image here. Overhead = node latency - bare model time (medians). A growing
backlog would show as latency rising through the run: the first and last thirds are compared.
In between, (3) the node's whole per-frame work without transport: DepthPipeline.process on
the bag's messages (decode, rectify, inference, the fields of every output message).
Prints a Markdown table for docs/benchmarks.md.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hybrid_depth_core.data.bag_writer import write_drive_bag
from hybrid_depth_core.data.bag_reader import Bag
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.images import image_to_rgb
from hybrid_depth_core.data.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.benchmark import machine
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train
from hybrid_depth_core.runtime.node_config import NodeConfig
from hybrid_depth_ros.demo import DEPTH, POINTS, run_node_on_bag
from hybrid_depth_core.runtime.pipeline import DepthPipeline
from hybrid_depth_core.messages.header import stamp_ns


def time_in_process(checkpoint: Path, bag_path: Path, cloud_stride: int,
                    count: int) -> tuple[np.ndarray, np.ndarray]:
    """ms per frame over the bag's first `count` images (after 3 warm-up frames) of the bare
    model (DepthPredictor.stream on the decoded image) and of the node's whole per-frame work
    (DepthPipeline.process on the message), frame by frame in turn so that both see the same
    machine state."""
    bare_predictor, node_predictor = (DepthPredictor.from_checkpoint(checkpoint, device='cpu')
                                      for _ in range(2))
    pipeline = DepthPipeline(node_predictor, NodeConfig(device='cpu', cloud_stride=cloud_stride))
    bare, node = [], []
    with Bag(bag_path) as bag:
        infos = bag.camera_infos()
        for item in bag.messages([bag.image_topic]):
            info = infos.nearest(stamp_ns(item.message, item.time_ns))
            rgb = image_to_rgb(item.message)
            started = time.perf_counter()
            bare_predictor.stream(rgb, camera_from_info(info, rgb.shape[1], rgb.shape[0])[0].K)
            bare.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            pipeline.process(item.message, info)
            node.append(1000 * (time.perf_counter() - started))
            if len(bare) == count:
                break
    return np.array(bare[3:]), np.array(node[3:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=192)
    parser.add_argument('--frames', type=int, default=90)
    parser.add_argument('--rate', type=float, default=3.0, help='x 10 Hz')
    parser.add_argument('--cloud-stride', type=int, default=1)
    parser.add_argument('--out', type=Path, default=Path('out/node_latency'))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    checkpoint = args.out / f'random_{args.width}x{args.height}' / 'last.pt'
    if not checkpoint.exists():
        config = load_config(None, [f'data.width={args.width}', f'data.height={args.height}',
                                    'data.seeds=[1]', 'data.frames_per_drive=3',
                                    'batch_size=1', 'num_workers=0'])
        train(config, checkpoint.parent, max_steps=0, progress=False)
    drive = SyntheticDrive(DriveConfig(width=args.width, height=args.height,
                                       frames=args.frames, seed=1000))
    bag = args.out / f'drive_{args.width}x{args.height}_{args.frames}'
    if not bag.exists():
        write_drive_bag(drive, bag)

    bare, in_process = time_in_process(checkpoint, bag, args.cloud_stride, min(args.frames, 30))

    params = args.out / 'params.yaml'
    params.write_text(f'/**/hybrid_depth:\n  ros__parameters:\n    device: cpu\n'
                      f'    cloud_stride: {args.cloud_stride}\n')
    recorder, published = run_node_on_bag(checkpoint, bag, params, rate=args.rate,
                                          device='cpu')
    result = {'machine': machine(torch.device('cpu')), 'width': args.width,
              'height': args.height, 'input_hz': 10 * args.rate, 'published': published,
              'bare_model_ms': {'median': float(np.median(bare)),
                                'p90': float(np.percentile(bare, 90))},
              'pipeline_ms': {'median': float(np.median(in_process)),
                              'p90': float(np.percentile(in_process, 90))}}
    for name, topic in (('depth', DEPTH), ('points', POINTS)):
        latencies = recorder.latencies_ms(topic)
        third = max(1, len(latencies) // 3)
        result[name] = {'received': int(len(latencies)),
                        'median_ms': float(np.median(latencies)),
                        'p90_ms': float(np.percentile(latencies, 90)),
                        'first_third_median_ms': float(np.median(latencies[:third])),
                        'last_third_median_ms': float(np.median(latencies[-third:])),
                        'overhead_ms': float(np.median(latencies) - np.median(bare))}
    (args.out / f'results_{args.width}x{args.height}_{result["input_hz"]:g}hz.json').write_text(
        json.dumps(result, indent=2) + '\n')
    model = result['bare_model_ms']['median']
    print(f'{args.width}x{args.height}, {result["input_hz"]:g} Hz input, {published} images, '
          f'{result["machine"]}')
    print(f'bare model (DepthPredictor.stream): median {model:.0f} ms, p90 '
          f'{result["bare_model_ms"]["p90"]:.0f} ms')
    pipeline = result['pipeline_ms']['median']
    print(f'node pipeline without transport (DepthPipeline.process): median {pipeline:.1f} ms, '
          f'{pipeline - model:+.1f} ms ({100 * (pipeline - model) / model:+.1f}%) over the model')
    print('| output | received | median ms | p90 ms | overhead ms | overhead / model | '
          'first third | last third |')
    print('|---|---|---|---|---|---|---|---|')
    for name in ('depth', 'points'):
        row = result[name]
        print(f'| {name} | {row["received"]} | {row["median_ms"]:.0f} | {row["p90_ms"]:.0f} | '
              f'{row["overhead_ms"]:.0f} | {100 * row["overhead_ms"] / model:.0f}% | '
              f'{row["first_third_median_ms"]:.0f} | {row["last_third_median_ms"]:.0f} |')


if __name__ == '__main__':
    main()
