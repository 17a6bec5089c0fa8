"""``str-lightning features|demo``: your own video (optional extra ``.[video]``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import wraps
from pathlib import Path

from torch import nn

from str_lightning.app.commands.arguments import Commands, add_command

BOXES_HELP = ("person boxes of one track: .csv with header frame,x0,y0,x1,y1 or .json list of "
              "objects with those keys; corners in pixels, frame = 0-based index in the video")
WEIGHTS_HELP = ("SPIN checkpoint (e.g. spin_model_checkpoint.pth.tar) whose 'model' ResNet-50 "
                "computes the features")


def add_video_commands(commands: Commands) -> None:
    features = add_command(
        commands, "features", _run_features,
        help="video (or folder of frames) + person boxes -> clip shards for predict",
        description="Crop the person in every boxed frame as SPIN does (box scaled 1.2, square, "
        "224 px, ImageNet normalisation), compute SPIN's ResNet-50 features and write clip "
        "shards (split 'predict') that str-lightning predict reads. Needs pip install "
        "'.[video]'. See docs/usage-own-video.md.",
    )
    _add_video_arguments(features)
    features.add_argument("--out", type=Path, required=True, metavar="SHARD_DIR",
                          help="directory for the shards and manifest.json")
    features.add_argument("--dataset", default="video", help="dataset name stored in the clips")
    features.add_argument("--overwrite", action="store_true", help="replace existing shards")

    demo = add_command(
        commands, "demo", _run_demo,
        help="video + boxes + trained model -> video or GIF of the mesh over frames",
        description="features, then whole-sequence predictions of a model that reads SPIN's "
        "2048-D features (a released TCMR/VIBE file, or a fit of a paper recipe on real data; "
        "checked first), then the mesh drawn over each frame with the crop camera moved into "
        "the full image. Needs pip install '.[video]'. See docs/usage-own-video.md.",
    )
    _add_video_arguments(demo)
    demo.add_argument("--ckpt", type=Path, required=True,
                      help="a str-lightning fit checkpoint of a model on 2048-D features, or a "
                      "released TCMR/VIBE .pth.tar (then with --body-model)")
    demo.add_argument("--body-model", default=None,
                      help="'mannequin' or an SMPL directory: required with a released file; "
                      "replaces a fit checkpoint's own body model")
    demo.add_argument("--out", type=Path, required=True, metavar="OUT.mp4|OUT.gif")
    demo.add_argument("--features-dir", type=Path, default=None,
                      help="where the clip shards go (default: OUT's name + '_features')")


def _add_video_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, metavar="VIDEO_OR_FRAME_DIR")
    parser.add_argument("--boxes", type=Path, required=True, help=BOXES_HELP)
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--spin-checkpoint", type=Path, help=WEIGHTS_HELP)
    weights.add_argument("--random-weights", action="store_true",
                         help="random ResNet-50 weights: tests the plumbing only, meaningless "
                         "features")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate (required for a folder of frames; overrides a file's)")
    parser.add_argument("--batch-size", type=int, default=32, help="crops per ResNet-50 batch")
    parser.add_argument("--device", default="cpu", help="torch device for the ResNet-50")


def _needs_video_extra(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A missing package of the optional extra is a :class:`VideoInputError` that says how to
    install it (the command's errors are then reported like every other one)."""
    @wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        from str_lightning.app.video.frames import VideoInputError

        try:
            return run(args)
        except ModuleNotFoundError as err:
            raise VideoInputError(f"{err}; install the video extra: pip install '.[video]'") from err

    return wrapper


def _backbone(args: argparse.Namespace) -> nn.Module:
    from str_lightning.nets.backbone import ResNet50, load_spin_backbone

    return ResNet50().eval() if args.random_weights else load_spin_backbone(args.spin_checkpoint)


@_needs_video_extra
def _run_features(args: argparse.Namespace) -> int:
    from str_lightning.app.video.features import write_video_shards
    from str_lightning.app.video.frames import open_video, read_boxes

    video, boxes = open_video(args.video, args.fps), read_boxes(args.boxes)
    clips = write_video_shards(video, boxes, _backbone(args), args.out, args.dataset,
                               args.batch_size, args.device, args.overwrite)
    frames = sum(len(clip["valid"]) for clip in clips)
    print(f"{args.out}: {len(clips)} sequence(s), {frames} frames of {video.name}")
    return 0


@_needs_video_extra
def _run_demo(args: argparse.Namespace) -> int:
    from str_lightning.app.video.demo import load_demo_model, run_demo
    from str_lightning.app.video.frames import open_video, read_boxes

    model = load_demo_model(args.ckpt, args.body_model)  # first: a wrong model fails fast
    video, boxes = open_video(args.video, args.fps), read_boxes(args.boxes)
    print(run_demo(video, boxes, model, args.out, _backbone(args), args.features_dir,
                   args.batch_size, args.device))
    return 0
