"""``str-lightning data index|check|convert``: split directories of clip shards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datamodules.schema import Manifest, build_manifest, read_manifest, shard_problems
from str_lightning.app.commands.arguments import Commands, add_command, add_group

SEQ_LEN_HELP = ("training window length whose losses to report: clips shorter than T give no "
                "training window (default: 16, the paper's T)")


def add_data_commands(commands: Commands) -> None:
    data = add_group(
        commands, "data", help="clip shards: index, check, convert from TCMR/VIBE files",
        description="Tools for split directories of WebDataset clip shards (docs/data.md).",
    )
    index = add_command(
        data, "index", _run_index, help="write manifest.json for a directory of shards",
        description="Index every *.tar in DIR (written by any tool that follows docs/data.md) "
        "and write DIR/manifest.json: per-shard sample/frame counts, sha256 and clip spans. A "
        "shard that is not a complete tar (cut inside a header, a member's data or the "
        "end-of-archive marker) is an error and no manifest is written.",
    )
    index.add_argument("directory", type=Path, metavar="DIR")

    check = add_command(
        data, "check", _run_check,
        help="verify shards against the manifest and every sample against the schema",
        description="Verify that each shard of DIR/manifest.json is a complete tar whose clips, "
        "frame counts and byte spans are the ones listed (recounted from the shard), its "
        "sha256, and every sample's members, dtypes, shapes and finiteness; print totals and how "
        "many clips and frames are shorter than a training window (training skips them; "
        "evaluation covers them). Exit status 1 when anything is wrong, with one line per bad "
        "shard or sample.",
    )
    check.add_argument("directory", type=Path, metavar="DIR")
    check.add_argument("--seq-len", type=int, default=None, metavar="T", help=SEQ_LEN_HELP)

    convert = add_command(
        data, "convert", _run_convert, help="convert a TCMR/VIBE preprocessed db file to clip shards",
        description="Convert one preprocessed db file (docs/data.md) of one dataset split into a "
        "split directory of clip shards with its manifest.",
    )
    convert.add_argument("--source", required=True, choices=("tcmr", "vibe"))
    convert.add_argument("--dataset", required=True, help="dataset name, e.g. 3dpw, mpii3d")
    convert.add_argument("--split", required=True, help="split name, e.g. train, val, test")
    convert.add_argument("--db", required=True, type=Path, metavar="FILE", help="db file")
    convert.add_argument("--out", required=True, type=Path, metavar="DIR", help="output dir")
    convert.add_argument("--max-clip-len", type=int, default=None,
                         help="chunk train videos into clips of at most this many frames")
    convert.add_argument("--seq-len", type=int, default=None, metavar="T", help=SEQ_LEN_HELP)
    convert.add_argument("--fps", type=float, default=None,
                         help="frame rate to record (needed for TCMR's AMASS file, whose "
                         "sequences keep their native rates)")
    convert.add_argument("--no-smpl", action="store_true",
                         help="drop SMPL pose/shape supervision (e.g. H36M without NeuralAnnot)")
    convert.add_argument("--overwrite", action="store_true", help="replace existing shards in DIR")


def _run_index(args: argparse.Namespace) -> int:
    manifest = build_manifest(args.directory)
    print(f"{args.directory / 'manifest.json'}: {_totals(manifest)}")
    return 0


def _run_check(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.directory)
    problems = [p for shard in manifest.shards for p in shard_problems(manifest, shard)]
    for problem in problems:
        print(f"BAD {problem}", file=sys.stderr)
    print(f"{args.directory}: {_totals(manifest)}, feature dim {manifest.feature_dim} "
          f"{manifest.feature_dtype}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    print(_short_clip_line(args.directory, manifest, args.seq_len))
    return 1 if problems else 0


def _run_convert(args: argparse.Namespace) -> int:
    from datamodules.converters import convert

    options = {"use_smpl": not args.no_smpl, "fps": args.fps, "overwrite": args.overwrite}
    for option in ("max_clip_len", "seq_len"):
        if getattr(args, option) is not None:
            options[option] = getattr(args, option)
    convert(args.source, args.dataset, args.split, args.db, args.out, **options)
    manifest = read_manifest(args.out)
    print(f"{args.out}: {_totals(manifest)}")
    print(_short_clip_line(args.out, manifest, args.seq_len))
    return 0


def _totals(manifest: Manifest) -> str:
    return (f"{manifest.dataset}/{manifest.split}, {len(manifest.shards)} shards, "
            f"{manifest.samples} samples, {manifest.frames} frames")


def _short_clip_line(directory: Path, manifest: Manifest, seq_len: int | None) -> str:
    # imported here: they import torch, which only running a command needs
    from datamodules.converters.convert import DEFAULT_SEQ_LEN
    from datamodules.loading import manifest_short_clips

    short = manifest_short_clips(manifest, seq_len or DEFAULT_SEQ_LEN)
    return f"{directory}: {short} (evaluation covers every frame)"
