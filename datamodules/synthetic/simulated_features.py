"""Simulated per-frame image features and the corruptions that mimic hard video conditions.

A fixed random two-layer network maps what an image of a person shows — the pose (24 rotations
in 6D), the shape (10 betas), the crop camera (s, tx, ty) and the person's appearance (a latent
vector per subject) — to ``D`` non-negative channels, like the pooled output of a CNN backbone.
Its weights come from their own seed, so every split (and every ``--seed``) shares one network.

Corruptions act on the clean features of one video, in this order:

1. motion blur: features averaged over a window of neighbouring frames;
2. occlusion: a contiguous block of channels set to zero;
3. darkness: features pulled toward a dim per-video background vector, keeping only 5-30 % of
   their deviation from it (low light: little signal, mostly scene);
4. observation noise: Gaussian, the same absolute level in every frame (so dark frames have a
   low signal-to-noise ratio), then clipped at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch

from str_lightning.body.joints import NUM_POSE_6D
from str_lightning.geometry import rotmat_to_rot6d

CAM_CENTRE = np.array([1.0, 0.0, 0.0])  # typical crop camera (s, tx, ty) of the framing
CAM_SPREAD = np.array([0.1, 0.05, 0.05])  # its typical deviation, to standardise the input


def network_inputs(rotmat: np.ndarray, betas: np.ndarray, cam: np.ndarray,
                   appearance: np.ndarray) -> np.ndarray:
    """Network input ``(L, 144 + 10 + 3 + A)`` from rotations (L, 24, 3, 3), betas (L, 10),
    crop cameras (L, 3) and appearance (L, A); every block is roughly unit scale."""
    rot6d = rotmat_to_rot6d(torch.from_numpy(rotmat)).numpy().reshape(len(rotmat), NUM_POSE_6D)
    return np.concatenate(
        [rot6d, betas, (cam - CAM_CENTRE) / CAM_SPREAD, appearance], axis=1
    ).astype(np.float32)


@dataclass(frozen=True)
class FeatureNetwork:
    """``features = softplus(x W0 + relu(x W1 + b1) W2 + b2)``, weights fixed by ``seed``.

    The linear path ``x W0`` makes pose roughly linearly readable, as in features of a backbone
    trained for pose; the ReLU path makes the mapping non-linear. Their gains set the mix.
    """

    w0: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    @classmethod
    def random(cls, seed: int, input_dim: int, hidden_dim: int, feature_dim: int,
               linear_gain: float, nonlinear_gain: float) -> FeatureNetwork:
        """Gaussian weights scaled to unit-variance paths times their gains; the output bias
        (mean -1) makes channels sparse-ish like pooled ReLU activations."""
        rng = np.random.default_rng(seed)
        weights = {
            "w0": rng.standard_normal((input_dim, feature_dim)) * linear_gain / np.sqrt(input_dim),
            "w1": rng.standard_normal((input_dim, hidden_dim)) * np.sqrt(2 / input_dim),
            "b1": rng.normal(0.0, 0.1, hidden_dim),
            "w2": rng.standard_normal((hidden_dim, feature_dim)) * nonlinear_gain
            * np.sqrt(2 / hidden_dim),
            "b2": rng.normal(-1.0, 0.5, feature_dim),
        }
        return cls(**{k: v.astype(np.float32) for k, v in weights.items()})

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """Clean features ``(L, D)`` float32 for inputs ``(L, input_dim)``."""
        hidden = np.maximum(inputs @ self.w1 + self.b1, 0.0)
        return np.logaddexp(0.0, inputs @ self.w0 + hidden @ self.w2 + self.b2)


@dataclass(frozen=True)
class CorruptionSettings:
    """How many corrupted segments a video gets and how strong they are.

    Counts are inclusive ranges per video; segments of one kind never overlap (each lies in its
    own equal slice of the video); lengths are in frames and capped by the slice.
    """

    dark_count: tuple[int, int]
    dark_frames: tuple[int, int]
    dark_level: tuple[float, float] = (0.05, 0.30)  # fraction of feature deviation kept
    blur_count: tuple[int, int] = (0, 2)
    blur_frames: tuple[int, int] = (5, 15)
    blur_window: tuple[int, int] = (5, 9)  # frames averaged (odd)
    occlusion_count: tuple[int, int] = (0, 1)
    occlusion_frames: tuple[int, int] = (10, 40)
    occlusion_channels: tuple[float, float] = (0.15, 0.35)  # fraction of D zeroed
    ramp_frames: int = 4  # light fades in and out over this many frames


@dataclass(frozen=True)
class Segment:
    """One corrupted stretch of a video: frames ``[start, end)`` and its strength ``level``
    (dark: fraction kept; blur: window; occlusion: first channel and count as ``(c0, n)``)."""

    kind: str
    start: int
    end: int
    level: float | int | tuple[int, int]

    def to_json(self) -> dict:
        return {"kind": self.kind, "start": self.start, "end": self.end,
                "level": list(self.level) if isinstance(self.level, tuple) else self.level}


def sample_segments(rng: np.random.Generator, frames: int, feature_dim: int,
                    settings: CorruptionSettings) -> list[Segment]:
    """Corrupted segments of one video, drawn from ``settings``."""
    segments = []
    for start, end in _place(rng, frames, settings.dark_count, settings.dark_frames):
        segments.append(Segment("dark", start, end, float(rng.uniform(*settings.dark_level))))
    for start, end in _place(rng, frames, settings.blur_count, settings.blur_frames):
        low, high = settings.blur_window
        window = int(rng.choice(np.arange(low, high + 1, 2)))
        segments.append(Segment("blur", start, end, window))
    for start, end in _place(rng, frames, settings.occlusion_count, settings.occlusion_frames):
        width = max(1, round(rng.uniform(*settings.occlusion_channels) * feature_dim))
        first = int(rng.integers(0, feature_dim - width + 1))
        segments.append(Segment("occlusion", start, end, (first, width)))
    return segments


def _place(rng: np.random.Generator, frames: int, count: tuple[int, int],
           length: tuple[int, int]) -> list[tuple[int, int]]:
    n = int(rng.integers(count[0], count[1] + 1))
    slots = np.linspace(0, frames, n + 1).astype(int)
    spans = []
    for slot_start, slot_end in pairwise(slots.tolist()):
        size = min(int(rng.integers(length[0], length[1] + 1)), slot_end - slot_start)
        if size > 0:
            start = slot_start + int(rng.integers(0, slot_end - slot_start - size + 1))
            spans.append((start, start + size))
    return spans


def corrupt(clean: np.ndarray, segments: list[Segment], background: np.ndarray,
            noise_std: float, rng: np.random.Generator, ramp_frames: int) -> np.ndarray:
    """Observed features ``(L, D)`` float32: ``clean`` with ``segments`` applied in the order
    blur, occlusion, dark, then Gaussian noise of std ``noise_std`` and clipping at zero."""
    features = clean.astype(np.float64)
    for segment in _of_kind(segments, "blur"):
        blurred = _moving_average(clean.astype(np.float64), segment.level)
        features[segment.start:segment.end] = blurred[segment.start:segment.end]
    for segment in _of_kind(segments, "occlusion"):
        first, width = segment.level
        features[segment.start:segment.end, first:first + width] = 0.0
    kept = light_level(len(clean), segments, ramp_frames)
    features = background + kept[:, None] * (features - background)
    features += noise_std * rng.standard_normal(features.shape)
    return np.maximum(features, 0.0).astype(np.float32)


def light_level(frames: int, segments: list[Segment], ramp_frames: int) -> np.ndarray:
    """Per-frame fraction ``(L,)`` of the features' deviation from the background that the
    light leaves: 1 in daylight, a dark segment's ``level`` inside it, ramps in between."""
    kept = np.ones(frames)
    for segment in _of_kind(segments, "dark"):
        kept *= 1 - (1 - segment.level) * _envelope(frames, segment, ramp_frames)
    return kept


def _of_kind(segments: list[Segment], kind: str) -> list[Segment]:
    return [s for s in segments if s.kind == kind]


def _envelope(frames: int, segment: Segment, ramp: int) -> np.ndarray:
    """1 inside the segment, raised-cosine ramps of ``ramp`` frames just outside it, 0 else."""
    t = np.arange(frames)
    distance = np.maximum(segment.start - t, t - (segment.end - 1)).clip(min=0)
    return np.where(distance == 0, 1.0,
                    np.where(distance <= ramp, 0.5 * (1 + np.cos(np.pi * distance / (ramp + 1))),
                             0.0))


def _moving_average(features: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    padded = np.pad(features, ((half, half), (0, 0)), mode="edge")
    cumulative = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    return (cumulative[window:] - cumulative[:-window]) / window
