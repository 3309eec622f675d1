"""Does training make depth right? Train hybrid and resnet18 multi-frame on synthetic drives for
the same wall-clock budget, evaluate on held-out drives, and compare with the same networks
untrained and with a constant-depth prediction.

    python benchmarks/learning.py --minutes 30 --out out/learning

Runs exactly the documented commands (`hybrid-depth train --config config/train_synthetic_*.yaml
--out DIR --minutes M`) and prints a Markdown table for docs/benchmarks.md. The trained networks
are also scored without the previous frame (`evaluate --single-frame`), to show what it adds. A
finished run's checkpoint is reused, so the script can be re-run to re-evaluate.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hybrid_depth_core.evaluation.drivers import evaluate_synthetic
from hybrid_depth_core.networks import DepthModel
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.networks.checkpoint import load_checkpoint
from hybrid_depth_core.training.config import load_config

HELD_OUT_SEEDS = (1000, 1001, 1002)  # training configs use seeds 1-16


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--out', type=Path, default=Path('out/learning'))
    parser.add_argument('--frames', type=int, default=30, help='frames per held-out drive')
    parser.add_argument('--archs', nargs='+', default=['hybrid', 'resnet18'])
    args = parser.parse_args()

    results = {}
    for arch in args.archs:
        config_path = Path(f'config/train_synthetic_{arch}.yaml')
        run = args.out / arch
        if not (run / 'last.pt').exists():
            command = [sys.executable, '-m', 'hybrid_depth_ros.cli', 'train', '--config',
                       str(config_path), '--out', str(run), '--minutes', str(args.minutes)]
            print('$', ' '.join(command[2:]), flush=True)
            started = time.monotonic()
            subprocess.run(command, check=True)
            print(f'trained {arch} in {(time.monotonic() - started) / 60:.1f} min', flush=True)
        state = load_checkpoint(run / 'last.pt')
        trained = DepthPredictor.from_checkpoint(run / 'last.pt', device='cpu')
        config = load_config(config_path)
        torch.manual_seed(config.seed)
        untrained = DepthPredictor(DepthModel(config.model), trained.pose,
                                   (trained.width, trained.height), torch.device('cpu'))

        def without_previous(rgb, K, previous=None, turn=None):  # `evaluate --single-frame`
            return trained.predict(rgb, K)
        for name, predict in ((f'{arch} trained', trained.predict),
                              (f'{arch} trained, without the previous frame', without_previous),
                              (f'{arch} untrained', untrained.predict)):
            results[name] = evaluate_synthetic(predict, HELD_OUT_SEEDS, args.frames,
                                               trained.width, trained.height)
            results[name]['steps'] = state['step'] if 'untrained' not in name else 0
            results[name]['images_seen'] = results[name]['steps'] * config.batch_size
        width, height = trained.width, trained.height

    def constant(rgb, K, previous=None, turn=None):
        return np.ones(rgb.shape[:2], np.float32)  # median scaling makes it the GT median
    results['constant depth'] = evaluate_synthetic(constant, HELD_OUT_SEEDS, args.frames,
                                                   width, height)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'results.json').write_text(json.dumps(results, indent=2))
    print(f'\nheld-out seeds {HELD_OUT_SEEDS}, {args.frames} frames each, {width}x{height}, '
          f'median scaling, cap 80 m; budget {args.minutes} min per training run')
    print('| model | steps | AbsRel | SqRel | RMSE | RMSE log | d<1.25 | d<1.25^2 | d<1.25^3 |'
          ' scale (std/median) |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for name, r in results.items():
        print(f'| {name} | {r.get("steps", "-")} | {r["abs_rel"]:.3f} | {r["sq_rel"]:.3f} | '
              f'{r["rmse"]:.3f} | {r["rmse_log"]:.3f} | {r["a1"]:.3f} | {r["a2"]:.3f} | '
              f'{r["a3"]:.3f} | {r["scale_median"]:.2f} ({r["scale_std_over_median"]:.3f}) |')
    for arch in args.archs:
        with_previous = results[f'{arch} trained']['abs_rel']
        without = results[f'{arch} trained, without the previous frame']['abs_rel']
        print(f'{arch}: the previous frame lowers AbsRel by {1 - with_previous / without:.1%}')
    if {'hybrid', 'resnet18'} <= set(args.archs):
        ratio = results['hybrid trained']['abs_rel'] / results['resnet18 trained']['abs_rel']
        print(f'AbsRel hybrid / ResNet18: {ratio:.3f}')


if __name__ == '__main__':
    main()
