"""``str-lightning body mannequin|convert|demo``: body-model files."""

from __future__ import annotations

import argparse
from pathlib import Path

from str_lightning.app.commands.arguments import Commands, add_command, add_group


def add_body_commands(commands: Commands) -> None:
    body = add_group(
        commands, "body",
        help="body-model files: the built-in mannequin, SMPL conversion, a posed demo",
        description="Body-model tools. A body model is 'mannequin' (built in) or a directory "
        "with SMPL_NEUTRAL.npz|pkl, J_regressor_extra.npy, J_regressor_h36m.npy and "
        "smpl_mean_params.npz (the SPIN/VIBE/TCMR layout).",
    )
    mannequin = add_command(
        body, "mannequin", _run_mannequin,
        help="write the built-in mannequin in the SMPL file layout",
        description="Write the procedural mannequin as SMPL_NEUTRAL.npz, J_regressor_extra.npy, "
        "J_regressor_h36m.npy and smpl_mean_params.npz into OUT_DIR (same bytes every run).",
    )
    mannequin.add_argument("out_dir", type=Path, metavar="OUT_DIR")

    convert = add_command(
        body, "convert", _run_convert,
        help="convert an official SMPL .pkl (chumpy) to a plain .npz",
        description="Read an SMPL pickle with a restricted unpickler (chumpy arrays and scipy "
        "sparse matrices become numpy arrays; any other object is refused, so no code runs) "
        "and write the arrays to a .npz that loads without pickle.",
    )
    convert.add_argument("src", type=Path, metavar="IN.pkl")
    convert.add_argument("dst", type=Path, metavar="OUT.npz")

    demo = add_command(
        body, "demo", _run_demo,
        help="pose a body model through a short walk and draw it",
        description="Pose the body model through the synthetic benchmark's walk with smplx and "
        "write a filmstrip picture (front and side views) to OUT/walk.png.",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory")
    demo.add_argument("--model", default="mannequin", help="'mannequin' or an SMPL directory")
    demo.add_argument("--frames", type=int, default=8, help="frames in the filmstrip")


def _run_mannequin(args: argparse.Namespace) -> int:
    from str_lightning.body.mannequin import write_mannequin

    for path in write_mannequin(args.out_dir):
        print(path)
    return 0


def _run_convert(args: argparse.Namespace) -> int:
    from str_lightning.body import convert_pkl_to_npz

    print(convert_pkl_to_npz(args.src, args.dst))
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from datamodules.synthetic.filmstrip import walk_filmstrip

    print(walk_filmstrip(args.out, model_path=args.model, frames=args.frames))
    return 0
