"""Does the camera's measured motion give metric depth? Record synthetic robot bags (the
`sample` command's TF tree, or odometry), train the no-config recipe on them with the motion
and with --no-motion for the same budget, and score unseen recordings unscaled (the depth as
predicted) and median-scaled, with the median scale ratio.

    python benchmarks/metric_scale.py --scene street --minutes 30
    python benchmarks/metric_scale.py --scene street --minutes 30 --no-motion
    python benchmarks/metric_scale.py --scene street --minutes 30 --motion odom
    python benchmarks/metric_scale.py --scene room --minutes 30
    python benchmarks/metric_scale.py --scene street --minutes 30 --velocity 0.1

Bags and finished runs are reused (re-running re-scores); prints a Markdown row per run for
docs/benchmarks.md and writes OUT/<run>_results.json.
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np

from any_recording import SCENES, record, train_once
from hybrid_depth_core.synthetic.bag_writer import DEPTH_GT_TOPIC
from hybrid_depth_core.evaluation.bag_evaluation import evaluate_bag
from hybrid_depth_core.evaluation.metrics import METRICS
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.networks.checkpoint import load_checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scene', choices=sorted(SCENES), default='street')
    parser.add_argument('--motion', choices=('tf', 'odom'), default='tf',
                        help='what the training bags record (the held-out ones: tf)')
    parser.add_argument('--no-motion', action='store_true', help='train with --no-motion')
    parser.add_argument('--velocity', type=float,
                        help="the velocity loss's weight (loss.velocity; default: the config's)")
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--max-steps', type=int, help='instead of --minutes')
    parser.add_argument('--out', type=Path, default=Path('out/metric_scale'))
    args = parser.parse_args()

    train_seeds, train_frames, test_seeds, test_frames, options = SCENES[args.scene]
    bags = args.out / 'bags'
    kind = '' if args.motion == 'tf' else f'{args.motion}_'
    train_bags = [record(bags / f'{args.scene}_{kind}{seed}', args.scene, seed, train_frames,
                         options + ['--motion', args.motion]) for seed in train_seeds]
    test_bags = [record(bags / f'{args.scene}_{seed}', args.scene, seed, test_frames, options)
                 for seed in test_seeds]
    name = f'{args.scene}_{"no_motion" if args.no_motion else args.motion}'
    overrides = []
    if args.velocity is not None:
        name += f'_velocity{args.velocity:g}'
        overrides = [f'loss.velocity={args.velocity:g}']
    run, log = args.out / name, args.out / f'{name}_train.log'
    budget = (['--max-steps', str(args.max_steps)] if args.max_steps
              else ['--minutes', str(args.minutes)])
    options = budget + (['--no-motion'] if args.no_motion else []) + overrides
    train_once(run, log, train_bags, options)
    reports = re.findall(r'; (motion from .*|no .*motion.*)$', log.read_text(), re.M)

    state = load_checkpoint(run / 'last.pt')
    predictor = DepthPredictor.from_checkpoint(run / 'last.pt', device='cpu')
    per_bag = [evaluate_bag(predictor.predict, bag, DEPTH_GT_TOPIC, progress=False)
               for bag in test_bags]
    images = np.array([r['images'] for r in per_bag], float)
    result = {kind: {m: float(np.average([r[kind][m] for r in per_bag], weights=images))
                     for m in METRICS} for kind in ('unscaled', 'median_scaled')}
    result.update(
        scale_median_per_bag=[r['scale_median'] for r in per_bag],
        # the image-weighted mean of the bags' median ratios
        scale_median=float(np.average([r['scale_median'] for r in per_bag], weights=images)),
        images=int(images.sum()), steps=state['step'],
        minutes=state.get('elapsed_s', 0) / 60, input=f'{predictor.width}x{predictor.height}',
        metric_checkpoint=predictor.metric, scale=state.get('scale'), motion_reports=reports)
    (args.out / f'{name}_results.json').write_text(json.dumps(result, indent=2))

    print(f'\n{name}: {result["steps"]} steps in {result["minutes"]:.1f} min at '
          f'{result["input"]}; checkpoint metric: {predictor.metric}; held out: seeds '
          f'{test_seeds}, {test_frames} frames each, with keyframes')
    print('| run | unscaled AbsRel | median-scaled AbsRel | unscaled / scaled | median scale '
          'ratio (per bag) | unscaled RMSE | unscaled d<1.25 |')
    print('|---|---|---|---|---|---|---|')
    unscaled, scaled = result['unscaled'], result['median_scaled']
    print(f'| {name} | {unscaled["abs_rel"]:.3f} | {scaled["abs_rel"]:.3f} | '
          f'{unscaled["abs_rel"] / scaled["abs_rel"]:.2f} | {result["scale_median"]:.3f} ('
          + ', '.join(f'{r:.3f}' for r in result['scale_median_per_bag'])
          + f') | {unscaled["rmse"]:.3f} | {unscaled["a1"]:.3f} |')


if __name__ == '__main__':
    main()
