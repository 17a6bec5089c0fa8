"""Sizes and parameters of the synthetic benchmark: the ``small`` and ``default`` presets.

Everything that decides the bytes of a generated dataset, except ``--seed``, is here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from datamodules.synthetic.motion import MotionSettings
from datamodules.synthetic.simulated_features import CorruptionSettings

DATASET = "synthetic"


@dataclass(frozen=True)
class SplitPlan:
    """One output directory.

    ``supervision`` is ``"3d"`` (kp2d + kp3d + SMPL), ``"2d"`` (kp2d only) or ``"motion"``
    (pose and shape only, no features: kind "motion" for a motion prior). ``joints3d`` is the kp3d
    joint set: ``spin49`` for training, ``common14`` (through J_regressor_h36m, like 3DPW) for
    evaluation. ``chunk_frames`` cuts videos into clips of at most that many frames (train);
    ``None`` keeps whole videos (evaluation).
    """

    directory: str
    dataset: str
    split: str
    videos: int
    frames: tuple[int, int]  # inclusive range of video lengths
    supervision: str
    joints3d: str = ""
    chunk_frames: int | None = None
    corruption: CorruptionSettings | None = None


@dataclass(frozen=True)
class Preset:
    """A whole benchmark: the feature network, the noise and the splits."""

    name: str
    feature_dim: int
    hidden_dim: int
    appearance_dim: int
    feature_seed: int  # seeds the feature network only; shared by all splits and --seed values
    linear_gain: float  # scale of the feature network's linear path
    nonlinear_gain: float  # scale of its ReLU path
    noise_std: float  # std of the observation noise (clean features average about 0.48)
    background_level: float  # mean of a video's dim background vector
    betas_std: float
    betas_clip: float
    appearance_std: float
    splits: tuple[SplitPlan, ...]
    motion: MotionSettings = field(default_factory=MotionSettings)


def _splits(train: int, train_2d: int, motion: int, val: int, test: int,
            train_frames: tuple[int, int], eval_frames: tuple[int, int], chunk: int,
            everyday: CorruptionSettings, dark: CorruptionSettings) -> tuple[SplitPlan, ...]:
    return (
        SplitPlan("train", DATASET, "train", train, train_frames, "3d", "spin49", chunk, everyday),
        SplitPlan("train-2d", f"{DATASET}-2d", "train", train_2d, train_frames, "2d", "", chunk,
                  everyday),
        SplitPlan("motion", f"{DATASET}-motion", "train", motion, train_frames, "motion", "",
                  chunk),
        SplitPlan("val", DATASET, "val", val, eval_frames, "3d", "common14", None, everyday),
        SplitPlan("test", DATASET, "test", test, eval_frames, "3d", "common14", None, everyday),
        SplitPlan("test-dark", DATASET, "test-dark", test, eval_frames, "3d", "common14", None,
                  dark),
    )


_EVERYDAY = CorruptionSettings(dark_count=(0, 2), dark_frames=(8, 30))
_DARK = CorruptionSettings(dark_count=(2, 2), dark_frames=(25, 50))

DEFAULT = Preset(
    name="default", feature_dim=256, hidden_dim=512, appearance_dim=8, feature_seed=2022,
    linear_gain=2.0, nonlinear_gain=0.5, noise_std=0.1, background_level=0.1, betas_std=0.8,
    betas_clip=2.0, appearance_std=0.5,
    splits=_splits(train=120, train_2d=24, motion=64, val=6, test=10, train_frames=(120, 210),
                   eval_frames=(150, 240), chunk=90, everyday=_EVERYDAY, dark=_DARK),
)
SMALL = replace(
    DEFAULT, name="small", feature_dim=64, hidden_dim=128,
    splits=_splits(train=6, train_2d=2, motion=4, val=2, test=2, train_frames=(48, 72),
                   eval_frames=(64, 96), chunk=32, everyday=_EVERYDAY,
                   dark=replace(_DARK, dark_count=(1, 2), dark_frames=(16, 32))),
)
PRESETS = {p.name: p for p in (SMALL, DEFAULT)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a clear error for an unknown one."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown synthetic preset {name!r}; known: {sorted(PRESETS)}") from None
