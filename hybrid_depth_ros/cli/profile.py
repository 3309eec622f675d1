"""`hybrid-depth profile`: parameters and multiply-adds of every model, next to the paper's."""
from __future__ import annotations

import argparse
import json

from hybrid_depth_ros.cli import add_network_size, network_size


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'profile', help='parameters and MACs of the depth and pose networks',
        description='Count parameters (depth encoder + decoder) and multiply-adds (encoder '
                    'alone, and the full per-frame inference) of resnet18 and hybrid, single- '
                    'and multi-frame, and the pose network, at one input size, next to the '
                    "paper's Table 1.")
    add_network_size(parser)
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hybrid_depth_core.networks.complexity import (PAPER_TABLE_1, as_dicts,
                                                       position_table_params, profile_models)

    width, height = network_size(args)
    rows = profile_models(width, height)
    table = position_table_params(width, height)
    if args.json:
        print(json.dumps({'width': width, 'height': height, 'models': as_dicts(rows),
                          'cmt_position_table_params': table}, indent=2))
        return 0
    print(f'input {width}x{height}, batch 1; params = depth encoder + decoder; '
          f'GMACs: conv + linear (+ attention matmuls)')
    print(f'{"model":<26} {"params M":>9} {"enc GMACs":>10} {"enc +attn":>10} '
          f'{"frame GMACs":>12} {"matching Gops":>14}')
    for row in rows:
        print(f'{row.model:<26} {row.params_m:>9.3f} {row.encoder_gmacs_thop:>10.3f} '
              f'{row.encoder_gmacs:>10.3f} {row.frame_gmacs:>12.3f} '
              f'{row.cost_volume_gops:>14.3f}')
    by_name = {row.model: row for row in rows}
    resnet, hybrid = by_name['resnet18 single-frame'], by_name['hybrid single-frame']
    print(f'\nhybrid / resnet18: params {hybrid.params_m / resnet.params_m:.3f}, encoder GMACs '
          f'{hybrid.encoder_gmacs_thop / resnet.encoder_gmacs_thop:.3f} '
          f'(with attention {hybrid.encoder_gmacs / resnet.encoder_gmacs:.3f})')
    print(f'no size-dependent position table; CMT\'s would add {table / 1e6:.3f} M params to the '
          f'hybrid encoder at {width}x{height} and fix it to that size')
    if (width, height) == (640, 192):
        print("paper's Table 1 (640x192):")
        for arch, (params, gmacs) in PAPER_TABLE_1.items():
            ours = by_name[f'{arch} single-frame']
            print(f'  {arch:<9} paper {params:.3f} M / {gmacs:.3f} G; here '
                  f'{ours.params_m:.3f} M ({100 * (ours.params_m / params - 1):+.1f}%) / '
                  f'{ours.encoder_gmacs_thop:.3f} G '
                  f'({100 * (ours.encoder_gmacs_thop / gmacs - 1):+.1f}%)')
    return 0
