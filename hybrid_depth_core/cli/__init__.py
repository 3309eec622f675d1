"""The `hybrid-depth` command. Each subcommand is a module here with `add_parser(subparsers)`;
modules import their heavy dependencies inside `run` so that `--help` stays instant."""
from __future__ import annotations

import argparse
import importlib
import sys

from hybrid_depth_core import __version__
from hybrid_depth_core.errors import UserError

SUBCOMMANDS = ('sample',)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='hybrid-depth',
        description='Self-supervised monocular depth for ROS 2: data, training, inference.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name in SUBCOMMANDS:
        importlib.import_module(f'{__name__}.{name}').add_parser(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except UserError as error:
        print(f'hybrid-depth {args.command}: error: {error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'hybrid-depth {args.command}: interrupted', file=sys.stderr)
        return 130


def int_at_least(minimum: int):
    """argparse type: an integer >= minimum, with a message naming the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be >= {minimum}, got {value}')
        return value
    return parse
