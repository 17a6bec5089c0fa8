"""Procedural human motion in SMPL pose space (the synthetic benchmark's motion generator).

A video is a sequence of motion segments (walk, run, wave, squat, turn, jumping jacks, box,
idle) cross-faded into each other, plus smooth per-joint noise, clipped to per-joint limits,
seen by a camera whose elevation and roll drift and whose subject's heading drifts and turns.

Joint rotations are written as Euler angles ``(x, y, z)`` in each joint's parent frame and turned
into matrices as ``Rx @ Ry @ Rz`` (z applied first). Axes are SMPL's rest frame: y up, +z
forward, +x the body's left. In that frame a negative x rotation swings a hanging leg (or arm)
forward, a positive x rotation bends a knee, a negative z rotation lowers the left arm from the
T-pose and a negative y rotation bends the left elbow forward. Motions are written for the left
side; the right side gets the mirror image (x kept, y and z negated), so a motion states
"left-side" values for both limbs.

The global orientation is in the camera frame as in SPIN/3DPW: ``Rx(pi)`` turns the y-up body
upright in a y-down camera, facing the camera at heading 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from str_lightning.body.joints import NUM_POSE_PARAMS, NUM_SMPL_JOINTS, SMPL24
from str_lightning.geometry import axis_rotation, euler_to_rotmat, rotmat_to_axis_angle

FPS = 30.0
JOINT = {name: index for index, name in enumerate(SMPL24)}
MIRROR_SIGN = np.array([1.0, -1.0, -1.0])  # left-side Euler (x, y, z) -> right side

# Euler limits (radians) for the left side and the centre line: ((x_min, x_max), (y..), (z..)).
_LIMITS = {
    "pelvis": ((-0.6, 0.8), (-0.6, 0.6), (-0.3, 0.3)),
    "hip": ((-2.2, 0.7), (-0.6, 0.6), (-0.3, 0.9)),
    "knee": ((0.0, 2.4), (-0.05, 0.05), (-0.05, 0.05)),
    "ankle": ((-0.6, 0.6), (-0.3, 0.3), (-0.3, 0.3)),
    "foot": ((-0.3, 0.3), (-0.1, 0.1), (-0.1, 0.1)),
    "spine1": ((-0.3, 0.6), (-0.35, 0.35), (-0.25, 0.25)),
    "spine2": ((-0.3, 0.6), (-0.35, 0.35), (-0.25, 0.25)),
    "spine3": ((-0.3, 0.6), (-0.35, 0.35), (-0.25, 0.25)),
    "smpl_neck": ((-0.5, 0.6), (-0.7, 0.7), (-0.4, 0.4)),
    "smpl_head": ((-0.4, 0.4), (-0.5, 0.5), (-0.3, 0.3)),
    "collar": ((-0.2, 0.2), (-0.3, 0.3), (-0.3, 0.4)),
    "shoulder": ((-2.0, 1.0), (-1.2, 1.0), (-1.5, 1.4)),
    "elbow": ((-0.3, 0.3), (-2.6, 0.0), (-0.1, 0.1)),
    "wrist": ((-0.5, 0.5), (-0.6, 0.6), (-0.8, 0.8)),
    "hand": ((-0.3, 0.3), (-0.3, 0.3), (-0.3, 0.3)),
}
# Amplitude (radians) of the smooth noise added to every axis of a joint.
_NOISE = {
    "pelvis": 0.04, "hip": 0.06, "knee": 0.05, "ankle": 0.06, "foot": 0.04, "spine1": 0.04,
    "spine2": 0.04, "spine3": 0.04, "smpl_neck": 0.08, "smpl_head": 0.08, "collar": 0.04,
    "shoulder": 0.12, "elbow": 0.12, "wrist": 0.15, "hand": 0.1,
}
ARM_DOWN = -1.25  # left shoulder z rotation that lowers the T-pose arm to hang at the side


def _per_joint(table: dict) -> np.ndarray:
    """Expand a left/centre table to all 24 joints (right side mirrored)."""
    rows = []
    for name in SMPL24:
        side, _, part = name.partition("_")
        if side in ("left", "right") and part in table:
            value = np.asarray(table[part], dtype=np.float64)
            if side == "right" and value.ndim == 2:
                signed = value * MIRROR_SIGN[:, None]
                value = np.sort(signed, axis=1)
            rows.append(value)
        else:
            rows.append(np.asarray(table[name], dtype=np.float64))
    return np.stack(rows)


JOINT_LIMITS = _per_joint(_LIMITS)  # (24, 3, 2)
NOISE_AMPLITUDE = _per_joint(_NOISE)  # (24,)


class _Curves:
    """Euler angles (L, 24, 3) and heading rate (L,) of one motion, written left-side first."""

    def __init__(self, frames: int) -> None:
        self.euler = np.zeros((frames, NUM_SMPL_JOINTS, 3))
        self.yaw_rate = np.zeros(frames)  # radians per second, integrated into the heading
        self.limb("shoulder", 2, ARM_DOWN, ARM_DOWN)
        self.limb("elbow", 1, -0.2, -0.2)

    def set(self, joint: str, axis: int, values) -> None:
        self.euler[:, JOINT[joint], axis] = values

    def one(self, side: str, part: str, axis: int, value) -> None:
        """Set ``<side>_<part>`` from a value in left-side convention."""
        sign = MIRROR_SIGN[axis] if side == "right" else 1.0
        self.set(f"{side}_{part}", axis, sign * np.asarray(value))

    def limb(self, part: str, axis: int, left, right) -> None:
        """Set ``left_<part>`` and ``right_<part>``; both values are in left-side convention."""
        self.one("left", part, axis, left)
        self.one("right", part, axis, right)


def _gait(t: np.ndarray, rng: np.random.Generator, freq: float, amp: float, knee_gain: float,
          elbow: float, lean: float) -> _Curves:
    """Walking-like cycle: legs in anti-phase, knees bent in swing, arms counter-swinging."""
    curves = _Curves(len(t))
    phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
    legs = {}
    for side, offset in (("left", 0.0), ("right", np.pi)):
        p = phase + offset
        legs[side] = {
            "hip": -amp * np.sin(p) - 0.5 * lean,
            "knee": 0.1 + knee_gain * amp * np.clip(np.cos(p), 0, None) ** 1.5,
            "ankle": 0.3 * amp * np.sin(p),
            "shoulder": 0.9 * amp * np.sin(p),
            "elbow": -elbow * (1 + 0.3 * np.clip(-np.sin(p), 0, None)),
        }
    curves.limb("hip", 0, legs["left"]["hip"], legs["right"]["hip"])
    curves.limb("knee", 0, legs["left"]["knee"], legs["right"]["knee"])
    curves.limb("ankle", 0, legs["left"]["ankle"], legs["right"]["ankle"])
    curves.limb("shoulder", 0, legs["left"]["shoulder"], legs["right"]["shoulder"])
    curves.limb("elbow", 1, legs["left"]["elbow"], legs["right"]["elbow"])
    curves.set("pelvis", 0, lean)
    curves.set("pelvis", 1, -0.15 * amp * np.sin(phase))
    curves.set("spine2", 1, 0.2 * amp * np.sin(phase))
    return curves


def walk(t: np.ndarray, rng: np.random.Generator) -> _Curves:
    return _gait(t, rng, freq=rng.uniform(0.8, 1.1), amp=rng.uniform(0.35, 0.55),
                 knee_gain=1.6, elbow=rng.uniform(0.15, 0.4), lean=rng.uniform(0.0, 0.08))


def run(t: np.ndarray, rng: np.random.Generator) -> _Curves:
    return _gait(t, rng, freq=rng.uniform(1.3, 1.6), amp=rng.uniform(0.6, 0.85),
                 knee_gain=2.2, elbow=rng.uniform(1.2, 1.6), lean=rng.uniform(0.1, 0.25))


def turn(t: np.ndarray, rng: np.random.Generator) -> _Curves:
    """Small steps while the heading turns steadily one way."""
    curves = _gait(t, rng, freq=rng.uniform(0.8, 1.1), amp=rng.uniform(0.2, 0.35),
                   knee_gain=1.6, elbow=0.2, lean=0.0)
    curves.yaw_rate[:] = rng.choice((-1.0, 1.0)) * rng.uniform(0.8, 1.8)
    return curves


def wave(t: np.ndarray, rng: np.random.Generator) -> _Curves:
    """One raised arm waving side to side, weight shifting a little."""
    curves = _Curves(len(t))
    phase = 2 * np.pi * rng.uniform(1.2, 2.2) * t + rng.uniform(0, 2 * np.pi)
    side, other = ("left", "right") if rng.random() < 0.5 else ("right", "left")
    curves.one(side, "shoulder", 2, 0.7 + 0.3 * np.sin(phase))
    curves.one(side, "shoulder", 0, -0.3)
    curves.one(side, "elbow", 1, -(0.6 + 0.4 * np.sin(phase + 0.5)))
    curves.one(other, "shoulder", 2, ARM_DOWN)
    curves.set("pelvis", 2, 0.05 * np.sin(0.5 * phase))
    curves.set("smpl_neck", 1, 0.2 * (1 if side == "left" else -1))
    return curves


def squat(t: np.ndarray, rng: np.random.Generator) -> _Curves:
    """Knees and hips bend together, torso leans, arms rise forward for balance."""
    curves = _Curves(len(t))
    phase = 2 * np.pi * rng.uniform(0.25, 0.45) * t + rng.uniform(0, 2 * np.pi)
    depth = rng.uniform(0.6, 1.0) * 0.5 * (1 - np.cos(phase))
    curves.limb("hip", 0, -1.7 * depth, -1.7 * depth)
    curves.limb("knee", 0, 2.1 * depth, 2.1 * depth)
    curves.limb("ankle", 0, -0.45 * depth, -0.45 * depth)
    curves.limb("shoulder", 0, -1.3 * depth, -1.3 * depth)
    curves.set("pelvis", 0, 0.35 * depth)
    curves.set("spine1", 0, 0.1 * depth)
    return curves


def jumping_jacks(t: np.ndarray, rng: np.random.Generator) -> _Curves:
    """Arms sweep from the sides to overhead while the legs spread."""
    curves = _Curves(len(t))
    phase = 2 * np.pi * rng.uniform(0.7, 1.1) * t + rng.uniform(0, 2 * np.pi)
    spread = 0.5 * (1 - np.cos(phase))
    arm = ARM_DOWN + 2.4 * spread
    curves.limb("shoulder", 2, arm, arm)
    curves.limb("hip", 2, 0.35 * spread, 0.35 * spread)
    curves.limb("knee", 0, 0.15 + 0.2 * np.sin(phase) ** 2, 0.15 + 0.2 * np.sin(phase) ** 2)
    return curves


def box(t: np.ndarray, rng: np.random.Generator) -> _Curves:
    """Guard stance with alternating punches (elbow extends while the shoulder raises)."""
    curves = _Curves(len(t))
    phase = 2 * np.pi * rng.uniform(0.6, 1.0) * t + rng.uniform(0, 2 * np.pi)
    punch_left = np.clip(np.sin(phase), 0, None) ** 3
    punch_right = np.clip(-np.sin(phase), 0, None) ** 3
    curves.limb("shoulder", 0, -0.9 - 0.6 * punch_left, -0.9 - 0.6 * punch_right)
    curves.limb("shoulder", 2, -1.1, -1.1)
    curves.limb("elbow", 1, -2.1 + 1.9 * punch_left, -2.1 + 1.9 * punch_right)
    curves.limb("hip", 0, -0.25, -0.25)
    curves.limb("knee", 0, 0.3, 0.3)
    curves.set("spine2", 1, 0.25 * (punch_right - punch_left))
    return curves


def idle(t: np.ndarray, rng: np.random.Generator) -> _Curves:
    """Standing: weight shifts, the head looks around, arms hang."""
    curves = _Curves(len(t))
    phase = 2 * np.pi * rng.uniform(0.15, 0.35) * t + rng.uniform(0, 2 * np.pi)
    curves.set("pelvis", 2, 0.06 * np.sin(phase))
    curves.limb("hip", 2, 0.05 * np.sin(phase), -0.05 * np.sin(phase))
    curves.set("smpl_neck", 1, 0.5 * np.sin(0.7 * phase + 1.0))
    return curves


MOTIONS: dict[str, tuple[float, Callable[[np.ndarray, np.random.Generator], _Curves]]] = {
    "walk": (0.20, walk), "run": (0.12, run), "turn": (0.14, turn), "wave": (0.12, wave),
    "squat": (0.12, squat), "jumping_jacks": (0.10, jumping_jacks), "box": (0.10, box),
    "idle": (0.10, idle),
}  # name -> (sampling probability, curve function)


@dataclass(frozen=True)
class MotionSettings:
    """How videos are cut into motion segments and how the view drifts."""

    segment_seconds: tuple[float, float] = (1.5, 3.5)
    blend_seconds: float = 0.2  # logistic time constant of the cross-fade between segments
    heading_drift: float = 0.4  # radians of slow heading wander on top of the motions' turns
    pitch_range: tuple[float, float] = (-0.1, 0.3)  # camera elevation (radians)
    roll_amplitude: float = 0.05


@dataclass(frozen=True)
class Motion:
    """One generated video's motion: axis-angle ``pose`` (L, 72) float32 in the camera frame
    and the motion segments ``[(name, first_frame, end_frame), ...]`` (end exclusive)."""

    pose: np.ndarray
    segments: list[tuple[str, int, int]]


def smooth_noise(rng: np.random.Generator, t: np.ndarray, shape: tuple[int, ...],
                 freq: tuple[float, float] = (0.1, 1.2), waves: int = 3) -> np.ndarray:
    """Smooth random curves ``(L, *shape)`` with unit amplitude bound: a sum of ``waves``
    sinusoids of random frequency (Hz) and phase, each with amplitude ``1 / waves``."""
    f = rng.uniform(*freq, size=(waves, *shape))
    phi = rng.uniform(0, 2 * np.pi, size=(waves, *shape))
    angles = 2 * np.pi * f[None] * t.reshape(-1, 1, *([1] * len(shape))) + phi[None]
    return np.sin(angles).sum(axis=1) / waves


def generate_motion(rng: np.random.Generator, frames: int,
                    settings: MotionSettings = MotionSettings()) -> Motion:
    """A video of ``frames`` frames at :data:`FPS`: cross-faded motion segments, smooth noise,
    joint limits, drifting heading and camera. Deterministic given ``rng``'s state."""
    t = np.arange(frames) / FPS
    segments = _segments(rng, frames, settings.segment_seconds)
    weights = _blend_weights(t, [start for _, start, _ in segments[1:]], settings.blend_seconds)
    euler = np.zeros((frames, NUM_SMPL_JOINTS, 3))
    yaw_rate = np.zeros(frames)
    for (name, _, _), weight in zip(segments, weights):
        curves = MOTIONS[name][1](t, rng)
        euler += weight[:, None, None] * curves.euler
        yaw_rate += weight * curves.yaw_rate
    euler += NOISE_AMPLITUDE[None, :, None] * smooth_noise(rng, t, (NUM_SMPL_JOINTS, 3))
    euler = np.clip(euler, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])
    rotmat = euler_to_rotmat(torch.from_numpy(euler))
    rotmat[:, 0] = _camera_from_world(rng, t, settings) @ _heading(rng, t, yaw_rate, settings) \
        @ rotmat[:, 0]
    axis_angle = rotmat_to_axis_angle(rotmat).numpy()
    return Motion(axis_angle.reshape(frames, NUM_POSE_PARAMS).astype(np.float32), segments)


