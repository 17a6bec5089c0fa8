"""The interface every encoder offers (STR, TCMR-like, VIBE-like, the single-frame control).

An encoder maps a window of per-frame features ``(B, T, D)`` to the features of its *target
frames*: the middle frame ``T // 2`` (``target_frames == "middle"``, output ``(B, D)``) or every
frame (``"all"``, output ``(B, T, D)``). Whole-sequence inference and the training loop need
nothing else to run any encoder.

In training (``train=True``) a middle-frame encoder may return features for every frame,
``(B, T, D)``, to be supervised at every frame (STR with ``supervise_frames="all"``): the
training loop reads which frames each output holds from its shape, while ``target_frames``
says what inference predicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from torch import Tensor

TargetFrames = Literal["middle", "all"]


class ModelFileError(ValueError):
    """A file of weights (a SPIN checkpoint, a released TCMR/VIBE file) that lacks what it must
    hold or does not fit the model; the message names the file or the parameters."""


@dataclass
class EncoderOutput:
    """What an encoder returns.

    ``features``: the features regressed for the target frames, ``(B, D)`` or ``(B, T, D)``.
    ``auxiliary``: extra features, each ``(B, D)`` (the middle frame) or ``(B, T, D)``,
    regressed and supervised against the targets of those frames in training (TCMR's
    past/future, STR's F_SF/F_CF); empty in eval mode.
    """

    features: Tensor
    auxiliary: dict[str, Tensor] = field(default_factory=dict)


class TemporalEncoder(Protocol):
    """Structural type of STREncoder, TCMREncoder, VIBEEncoder and SingleFrameEncoder."""

    target_frames: TargetFrames
    seq_len: int
    feature_dim: int

    def __call__(self, features: Tensor, train: bool = False) -> EncoderOutput: ...


def check_window(features: Tensor, seq_len: int, feature_dim: int, owner: str) -> None:
    """Raise ValueError unless ``features`` is a ``(B, seq_len, feature_dim)`` window."""
    if features.dim() != 3 or features.shape[1:] != (seq_len, feature_dim):
        raise ValueError(
            f"{owner} expects features of shape (B, {seq_len}, {feature_dim}) "
            f"(seq_len={seq_len}, feature_dim={feature_dim}), got {tuple(features.shape)}"
        )


def middle_index(seq_len: int) -> int:
    """Index of the target frame of a "middle" encoder (TCMR's ``int(T / 2)``)."""
    return seq_len // 2


def check_middle_window_length(seq_len: int, owner: str) -> None:
    """A middle-frame encoder needs at least one frame on each side of the middle one."""
    if seq_len < 3:
        raise ValueError(f"{owner} needs seq_len >= 3 (frames before and after the middle), "
                         f"got seq_len={seq_len}")
