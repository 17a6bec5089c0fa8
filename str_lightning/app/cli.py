"""The ``str-lightning`` command.

The Lightning sub-commands (``fit``, ``validate``, ``test``, ``predict``) go to
:class:`~str_lightning.app.lightning_cli.STRLightningCLI`; ``quickstart`` (the main job) and our own
tool groups (``body``, ``data``, ``synth``, ``compare``, ``reproduce``, ``features``, ``demo``)
are plain argparse sub-commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from str_lightning import __version__

LIGHTNING_COMMANDS = {
    "fit": "train a model (LightningCLI; --ckpt_path auto resumes the run)",
    "validate": "evaluate a checkpoint on data.val_datasets (LightningCLI)",
    "test": "evaluate a checkpoint on data.test_datasets (LightningCLI; --ckpt_path best)",
    "predict": "per-frame SMPL, joints and vertices for data.predict_datasets (LightningCLI)",
}


def build_parser() -> argparse.ArgumentParser:
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
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name, summary in LIGHTNING_COMMANDS.items():  # listed here, parsed by LightningCLI
        groups.add_parser(name, help=summary, add_help=False)
    _add_quickstart_command(groups)
    _add_body_commands(groups)
    _add_data_commands(groups)
    _add_compare_command(groups)
    _add_reproduce_command(groups)
    _add_export_command(groups)
    _add_video_commands(groups)
    return parser


def _add_quickstart_command(groups: argparse._SubParsersAction) -> None:
    quickstart = groups.add_parser(
        "quickstart", help="the main job: synthetic benchmark -> fit -> test -> results table",
        description="Generate the synthetic benchmark if absent, fit the experiment config "
        "(STR by default), test its best checkpoint on test and test-dark, evaluate a mean-pose "
        "baseline and print MPJPE / PA-MPJPE / MPVPE / Accel for both.",
    )
    quickstart.add_argument("--config", type=Path, default=Path("configs/experiment/synthetic_str.yaml"),
                            help="experiment config (default: %(default)s)")
    quickstart.add_argument("--preset", default="default", choices=("small", "default"),
                            help="synthetic preset to generate when the data is absent")
    quickstart.add_argument("--seed", type=int, default=0, help="synthetic benchmark seed")
    quickstart.set_defaults(run=_run_quickstart)


def _run_quickstart(args: argparse.Namespace) -> int:
    from str_lightning.app.quickstart import run_quickstart

    run_quickstart(args.config, args.preset, args.seed)
    return 0


def _add_compare_command(groups: argparse._SubParsersAction) -> None:
    from str_lightning.reporting.compare import add_compare_command

    add_compare_command(groups)


def _add_reproduce_command(groups: argparse._SubParsersAction) -> None:
    from str_lightning.app.reproduce import add_reproduce_command

    add_reproduce_command(groups)


def _add_export_command(groups: argparse._SubParsersAction) -> None:
    from str_lightning.outputs.export import add_export_command

    add_export_command(groups)


def _add_video_commands(groups: argparse._SubParsersAction) -> None:
    from str_lightning.app.video.commands import add_video_commands

    add_video_commands(groups)


def _add_data_commands(groups: argparse._SubParsersAction) -> None:
    from datamodules.commands import add_data_commands
    from datamodules.synthetic import add_synth_command

    add_data_commands(groups)
    add_synth_command(groups)


def _add_body_commands(groups: argparse._SubParsersAction) -> None:
    body = groups.add_parser(
        "body", help="body-model files: the built-in mannequin, SMPL conversion, a posed demo",
        description="Body-model tools. A body model is 'mannequin' (built in) or a directory "
        "with SMPL_NEUTRAL.npz|pkl, J_regressor_extra.npy, J_regressor_h36m.npy and "
        "smpl_mean_params.npz (the SPIN/VIBE/TCMR layout).",
    )
    commands = body.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mannequin = commands.add_parser(
        "mannequin", help="write the built-in mannequin in the SMPL file layout",
        description="Write the procedural mannequin as SMPL_NEUTRAL.npz, J_regressor_extra.npy, "
        "J_regressor_h36m.npy and smpl_mean_params.npz into OUT_DIR (same bytes every run).",
    )
    mannequin.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    mannequin.set_defaults(run=_run_mannequin)

    convert = commands.add_parser(
        "convert", help="convert an official SMPL .pkl (chumpy) to a plain .npz",
        description="Read an SMPL pickle with a restricted unpickler (chumpy arrays and scipy "
        "sparse matrices become numpy arrays; any other object is refused, so no code runs) "
        "and write the arrays to a .npz that loads without pickle.",
    )
    convert.add_argument("src", type=Path, metavar="IN.pkl")
    convert.add_argument("dst", type=Path, metavar="OUT.npz")
    convert.set_defaults(run=_run_convert)

    demo = commands.add_parser(
        "demo", help="pose a body model through a short walk and draw it",
        description="Pose the body model through the synthetic benchmark's walk with smplx and "
        "write a filmstrip picture (front and side views) to OUT/walk.png.",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory")
    demo.add_argument("--model", default="mannequin", help="'mannequin' or an SMPL directory")
    demo.add_argument("--frames", type=int, default=8, help="frames in the filmstrip")
    demo.set_defaults(run=_run_demo)


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
    from datamodules.synthetic.demo import walk_filmstrip

    print(walk_filmstrip(args.out, model_path=args.model, frames=args.frames))
    return 0


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
