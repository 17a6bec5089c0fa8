"""``str-lightning quickstart``: the main job."""

from __future__ import annotations

import argparse
from pathlib import Path

from str_lightning.app.commands.arguments import Commands, add_command


def add_quickstart_command(commands: Commands) -> None:
    quickstart = add_command(
        commands, "quickstart", _run_quickstart,
        help="the main job: synthetic benchmark -> fit -> test -> results table",
        description="Generate the synthetic benchmark if absent, fit the experiment config "
        "(STR by default), test its best checkpoint on test and test-dark, evaluate a mean-pose "
        "baseline and print MPJPE / PA-MPJPE / MPVPE / Accel for both.",
    )
    quickstart.add_argument("--config", type=Path, default=Path("configs/experiment/synthetic_str.yaml"),
                            help="experiment config (default: %(default)s)")
    quickstart.add_argument("--preset", default="default", choices=("small", "default"),
                            help="synthetic preset to generate when the data is absent")
    quickstart.add_argument("--seed", type=int, default=0, help="synthetic benchmark seed")


def _run_quickstart(args: argparse.Namespace) -> int:
    from str_lightning.app.main_job import run_quickstart

    run_quickstart(args.config, args.preset, args.seed)
    return 0
