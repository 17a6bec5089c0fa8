"""``str-lightning synth``: generate the synthetic benchmark."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from datamodules.synthetic.presets import PRESETS, get_preset
from str_lightning.app.commands.arguments import Commands, add_command, non_negative_int


def add_synth_command(commands: Commands) -> None:
    synth = add_command(
        commands, "synth", _run_synth,
        help="generate the synthetic benchmark (the embedded default dataset)",
        description="Generate the synthetic video pose-and-shape benchmark into DIR: procedural "
        "motions in SMPL pose space posed on the built-in mannequin, crop cameras, 2D/3D "
        "targets, and simulated per-frame features with dark, blurred and occluded segments. "
        "Writes the split directories train/, train-2d/ (2D supervision only), motion/ (SMPL "
        "only), val/, test/ and test-dark/ (long dark segments in every video) as clip shards "
        "with manifests, plus README.md (the dataset card) and synthetic.json (every video's "
        "motions and corruption segments). The same --preset and --seed give the same bytes. "
        "See docs/synthetic.md.",
    )
    synth.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="output directory (must not exist unless --overwrite)")
    synth.add_argument("--preset", choices=sorted(PRESETS), default="default",
                       help="'default': the benchmark (D=256, under a minute on 2 CPU cores); "
                       "'small': a few seconds, for tests (default: %(default)s)")
    synth.add_argument("--seed", type=non_negative_int, default=0,
                       help="seed of motions, subjects, cameras, corruptions and noise; the "
                       "feature network has its own fixed seed (default: %(default)s)")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace OUT if it holds a previously generated synthetic dataset")
    synth.add_argument("--quiet", action="store_true", help="no progress bars")


def _run_synth(args: argparse.Namespace) -> int:
    """Generate the dataset; print one line per split directory and the total time."""
    from datamodules.synthetic.generate import generate

    started = time.perf_counter()
    summary = generate(args.out, get_preset(args.preset), args.seed, overwrite=args.overwrite,
                       progress=not args.quiet)
    for directory, counts in summary.items():
        print(f"{args.out / directory}: {counts['videos']} videos, {counts['clips']} clips, "
              f"{counts['frames']} frames")
    print(f"{args.out}: preset {args.preset}, seed {args.seed}, "
          f"{time.perf_counter() - started:.1f} s")
    return 0
