"""What every command module shares: adding a command or a group of commands, argument types.

A command is an ``argparse`` sub-parser whose ``run`` default takes the parsed arguments and
returns the exit status; a heavy library module it calls is imported inside ``run``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

Commands = argparse._SubParsersAction
Run = Callable[[argparse.Namespace], int]


def add_command(commands: Commands, name: str, run: Run, help: str, description: str
                ) -> argparse.ArgumentParser:
    """Add the command ``name`` (its arguments are the caller's to add)."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.set_defaults(run=run)
    return parser


def add_group(commands: Commands, name: str, help: str, description: str) -> Commands:
    """Add the command group ``name``; its commands are added to the returned action."""
    group = commands.add_parser(name, help=help, description=description)
    return group.add_subparsers(dest="command", required=True, metavar="COMMAND")


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value
