"""Command line: ``python -m pulse_core {upsample,convert,card,evaluate,merge} ...``.

Exit status: 0 success; 2 bad arguments or unreadable input; 3 some sample missed eps;
4 the generator weights could not be loaded.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .common import CliError, print_error

__all__ = ["main"]

# Each module defines register(subparsers), which sets ``func`` on its parser.
COMMANDS = ("upsample", "convert", "card", "evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pulse_core",
        description="PULSE: imagine high-resolution faces that downscale to a low-resolution input. "
                    "The faces are invented; PULSE never recovers anyone's identity.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except CliError as error:
        print_error(str(error))
        return error.code
    except KeyboardInterrupt:
        print_error("interrupted; results written so far are kept")
        return 130
