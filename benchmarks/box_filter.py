"""The SSIM box filter: a depthwise 3x3 convolution (losses.box_filter_3x3) against
avg_pool2d, forward and backward, on this machine's CPU, timed in one run (ratios compare).

    python benchmarks/box_filter.py
"""
import time

import torch
import torch.nn.functional as F

from hybrid_depth_core.deploy.benchmark import cpu_name
from hybrid_depth_core.training.losses import box_filter_3x3


def seconds_per_call(function, x: torch.Tensor, repeats: int = 20) -> float:
    for _ in range(3):
        function(x).sum().backward()
    started = time.perf_counter()
    for _ in range(repeats):
        function(x).sum().backward()
    return (time.perf_counter() - started) / repeats


def main():
    torch.manual_seed(0)
    # SSIM's input at 192x64 for a batch of 6 (mu_x, mu_y, x^2, y^2, xy stacked as channels)
    x = torch.rand(6, 15, 64, 192, requires_grad=True)
    convolution = seconds_per_call(box_filter_3x3, x)
    pooling = seconds_per_call(lambda t: F.avg_pool2d(t, 3, 1), x)
    same = torch.allclose(box_filter_3x3(x), F.avg_pool2d(x, 3, 1), atol=1e-6)
    print(f'{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}')
    print(f'box filter forward + backward: depthwise conv {1000 * convolution:.2f} ms, '
          f'avg_pool2d {1000 * pooling:.2f} ms: {pooling / convolution:.1f}x; same values: '
          f'{same}')


if __name__ == '__main__':
    main()
