"""What a checkpoint does on the real recordings in ../shared/data, beside the references that
say what its figures are worth: on tum_fr1_rpy's held-out part (default its last third, 10 m
cap) the checkpoint, an untrained network of the same shape and a constant depth, AbsRel and
d<1.25 unscaled and median-scaled; on kitti_07_excerpt the road check (camera 1.65 m above
the road) of the checkpoint and the untrained network.

    python benchmarks/real_recordings.py --checkpoint models/hybrid_synthetic.pt

It runs the same code as `hybrid-depth evaluate --bag ... --span 0.67:` and `evaluate --bag
... --road-camera-height 1.65` and prints the Markdown rows of docs/benchmarks.md (also written
to OUT/results.json). With --all-pixels it also scores the unscaled constant on every pixel,
against ConstantBaseline's sample of each image.
"""
import argparse
import json
import platform
from pathlib import Path

import torch

from hybrid_depth_core.networks.checkpoint import load_checkpoint, model_section
from hybrid_depth_core.recordings.time_span import TimeSpan
from hybrid_depth_core.evaluation.bag_evaluation import evaluate_bag
from hybrid_depth_core.evaluation.metrics import ConstantBaseline, Protocol
from hybrid_depth_core.evaluation.road import RoadCheck
from hybrid_depth_core.networks import DepthModel, PoseNet
from hybrid_depth_core.runtime.predictor import DepthPredictor

DATA = Path(__file__).resolve().parents[2] / 'shared' / 'data'


def untrained_like(checkpoint: Path) -> DepthPredictor:
    """The checkpoint's networks, input size and training focal length, at random init."""
    section = model_section(load_checkpoint(checkpoint), str(checkpoint))
    torch.manual_seed(0)
    pose = PoseNet(section.network.pose_downsample) if section.network.multi_frame else None
    return DepthPredictor(DepthModel(section.network), pose, section.input_size,
                          torch.device('cpu'), focal=section.focal,
                          window_heights=section.window_heights)


def row(name: str, result: dict) -> str:
    scaled, unscaled = result['median_scaled'], result['unscaled']
    return (f'| {name} | {unscaled["abs_rel"]:.3f} | {unscaled["a1"]:.3f} | '
            f'{scaled["abs_rel"]:.3f} | {scaled["a1"]:.3f} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', type=Path, default=Path('models/hybrid_synthetic.pt'))
    parser.add_argument('--span', default='0.67:', help='the held-out part of tum_fr1_rpy')
    parser.add_argument('--max-depth', type=float, default=10.0)
    parser.add_argument('--all-pixels', action='store_true')
    parser.add_argument('--out', type=Path, default=Path('out/real_recordings'))
    args = parser.parse_args()
    trained = DepthPredictor.from_checkpoint(args.checkpoint, device='cpu')
    untrained = untrained_like(args.checkpoint)
    protocol, span = Protocol(max_depth=args.max_depth), TimeSpan(args.span)
    results = {'machine': f'{platform.processor() or platform.machine()}, '
                          f'{torch.get_num_threads()} threads, torch {torch.__version__}'}
    tum, kitti = DATA / 'tum_fr1_rpy', DATA / 'kitti_07_excerpt'
    for name, predictor in (('checkpoint', trained), ('untrained', untrained)):
        results[f'tum_{name}'] = evaluate_bag(predictor.predict, tum, protocol=protocol,
                                              span=span)
        results[f'kitti_{name}'] = evaluate_bag(predictor.predict, kitti, None,
                                                road=RoadCheck(1.65))['road']
    if args.all_pixels:  # every valid pixel kept whole, to check the sample
        sample, ConstantBaseline.SAMPLES = ConstantBaseline.SAMPLES, 10**9
        try:
            results['tum_constant_all_pixels'] = evaluate_bag(
                trained.predict, tum, protocol=protocol, span=span)['constant']
        finally:
            ConstantBaseline.SAMPLES = sample
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'results.json').write_text(json.dumps(results, indent=2))

    tum_result = results['tum_checkpoint']
    print(f'tum_fr1_rpy, {tum_result["span"]}; {tum_result["pairing"]["text"]}; '
          f'{tum_result["images"]} images scored, cap {args.max_depth:g} m; {results["machine"]}')
    print('| depth | AbsRel unscaled | d<1.25 unscaled | AbsRel median-scaled | '
          'd<1.25 median-scaled |')
    print('|---|---|---|---|---|')
    print(row(f'{args.checkpoint.name}', tum_result))
    print(row('untrained network, same shape', results['tum_untrained']))
    constant = tum_result['constant']
    print(row(f'constant ({constant["depth"]:.2f} m unscaled)', constant))
    if args.all_pixels:
        print(row('constant, unscaled on every pixel', results['tum_constant_all_pixels']))
    print('\nkitti_07_excerpt road check (1.65 m, level camera)')
    print('| depth | images | median ratio | 10-90% |')
    print('|---|---|---|---|')
    for name in ('checkpoint', 'untrained'):
        road = results[f'kitti_{name}']
        print(f'| {name} | {road["images"]} | {road["median"]:.3f} | '
              f'{road["p10"]:.3f}-{road["p90"]:.3f} |')


if __name__ == '__main__':
    main()
