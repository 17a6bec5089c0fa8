"""The ``str-lightning`` command line: every sub-command's arguments, one module per command
group, each adding its commands with :mod:`~str_lightning.app.commands.arguments`.

The Lightning sub-commands (``fit``, ``validate``, ``test``, ``predict``) are only listed here:
:class:`~str_lightning.app.lightning_cli.STRLightningCLI` parses them.
"""

from __future__ import annotations

import argparse

from str_lightning import __version__
from str_lightning.app.commands.body import add_body_commands
from str_lightning.app.commands.compare import add_compare_command
from str_lightning.app.commands.data import add_data_commands
from str_lightning.app.commands.export import add_export_command
from str_lightning.app.commands.quickstart import add_quickstart_command
from str_lightning.app.commands.reproduce import add_reproduce_commands
from str_lightning.app.commands.synth import add_synth_command
from str_lightning.app.commands.video import add_video_commands

LIGHTNING_COMMANDS = {
    "fit": "train a model (LightningCLI; --ckpt_path auto resumes the run)",
    "validate": "evaluate a checkpoint on data.val_datasets (LightningCLI)",
    "test": "evaluate a checkpoint on data.test_datasets (LightningCLI; --ckpt_path best)",
    "predict": "per-frame SMPL, joints and vertices for data.predict_datasets (LightningCLI)",
}
COMMAND_GROUPS = (add_quickstart_command, add_body_commands, add_data_commands, add_synth_command,
                  add_compare_command, add_reproduce_commands, add_export_command,
                  add_video_commands)  # in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command but the Lightning ones (listed, parsed elsewhere)."""
    parser = argparse.ArgumentParser(
        prog="str-lightning",
        description="STR (BMVC 2022), TCMR-like and VIBE-like video human pose and shape "
        "estimation on PyTorch Lightning.",
        epilog="fit, validate, test and predict take --config FILE.yaml and any --trainer.*, "
        "--model.*, --data.* override (LightningCLI: each has its own --help and --print_config). "
        "An error in what a command is given ends in one message and exit status 2; --verbose "
        "true (any command) or STR_LIGHTNING_VERBOSE=1 also prints its traceback.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name, summary in LIGHTNING_COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    for add_commands in COMMAND_GROUPS:
        add_commands(commands)
    return parser
