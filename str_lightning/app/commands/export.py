"""``str-lightning export``: prediction files to meshes, AMASS-style SMPL or BVH."""

from __future__ import annotations

import argparse
from pathlib import Path

from str_lightning.app.commands.arguments import Commands, add_command
from str_lightning.outputs.exporters import FORMATS, UP_AXES


def add_export_command(commands: Commands) -> None:
    export = add_command(
        commands, "export", _run_export,
        help="prediction files to meshes (OBJ/PLY/NPZ), AMASS-style SMPL or BVH",
        description="Export the prediction files that 'str-lightning predict' writes: per-frame "
        "meshes (.obj or .ply per frame, or one .npz of vertices + faces), SMPL parameters in "
        "the AMASS layout, or a BVH animation on the person's own skeleton. Conventions "
        "(up axis, zero translation, one shape per sequence for amass/bvh): docs/predictions.md.",
    )
    export.add_argument("predictions", nargs="+", type=Path, metavar="PRED.npz")
    export.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    export.add_argument("--out", required=True, type=Path, help="output directory")
    export.add_argument("--body-model", default=None,
                        help="'mannequin' or an SMPL directory (default: the one the prediction "
                        "file names)")
    export.add_argument("--up", choices=UP_AXES, default=None,
                        help="up axis of the exported frame (default: y; z for amass)")


def _run_export(args: argparse.Namespace) -> int:
    from str_lightning.outputs.exporters import export_file

    for path in args.predictions:
        for written in export_file(path, args.fmt, args.out, args.body_model, args.up):
            print(written)
    return 0
