"""Node overhead: end-to-end latency over ROS 2 against the bare model time, for one camera,
with the image framed for the network (focal length matched, aspect ratio kept: `after`) and
resized to the input size regardless (what checkpoints without a recorded training camera do,
and every checkpoint did before: `before`).

    python benchmarks/node_latency.py --width 640 --height 192 [--camera 640x480] --rate 3 \
        --out out/node_latency

A multi-frame hybrid with random weights and a WIDTHxHEIGHT input (time does not depend on
weights; its training camera: the synthetic drives' at that size) runs, per variant, (1) bare:
DepthPredictor.stream over a synthetic drive seen by the CAMERA (same field of view as the
training camera; default: the input size) in this process, (2) the framing alone (the image
to the network input, the depth back to the camera: what focal matching adds), and (3) as the
depth node in its own process, fed the same drive over DDS at RATE x 10 Hz (3 = 30 Hz), as
`hybrid-depth demo` does. Latency = arrival of the depth (or points) here minus arrival of its
image here. Overhead = node latency - bare model time (medians). A growing backlog would show
as latency rising through the run: the first and last thirds are compared. In between, (4) the
node's whole per-frame work without transport: DepthPipeline.process on the bag's messages
(decode, rectify, inference, the fields of every output message).
Prints a Markdown table for docs/benchmarks.md.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hybrid_depth_core.synthetic.bag_writer import write_drive_bag
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.messages.camera_info import camera_from_info
from hybrid_depth_core.messages.images import image_to_rgb
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.deploy.benchmark import machine
from hybrid_depth_core.networks.checkpoint import load_checkpoint, save_checkpoint
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train
from hybrid_depth_core.runtime.node_config import NodeConfig
from hybrid_depth_ros.demo import DEPTH, POINTS, run_node_on_bag
from hybrid_depth_core.runtime.pipeline import DepthPipeline
from hybrid_depth_core.messages.header import stamp_ns


def time_in_process(checkpoint: Path, bag_path: Path, cloud_stride: int,
                    count: int) -> dict[str, np.ndarray]:
    """ms per frame over the bag's first `count` images (after 3 warm-up frames) of the bare
    model (DepthPredictor.stream on the decoded image), of the framing alone (the image to the
    network input and a depth back to the camera) and of the node's whole per-frame work
    (DepthPipeline.process on the message), frame by frame in turn so that all see the same
    machine state."""
    bare_predictor, node_predictor = (DepthPredictor.from_checkpoint(checkpoint, device='cpu')
                                      for _ in range(2))
    pipeline = DepthPipeline(node_predictor, NodeConfig(device='cpu', cloud_stride=cloud_stride))
    times = {'bare': [], 'framing': [], 'pipeline': []}
    with Bag(bag_path) as bag:
        infos = bag.camera_infos()
        for item in bag.messages([bag.image_topic]):
            info = infos.nearest(stamp_ns(item.message, item.time_ns))
            rgb = image_to_rgb(item.message)
            K = camera_from_info(info, rgb.shape[1], rgb.shape[0])[0].K
            started = time.perf_counter()
            bare_predictor.stream(rgb, K)
            times['bare'].append(1000 * (time.perf_counter() - started))
            framing = bare_predictor.framing(rgb.shape[1], rgb.shape[0], K)
            depth = np.ones(framing.size[::-1], np.float32)
            started = time.perf_counter()
            framing.network_image(rgb)
            framing.camera_depth(depth)
            times['framing'].append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            pipeline.process(item.message, info)
            times['pipeline'].append(1000 * (time.perf_counter() - started))
            if len(times['bare']) == count:
                break
    return {name: np.array(values[3:]) for name, values in times.items()}


def without_training_camera(checkpoint: Path) -> Path:
    """A copy of `checkpoint` that does not know its training camera (resize only)."""
    path = checkpoint.with_name('resize_only.pt')
    if not path.exists():
        state = load_checkpoint(checkpoint)
        state['model']['focal_px'] = None
        del state['format']
        save_checkpoint(path, state)
    return path


def measure(checkpoint: Path, bag: Path, args, network: tuple[int, int]) -> dict:
    times = time_in_process(checkpoint, bag, args.cloud_stride, min(args.frames, 30))
    params = args.out / 'params.yaml'
    # The node with the threads of the bare model here, so that the two compare.
    params.write_text(f'/**/hybrid_depth:\n  ros__parameters:\n    device: cpu\n'
                      f'    cloud_stride: {args.cloud_stride}\n'
                      f'    num_threads: {torch.get_num_threads()}\n')
    recorder, published = run_node_on_bag(checkpoint, bag, params, rate=args.rate,
                                          device='cpu')
    bare = times['bare']
    result = {'network_input': list(network), 'published': published,
              **{f'{name}_ms': {'median': float(np.median(values)),
                                'p90': float(np.percentile(values, 90))}
                 for name, values in (('bare_model', bare), ('framing', times['framing']),
                                      ('pipeline', times['pipeline']))}}
    for name, topic in (('depth', DEPTH), ('points', POINTS)):
        latencies = recorder.latencies_ms(topic)
        third = max(1, len(latencies) // 3)
        result[name] = {'received': int(len(latencies)),
                        'median_ms': float(np.median(latencies)),
                        'p90_ms': float(np.percentile(latencies, 90)),
                        'first_third_median_ms': float(np.median(latencies[:third])),
                        'last_third_median_ms': float(np.median(latencies[-third:])),
                        'overhead_ms': float(np.median(latencies) - np.median(bare))}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=192)
    parser.add_argument('--camera', type=lambda text: tuple(int(v) for v in text.split('x')),
                        help='WxH of the camera (default: the input size)')
    parser.add_argument('--camera-fov', type=float, default=DriveConfig.hfov_deg,
                        help='horizontal field of view of the camera, degrees (default: the '
                             'training camera\'s)')
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
    camera = args.camera or (args.width, args.height)
    drive = SyntheticDrive(DriveConfig(width=camera[0], height=camera[1],
                                       hfov_deg=args.camera_fov, frames=args.frames, seed=1000))
    bag = args.out / f'drive_{camera[0]}x{camera[1]}_{args.camera_fov:g}deg_{args.frames}'
    if not bag.exists():
        write_drive_bag(drive, bag)

    variants = {}
    for name, weights in (('before', without_training_camera(checkpoint)),
                          ('after', checkpoint)):
        predictor = DepthPredictor.from_checkpoint(weights, device='cpu')
        network = predictor.framing(camera[0], camera[1], drive.camera.K).size
        variants[name] = measure(weights, bag, args, network)
    result = {'machine': machine(torch.device('cpu')), 'width': args.width,
              'height': args.height, 'camera': list(camera), 'camera_fov_deg': args.camera_fov,
              'input_hz': 10 * args.rate,
              **variants}
    name = (f'results_{args.width}x{args.height}_camera_{camera[0]}x{camera[1]}_'
            f'{args.camera_fov:g}deg_{result["input_hz"]:g}hz.json')
    (args.out / name).write_text(json.dumps(result, indent=2) + '\n')
    print(f'model {args.width}x{args.height}, camera {camera[0]}x{camera[1]} '
          f'({args.camera_fov:g} deg wide), {result["input_hz"]:g} Hz input, '
          f'{result["machine"]}')
    print('| variant | network input | images | bare model ms | framing ms (/ model) | '
          'pipeline ms | output | received | median ms | p90 ms | overhead ms | '
          'overhead / model | first third | last third |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for name, row in variants.items():
        model = row['bare_model_ms']['median']
        framing = row['framing_ms']['median']
        for output in ('depth', 'points'):
            out = row[output]
            print(f'| {name} | {row["network_input"][0]}x{row["network_input"][1]} | '
                  f'{row["published"]} | {model:.0f} | {framing:.1f} '
                  f'({100 * framing / model:.1f}%) | {row["pipeline_ms"]["median"]:.0f} | '
                  f'{output} | {out["received"]} | {out["median_ms"]:.0f} | '
                  f'{out["p90_ms"]:.0f} | {out["overhead_ms"]:.0f} | '
                  f'{100 * out["overhead_ms"] / model:.0f}% | '
                  f'{out["first_third_median_ms"]:.0f} | {out["last_third_median_ms"]:.0f} |')


if __name__ == '__main__':
    main()
