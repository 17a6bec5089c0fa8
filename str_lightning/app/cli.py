"""The ``str-lightning`` command's entry point.

The Lightning sub-commands (``fit``, ``validate``, ``test``, ``predict``) go to
:class:`~str_lightning.app.lightning_cli.STRLightningCLI`; ``quickstart`` (the main job) and our own
tool groups (``body``, ``data``, ``synth``, ``compare``, ``reproduce``, ``export``, ``features``,
``demo``) are the argparse commands of :mod:`str_lightning.app.commands`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from str_lightning.app.commands import LIGHTNING_COMMANDS, build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``str-lightning`` and ``python -m str_lightning``: every command's
    anticipated errors end in one message and status 2 (:mod:`str_lightning.app.errors`)."""
    from str_lightning.app.errors import reported, wants_traceback, without_verbose_flag

    from_command_line = argv is None
    argv = list(sys.argv[1:] if from_command_line else argv)
    verbose = wants_traceback(argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from str_lightning.app.lightning_cli import run_lightning

        return reported(lambda: run_lightning(None if from_command_line else argv), verbose)
    args = build_parser().parse_args(without_verbose_flag(argv))
    return reported(lambda: args.run(args), verbose)
