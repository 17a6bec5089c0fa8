"""``str-lightning reproduce released``: released weights against their published numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from str_lightning.app.commands.arguments import Commands, add_command, add_group
from str_lightning.evaluation.published import RELEASES


def add_reproduce_commands(commands: Commands) -> None:
    reproduce = add_group(
        commands, "reproduce",
        help="check the protocol: released TCMR/VIBE weights vs their published numbers",
        description="Reproduce published figures with this project's data path and metrics.")
    released = add_command(
        reproduce, "released", _run_released,
        help="evaluate a released TCMR or VIBE checkpoint on every test set it was "
        "published on and print our figures beside the published ones",
        description="Evaluate a released TCMR or VIBE checkpoint (named as released, e.g. "
        "tcmr_table4_3dpw_test.pth.tar; known: " + ", ".join(RELEASES) + ") on every converted "
        "test set it was published on (the shard directories of docs/data.md's file map below "
        "--data-root) and print each metric beside the published figure, the difference and "
        "whether it lies within the agreement docs/evaluation.md explains. Needs the licensed "
        "SMPL directory.")
    released.add_argument("--method", required=True, choices=("tcmr", "vibe"))
    released.add_argument("--checkpoint", required=True, type=Path, metavar="FILE",
                          help="the released .pth.tar")
    released.add_argument("--data-root", required=True, type=Path, metavar="DIR",
                          help="the root of the converted shards (e.g. data/shards)")
    released.add_argument("--body-model", required=True, metavar="DIR",
                          help="your SMPL directory (docs/body.md)")
    released.add_argument("--release", choices=sorted(RELEASES), default=None,
                          help="which release the file is, when it was renamed (default: from "
                          "its file name)")
    released.add_argument("--run-root", default="runs", help="run directories go below "
                          "RUN_ROOT/released/<release> (default: %(default)s)")
    released.add_argument("--accelerator", default="auto", help="Lightning accelerator "
                          "(default: %(default)s)")
    released.add_argument("--num-workers", type=int, default=4, help="loader workers per test set")
    released.add_argument("--out", type=Path, default=None, metavar="FILE.md",
                          help="also write the table to this Markdown file")


def _run_released(args: argparse.Namespace) -> int:
    from str_lightning.app.reproduction import comparison_markdown, reproduce_released

    reproduction = reproduce_released(
        args.method, args.checkpoint, args.data_root, args.body_model, args.release,
        args.run_root, args.accelerator, args.num_workers)
    table = comparison_markdown(reproduction, args.checkpoint)
    print(f"\n{table}\n\nthe test's record: {reproduction.run_dir / 'results'}")
    if args.out:
        args.out.write_text(table + "\n")
    return 0
