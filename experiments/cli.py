"""The ``millinet`` command line.

Each sub-command lives in ``experiments/commands/<name>.py`` and exposes
``register(subparsers)`` (adds its parser and sets ``func``). Heavy libraries (torch, ray) are
imported inside the command's function, so ``millinet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from millinet.envs.errors import MillinetError, MillinetWarning
from millinet.experiments.errors import UserError

COMMANDS = (
    "scenarios", "simulate", "bound", "evaluate", "benchmark", "train", "analyze", "sweep",
    "export",
    "serve", "bench", "demo", "render",
)  # fmt: skip

__all__ = ["COMMANDS", "UserError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="millinet",
        description="RL research framework for 1 ms city compute networks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"millinet.experiments.commands.{name}").register(sub)
    return parser


@contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """Show each :class:`MillinetWarning` as one line ``millinet COMMAND: warning: ...`` on
    stderr (other warnings keep Python's format)."""
    default_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, MillinetWarning):
            print(f"millinet {command}: warning: {message}", file=sys.stderr)
        else:
            default_show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("default", MillinetWarning)
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``millinet`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _one_line_warnings(args.command):
            return int(args.func(args) or 0)
    except MillinetError as exc:  # every user-facing error: one line, no traceback
        one_line = " ".join(str(exc).split())  # a message never spans lines
        print(f"millinet {args.command}: error: {one_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"millinet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
