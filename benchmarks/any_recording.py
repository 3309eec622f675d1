"""Does training with no config learn on a recording unlike our street? Record synthetic bags of
one kind of scene, train on some with `hybrid-depth train --bag ... --minutes M` and nothing
else, and score unseen recordings of the same kind: with keyframes, without (single-frame),
against the same network untrained and a constant depth.

    python benchmarks/any_recording.py --scene room --minutes 30 --out out/any_recording
    python benchmarks/any_recording.py --scene street --minutes 30 --out out/any_recording
    python benchmarks/any_recording.py --scene room --out out/turn_prior model.turn_prior=true

Runs the documented commands (`hybrid-depth sample`, `hybrid-depth train`) and prints a Markdown
table for docs/benchmarks.md. Bags and a finished run are reused, so re-running re-evaluates.
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hybrid_depth_core.synthetic.bag_writer import DEPTH_GT_TOPIC
from hybrid_depth_core.evaluation.bag_evaluation import evaluate_bag
from hybrid_depth_core.evaluation.metrics import METRICS
from hybrid_depth_core.networks import DepthModel
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.networks.checkpoint import load_checkpoint
from hybrid_depth_core.training.config import checkpoint_config

# (training seeds, frames each, held-out seeds, frames each, extra `sample` options)
SCENES = {
    # A handheld camera's recording, as the user in issue 17 had: 400 JPEG frames of 640x480.
    'room': ((1, 2, 3), 400, (1001, 1002), 200, ['--compressed']),
    # The learning benchmark's drives (seeds 1-16 of 60 frames; held out 1000-1002 of 30).
    'street': (tuple(range(1, 17)), 60, (1000, 1001, 1002), 30, []),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scene', choices=sorted(SCENES), default='room')
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--max-steps', type=int,
                        help='train this many steps instead (a comparison that a busy machine '
                             'cannot distort)')
    parser.add_argument('--out', type=Path, default=Path('out/any_recording'))
    parser.add_argument('overrides', nargs='*', metavar='key=value',
                        help='config overrides passed on to `hybrid-depth train`')
    parser.add_argument('--record-only', action='store_true',
                        help='record the bags and stop (to keep training alone on the machine)')
    args = parser.parse_args()

    train_seeds, train_frames, test_seeds, test_frames, options = SCENES[args.scene]
    bags = args.out / 'bags'
    train_bags = [record(bags / f'{args.scene}_{seed}', args.scene, seed, train_frames, options)
                  for seed in train_seeds]
    test_bags = [record(bags / f'{args.scene}_{seed}', args.scene, seed, test_frames, options)
                 for seed in test_seeds]
    if args.record_only:
        return
    run = args.out / args.scene
    log = args.out / f'{args.scene}_train.log'
    length = (['--max-steps', str(args.max_steps)] if args.max_steps else
              ['--minutes', str(args.minutes)])
    train_once(run, log, train_bags, [*length, *args.overrides])
    strides = re.findall(r'frame stride (\d+)', log.read_text()) if log.exists() else []

    state = load_checkpoint(run / 'last.pt')
    config = checkpoint_config(state['config'], 'checkpoint')
    trained = DepthPredictor.from_checkpoint(run / 'last.pt', device='cpu')
    torch.manual_seed(config.seed)
    untrained = DepthPredictor(DepthModel(config.model), trained.pose,
                               (trained.width, trained.height), torch.device('cpu'))

    def constant(rgb, K, previous=None, turn=None):
        return np.ones(rgb.shape[:2], np.float32)  # median scaling makes it the GT median

    best = DepthPredictor.from_checkpoint(run / 'best.pt', device='cpu')
    rows = {'trained, with keyframes': (trained.predict, True),
            'trained, single-frame': (trained.predict, False),
            'best.pt (held-out photometric loss), with keyframes': (best.predict, True),
            'untrained': (untrained.predict, False),
            'constant depth': (constant, False)}
    results = {}
    for name, (predict, keyframes) in rows.items():
        per_bag = [evaluate_bag(predict, bag, DEPTH_GT_TOPIC, keyframes=keyframes,
                                progress=False) for bag in test_bags]
        results[name] = pooled(per_bag)
    results['run'] = {'steps': state['step'], 'minutes': state.get('elapsed_s', 0) / 60,
                      'input': f'{trained.width}x{trained.height}',
                      'batch_size': config.batch_size, 'strides': strides}
    (args.out / f'{args.scene}_results.json').write_text(json.dumps(results, indent=2))

    info = results['run']
    print(f'\n{args.scene}: trained {info["steps"]} steps in {info["minutes"]:.1f} min at '
          f'{info["input"]}, batch {info["batch_size"]}, frame strides chosen {strides}; '
          f'held out: seeds {test_seeds}, {test_frames} frames each, median scaling')
    print('| model | AbsRel | SqRel | RMSE | RMSE log | d<1.25 | d<1.25^2 | d<1.25^3 | images '
          '(with a keyframe) |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name in rows:
        r = results[name]
        print(f'| {name} | ' + ' | '.join(f'{r[m]:.3f}' for m in METRICS)
              + f' | {r["images"]} ({r["keyframe_images"]}) |')
    baseline = min(results['untrained']['abs_rel'], results['constant depth']['abs_rel'])
    print(f'the better of constant and untrained / trained AbsRel: '
          f'{baseline / results["trained, with keyframes"]["abs_rel"]:.2f}x')


def train_once(run: Path, log: Path, bags: list[Path], options: list[str]) -> None:
    """`hybrid-depth train` on `bags` into `run` with `options` (its output to `log`), unless a
    finished run is there."""
    if (run / 'last.pt').exists():
        return
    command = ['train', *[f'--bag={bag}' for bag in bags], '--out', str(run), *options]
    print('$ hybrid-depth', ' '.join(command), flush=True)
    started = time.monotonic()
    with open(log, 'w') as file:
        subprocess.run([sys.executable, '-m', 'hybrid_depth_ros.cli', *command],
                       check=True, stdout=file, stderr=subprocess.STDOUT)
    print(f'trained in {(time.monotonic() - started) / 60:.1f} min', flush=True)


def record(path: Path, scene: str, seed: int, frames: int, options: list[str]) -> Path:
    if not path.exists():
        command = ['sample', str(path), '--scene', scene, '--seed', str(seed), '--frames',
                   str(frames), *options]
        print('$ hybrid-depth', ' '.join(command), flush=True)
        subprocess.run([sys.executable, '-m', 'hybrid_depth_ros.cli', *command], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def pooled(per_bag: list[dict]) -> dict:
    """Metrics over all bags' images (each bag's means weighted by its image count)."""
    images = np.array([result['images'] for result in per_bag], float)
    result = {m: float(np.average([r[m] for r in per_bag], weights=images)) for m in METRICS}
    result['images'] = int(images.sum())
    result['keyframe_images'] = sum(r.get('keyframe_images', 0) for r in per_bag)
    return result


if __name__ == '__main__':
    main()
