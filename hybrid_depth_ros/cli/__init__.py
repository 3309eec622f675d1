"""The `hybrid-depth` command. Each subcommand is a module here with `add_parser(subparsers)`;
modules import their heavy dependencies inside `run` so that `--help` stays instant."""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from hybrid_depth_core import __version__
from hybrid_depth_core.errors import UserError

SUBCOMMANDS = ('demo', 'sample', 'profile', 'bench', 'train', 'evaluate', 'infer', 'export',
               'node', 'play')


class Terminated(BaseException):
    """SIGTERM arrived. Raised like Ctrl-C so that cleanup (`finally`) runs and partial
    outputs are removed, instead of the process dying where it stands."""


def _raise_terminated(signum, frame):
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='hybrid-depth',
        description='Self-supervised monocular depth for ROS 2: data, training, inference.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name in SUBCOMMANDS:
        importlib.import_module(f'{__name__}.{name}').add_parser(subparsers)
    return parser


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with a command's KEY=VALUE overrides allowed anywhere among its
    options: argparse alone takes only the first run of them and calls the rest unrecognized."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, 'overrides') and all(
            '=' in word and not word.startswith('-') for word in extra):
        args.overrides += extra
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return args.run(args) or 0
    except UserError as error:
        _close_progress_bars()
        print(f'hybrid-depth {args.command}: error: {error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _close_progress_bars()
        print(f'hybrid-depth {args.command}: interrupted; partial output removed',
              file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated:
        _close_progress_bars()
        print(f'hybrid-depth {args.command}: terminated; partial output removed',
              file=sys.stderr)
        return 128 + signal.SIGTERM


def _close_progress_bars() -> None:
    """End the bars an error interrupted, before the error is printed: left open, each would
    be redrawn when it is garbage-collected, below the error, as the last line on screen."""
    tqdm = sys.modules.get('tqdm')
    if tqdm is not None:
        for bar in list(tqdm.tqdm._instances):
            bar.close()


def import_ros(module: str):
    """Import `module` of this package that needs ROS 2 (rclpy and the message packages); a
    UserError saying what to do where they are missing."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UserError(f'ROS 2 Python packages are missing ({error}); source a ROS 2 install '
                        f'or install the wheels in requirements.txt') from None


def add_network_size(parser: argparse.ArgumentParser) -> None:
    """--width / --height of a network input (checked by `network_size`)."""
    parser.add_argument('--width', type=int_at_least(64), default=640,
                        help='input width, a multiple of 32 (default: 640)')
    parser.add_argument('--height', type=int_at_least(64), default=192,
                        help='input height, a multiple of 32 (default: 192)')


def network_size(args: argparse.Namespace) -> tuple[int, int]:
    """(width, height) of `add_network_size`'s options; a UserError unless multiples of 32 (the
    encoders halve the input five times)."""
    if args.width % 32 or args.height % 32:
        raise UserError(f'--width and --height must be multiples of 32, got '
                        f'{args.width}x{args.height}')
    return args.width, args.height


def int_at_least(minimum: int):
    """argparse type: an integer >= minimum, with a message naming the bound."""
    return _bounded(int, 'an integer', minimum, inclusive=True)


def float_above(minimum: float, inclusive: bool = False):
    """argparse type: a number > minimum (>= if inclusive), with a message naming the bound."""
    return _bounded(float, 'a number', minimum, inclusive)


def _bounded(convert, noun: str, minimum, inclusive: bool):
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {noun}, got {text!r}') from None
        if not (value >= minimum if inclusive else value > minimum):
            raise argparse.ArgumentTypeError(
                f'must be {">=" if inclusive else ">"} {minimum:g}, got {text}')
        return value
    return parse
