"""Training curves of TensorBoard runs as a PNG (no plotting library: evaluation.visualize).

    python benchmarks/plot_training.py out/learning/hybrid out/learning/resnet18 \
        --out docs/training_curves.png

One panel per scalar (--tags, default: the photometric loss of the depth network, the
teacher's whole loss, and the share of pixels the depth network's photometric loss covers), one
curve per run, named after its directory. Curves are smoothed by a running mean over --smooth
logged points.
"""
import argparse
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hybrid_depth_core.evaluation.visualize import line_plot, write_png

TAGS = {'loss/depth': 'photometric loss of the depth network (its reliable pixels)',
        'loss/teacher': "the single-frame teacher's whole loss",
        'reliable': "share of pixels in the depth network's photometric loss"}


def scalars(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    events = EventAccumulator(str(run / 'tensorboard'))
    events.Reload()
    if tag not in events.Tags()['scalars']:
        raise SystemExit(f'{run}: no scalar {tag!r} (has {events.Tags()["scalars"]})')
    points = events.Scalars(tag)
    return np.array([p.step for p in points]), np.array([p.value for p in points])


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode='valid')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('runs', nargs='+', type=Path, help='training output directories')
    parser.add_argument('--out', type=Path, required=True, help='PNG to write')
    parser.add_argument('--tags', nargs='+', default=list(TAGS))
    parser.add_argument('--smooth', type=int, default=4)
    args = parser.parse_args()
    panels = []
    for tag in args.tags:
        series = {}
        for run in args.runs:
            steps, values = scalars(run, tag)
            series[run.name] = (steps, smooth(values, args.smooth))
        panels.append(line_plot(series, f'{tag}: {TAGS.get(tag, "")}', 'training step', tag,
                                log_y=tag.startswith('loss')))
    write_png(args.out, np.vstack(panels))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
