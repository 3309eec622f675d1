"""Recorded bags as training data, end to end: does training through bags match training on
the same drives directly, and how much does the decode cache save?

    python benchmarks/bag_round_trip.py --minutes 30 --out out/bag_round_trip

1. `hybrid-depth sample` records the learning benchmark's training drives (seeds 1-16, 60 frames,
   192x64) and its held-out drives (1000-1002, 30 frames) as sqlite3 bags of JPEG images.
2. Decode-cache speed: one pass over every training sample, first with an empty cache (decoding
   the JPEGs), then again (reading the cache): images/s of each.
3. `hybrid-depth train --bag ... --minutes M` with the learning benchmark's hybrid config.
4. `hybrid-depth evaluate --bag` on the held-out bags, for that checkpoint and for the one the
   learning benchmark trained on the same drives directly (out/learning/hybrid/last.pt).
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

TRAIN_SEEDS, HELD_OUT_SEEDS = range(1, 17), (1000, 1001, 1002)
WIDTH, HEIGHT = 192, 64
CLI = [sys.executable, '-m', 'hybrid_depth_ros.cli']


def cli(*args) -> str:
    print('$ hybrid-depth', ' '.join(str(a) for a in args), flush=True)
    result = subprocess.run(CLI + [str(a) for a in args], stdout=subprocess.PIPE, text=True)
    if result.returncode:
        sys.exit(f'hybrid-depth {args[0]} failed')
    return result.stdout


def record(out: Path) -> tuple[list[Path], list[Path]]:
    bags = {}
    for seed, frames in [(s, 60) for s in TRAIN_SEEDS] + [(s, 30) for s in HELD_OUT_SEEDS]:
        bags[seed] = out / 'bags' / f'drive_{seed}'
        if not bags[seed].exists():
            cli('sample', bags[seed], '--frames', frames, '--width', WIDTH, '--height', HEIGHT,
                '--seed', seed, '--storage', 'sqlite3', '--compressed')
    return [bags[s] for s in TRAIN_SEEDS], [bags[s] for s in HELD_OUT_SEEDS]


def cache_speed(bags: list[Path], cache: Path) -> dict:
    """Images/s of one pass over all training samples, cold cache then warm."""
    from hybrid_depth_core.datasets.bag_dataset import BagDataset, BagSource

    shutil.rmtree(cache, ignore_errors=True)
    result = {}
    for name in ('cold', 'warm'):
        started = time.perf_counter()
        dataset = BagDataset([BagSource(bag) for bag in bags], WIDTH, HEIGHT, cache_dir=cache,
                             progress=False)
        for index in range(len(dataset)):
            dataset[index]
        result[f'{name}_images_per_second'] = 3 * len(dataset) / (time.perf_counter() - started)
    result['speed_up'] = result['warm_images_per_second'] / result['cold_images_per_second']
    return result


def evaluate(checkpoint: Path, bags: list[Path]) -> dict:
    """Mean AbsRel etc. over the held-out bags (each bag's per-image mean, then averaged)."""
    per_bag = []
    for bag in bags:
        output = cli('evaluate', '--checkpoint', checkpoint, '--bag', bag, '--gt-depth-topic',
                     '/camera/depth_gt', '--device', 'cpu')
        names, values = output.strip().splitlines()[:2]
        per_bag.append(dict(zip(names.split(), map(float, values.split()))))
        per_bag[-1]['scale'] = float(re.search(r'median scale ratio ([\d.]+)', output)[1])
    return {name: sum(r[name] for r in per_bag) / len(per_bag) for name in per_bag[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--out', type=Path, default=Path('out/bag_round_trip'))
    parser.add_argument('--direct', type=Path, default=Path('out/learning/hybrid/last.pt'),
                        help='checkpoint trained on the same drives through the synthetic dataset')
    args = parser.parse_args()

    train_bags, held_out = record(args.out)
    cache = args.out / 'cache'
    results = {'cache': cache_speed(train_bags, cache)}
    run = args.out / 'hybrid'
    if not (run / 'last.pt').exists():
        bag_args = [a for bag in train_bags for a in ('--bag', bag)]
        cli('train', '--config', 'config/train_synthetic_hybrid.yaml', '--out', run,
            '--minutes', args.minutes, *bag_args, f'data.cache_dir={cache}')
    results['through bags'] = evaluate(run / 'last.pt', held_out)
    if args.direct.exists():
        results['direct synthetic dataset'] = evaluate(args.direct, held_out)
    (args.out / 'results.json').write_text(json.dumps(results, indent=2))

    speed = results['cache']
    print(f'\ndecode cache, one pass over {len(train_bags)} bags: '
          f'{speed["cold_images_per_second"]:.0f} images/s decoding, '
          f'{speed["warm_images_per_second"]:.0f} images/s cached ({speed["speed_up"]:.1f}x)')
    print(f'held-out bags (seeds {HELD_OUT_SEEDS}), {WIDTH}x{HEIGHT}, median scaling, cap 80 m;'
          f' budget {args.minutes} min')
    print('| trained | AbsRel | SqRel | RMSE | RMSE log | d<1.25 | d<1.25^2 | d<1.25^3 | scale |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name, r in results.items():
        if name != 'cache':
            print(f'| {name} | {r["abs_rel"]:.3f} | {r["sq_rel"]:.3f} | {r["rmse"]:.3f} | '
                  f'{r["rmse_log"]:.3f} | {r["a1"]:.3f} | {r["a2"]:.3f} | {r["a3"]:.3f} | '
                  f'{r["scale"]:.2f} |')


if __name__ == '__main__':
    main()