def _segments(rng: np.random.Generator, frames: int,
              seconds: tuple[float, float]) -> list[tuple[str, int, int]]:
    names = list(MOTIONS)
    probabilities = np.array([MOTIONS[n][0] for n in names])
    probabilities /= probabilities.sum()
    segments, start = [], 0
    while start < frames:
        end = min(frames, start + round(rng.uniform(*seconds) * FPS))
        if frames - end < seconds[0] * FPS / 2:  # no sliver at the end
            end = frames
        previous = segments[-1][0] if segments else None
        name = previous
        while name == previous:
            name = str(rng.choice(names, p=probabilities))
        segments.append((name, start, end))
        start = end
    return segments


def _blend_weights(t: np.ndarray, boundaries: list[int], tau: float) -> np.ndarray:
    """Per-segment weights (S, L) that sum to one: segment k gets ``rise_k - rise_{k+1}``, where
    ``rise_k`` goes from 0 to 1 around boundary k (logistic), ``rise_0 = 1`` and ``rise_S = 0``."""
    rises = [1 / (1 + np.exp(-(t - b / FPS) / tau)) for b in boundaries]
    steps = np.stack([np.ones_like(t), *rises, np.zeros_like(t)])
    return steps[:-1] - steps[1:]


def _heading(rng: np.random.Generator, t: np.ndarray, yaw_rate: np.ndarray,
             settings: MotionSettings) -> torch.Tensor:
    """World rotation about the vertical (y): start heading, the motions' turns, slow drift."""
    turned = np.concatenate(([0.0], np.cumsum(yaw_rate[1:]) / FPS))
    heading = rng.uniform(-np.pi, np.pi) + turned \
        + settings.heading_drift * smooth_noise(rng, t, (), freq=(0.05, 0.3))
    return axis_rotation(torch.from_numpy(heading), 1)


def _camera_from_world(rng: np.random.Generator, t: np.ndarray,
                       settings: MotionSettings) -> torch.Tensor:
    """``Rx(pi)`` (y-up body to y-down camera) after a drifting camera roll and elevation."""
    pitch = rng.uniform(*settings.pitch_range) + 0.05 * smooth_noise(rng, t, (), (0.05, 0.3))
    roll = settings.roll_amplitude * smooth_noise(rng, t, (), (0.05, 0.3))
    angles = torch.from_numpy(np.stack((np.full_like(t, np.pi), roll, pitch)))
    return axis_rotation(angles[0], 0) @ axis_rotation(angles[1], 2) @ axis_rotation(angles[2], 0)
