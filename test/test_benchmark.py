"""`hybrid-depth bench`: every model and precision timed, with the FLOP-limit ratio."""
import json

import numpy as np
import pytest
import torch

from hybrid_depth_core.deploy import benchmark
from hybrid_depth_core.deploy.benchmark import MODELS, format_report, matmul_gflops
from hybrid_depth_ros.cli import main


def test_bench_times_every_model_and_precision_and_relates_them_to_matmul(capsys):
    assert main(['bench', '--width', '64', '--height', '64', '--repeats', '3', '--warmup', '1',
                 '--json']) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {(row['model'], row['precision']): row for row in result['timings']}
    assert set(rows) == {(model, precision) for model in MODELS for precision in ('fp32', 'bf16')}
    for row in rows.values():
        assert 0 < row['median_ms'] <= row['p90_ms']
        assert row['gmacs'] > 0
        # No network outruns a large matmul by 2x: catches a MAC count or unit off by 10^k.
        assert row['limit_ratio'] > 0.5
    # A streamed multi-frame step does more work than a single-frame one.
    assert rows[('hybrid multi-frame', 'fp32')]['gmacs'] > rows[('hybrid single-frame',
                                                                 'fp32')]['gmacs']
    # Both memory layouts timed per precision: the evidence for the predictor's default.
    assert set(result['layout_ms']) == {'fp32', 'bf16'}
    assert all(set(by_layout) == {'nchw', 'channels_last'} and min(by_layout.values()) > 0
               for by_layout in result['layout_ms'].values())
    # The matching timed as inference and as training runs it (with its backward pass).
    assert {'pytorch', 'pytorch forward + backward'} <= set(result['matching_ms'])
    report = format_report(result)
    assert 'hybrid: multi-frame / single-frame (fp32) =' in report
    assert 'hybrid single-frame: fp32 / bf16 time =' in report


def test_matmul_rate_counts_two_n_cubed_operations_per_product(monkeypatch):
    """With a clock that ticks 1/8 s per reading, a 1 s measurement times exactly 7 products
    over 9/8 s: the rate must be 7 x 2 x 64^3 operations / 1.125 s."""
    ticks = iter(np.arange(1, 100) / 8)
    monkeypatch.setattr(benchmark.time, 'perf_counter', lambda: float(next(ticks)))
    rate = matmul_gflops(torch.device('cpu'), 'fp32', size=64, seconds=1.0)
    assert rate == pytest.approx(7 * 2 * 64 ** 3 / 1.125 / 1e9, rel=1e-12)


def test_bench_refuses_a_precision_the_device_lacks(capsys):
    assert main(['bench', '--precision', 'fp16']) == 1
    assert 'not available on cpu' in capsys.readouterr().err
