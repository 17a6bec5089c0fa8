"""The mannequin: a procedurally generated body model in the exact SMPL file layout.

Real SMPL files are licensed, so tests, the synthetic benchmark and the demo use this built-in
stand-in. It has SMPL's sizes (6890 vertices, 13776 faces, the 24-joint kinematic tree, 10 shape
and 207 pose directions) and SPIN's extra files, so every code path that reads SMPL reads it too.

Frame and size: metres, y up, the face looks toward +z, the body's left is +x, T-pose rest with
the arms straight out along ±x and palms down. The pelvis joint is at the origin (the root
rotation turns the body about it); the soles are at y = -0.94 and the top of the head at
y ≈ 0.775, so the rest height is about 1.71 m.

Surface: one closed, connected, consistently oriented genus-0 triangle mesh (so F = 2V - 4). It is
swept as rings of vertices: a torso tube from the crotch up through neck and head to a pole at
the head top; each leg starts from half of the torso's bottom ring plus a crotch path across its
middle and runs down to the ankle, where its rings turn into horizontal slices of the foot and
close with a flat sole; each arm starts from a rectangular hole cut in the torso's side at the
shoulder and runs out to a mitten hand closed at the finger tips. The longest edges are then split
until there are exactly 6890 vertices, and vertices are relabelled so that smplx's default
vertex ids for SMPL (``smplx.vertex_ids.vertex_ids["smplh"]``: nose, eyes, ears, toes, heels,
finger tips) sit on those body parts.

Skinning weights blend smoothly along each limb across every joint; the joint regressors are
maximum-entropy (positive, summing to one) vertex weights whose mean is exactly the intended rest
joint. ``posedirs`` are all zero: the mannequin has no pose-dependent corrections.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from str_lightning.body.joints import EXTRA9, H36M17, NUM_BETAS, SMPL24, SMPL_PARENTS
from str_lightning.body.model_files import NUM_VERTICES, BodyFiles, write_npz
from str_lightning.geometry import axis_angle_to_rotmat, rotmat_to_rot6d

NUM_POSE_BASIS = 9 * (len(SMPL24) - 1)
ROOT_PARENT = 4294967295  # how SMPL files store the root's missing parent (uint32 -1)

# smplx's default extra-joint vertex ids for SMPL, copied as facts (smplx/vertex_ids.py, "smplh").
SMPLX_VERTEX_IDS: dict[str, int] = {
    "nose": 332, "reye": 6260, "leye": 2800, "rear": 4071, "lear": 583,
    "LBigToe": 3216, "LSmallToe": 3226, "LHeel": 3387,
    "RBigToe": 6617, "RSmallToe": 6624, "RHeel": 6787,
    "lthumb": 2746, "lindex": 2319, "lmiddle": 2445, "lring": 2556, "lpinky": 2673,
    "rthumb": 6191, "rindex": 5782, "rmiddle": 5905, "rring": 6016, "rpinky": 6133,
}

# Rest positions of the left-side and midline joints; right-side joints mirror x.
_LEFT_AND_MIDDLE_JOINTS: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, 0.0, 0.0),
    "left_hip": (0.08, -0.09, 0.0),
    "spine1": (0.0, 0.11, -0.01),
    "left_knee": (0.095, -0.47, 0.005),
    "spine2": (0.0, 0.24, -0.005),
    "left_ankle": (0.09, -0.86, -0.035),
    "spine3": (0.0, 0.30, 0.0),
    "left_foot": (0.10, -0.915, 0.085),
    "smpl_neck": (0.0, 0.51, -0.02),
    "left_collar": (0.075, 0.43, -0.01),
    "smpl_head": (0.0, 0.585, 0.03),
    "left_shoulder": (0.18, 0.455, -0.015),
    "left_elbow": (0.44, 0.445, -0.025),
    "left_wrist": (0.69, 0.445, -0.025),
    "left_hand": (0.77, 0.44, -0.025),
    # Joints of J_regressor_extra / J_regressor_h36m that are not SMPL joints (joints.py names).
    "lhip": (0.09, -0.115, 0.0),  # the LSP / H36M hip: a little lower and wider than SMPL's
    "neck": (0.0, 0.50, -0.015),
    "headtop": (0.0, 0.755, 0.015),
    "hip": (0.0, -0.02, 0.0),
    "thorax": (0.0, 0.45, -0.01),
    "spine_h36m": (0.0, 0.22, -0.005),
    "jaw_h36m": (0.0, 0.615, 0.05),
    "head_h36m": (0.0, 0.67, 0.02),
}
# Regressed points that are the SMPL joint of the same side under a short name ("lknee").
_SHORT_NAMED = ("knee", "ankle", "shoulder", "elbow", "wrist")


def _all_rest_points() -> dict[str, np.ndarray]:
    points = {}
    for name, xyz in _LEFT_AND_MIDDLE_JOINTS.items():
        points[name] = np.array(xyz)
        mirrored = np.array((-xyz[0], xyz[1], xyz[2]))
        if name.startswith("left_"):
            points["right_" + name[5:]] = mirrored
        elif name.startswith("l") and xyz[0] != 0.0:
            points["r" + name[1:]] = mirrored
    for part in _SHORT_NAMED:
        for side, prefix in (("l", "left_"), ("r", "right_")):
            points[side + part] = points[prefix + part]
    return points


REST_POINTS: dict[str, np.ndarray] = _all_rest_points()
"""Rest position of every regressed joint, by joint-set name (SMPL24, EXTRA9 and H36M17)."""

# Surface sizes.
_SOLE_Y = -0.94
_HEAD_CENTRE = np.array((0.0, 0.67, 0.02))
_HEAD_RADII = np.array((0.078, 0.105, 0.098))  # x, y, z
_TORSO_SEGMENTS = 48  # vertices per torso ring; the front is segment 0, the left side 12
_CROTCH_POINTS = 5
_ARM_HOLE_SEGMENTS = 8  # the hole spans this many torso segments around each side
_ARM_HOLE_Y = (0.395, 0.505)

# Body parts (per-vertex labels).
TORSO, LEFT_LEG, RIGHT_LEG, LEFT_ARM, RIGHT_ARM = range(5)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ramp(value: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 at ``start``, 1 at ``end``, smooth in between (``start`` > ``end`` ramps downward)."""
    return _smoothstep((value - start) / (end - start))


def _interp_rows(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Interpolate every column of ``table[:, 1:]`` at ``x`` against the key column ``table[:, 0]``."""
    return np.stack([np.interp(x, table[:, 0], table[:, c]) for c in range(1, table.shape[1])], -1)


def _superellipse_radius(u1: np.ndarray, u2: np.ndarray, half1, half2, exponent: float,
                         offset2=0.0) -> np.ndarray:
    """Distance from the origin along unit directions ``(u1, u2)`` to the curve
    ``|p1 / half1|^e + |(p2 - offset2) / half2|^e = 1`` (the origin must lie inside it)."""
    lo, hi = np.zeros_like(u1), np.full_like(u1, 2.0)
    for _ in range(40):  # bisection: the left side grows monotonically along a ray from inside
        mid = 0.5 * (lo + hi)
        outside = np.abs(mid * u1 / half1) ** exponent + \
            np.abs((mid * u2 - offset2) / half2) ** exponent > 1.0
        hi, lo = np.where(outside, mid, hi), np.where(outside, lo, mid)
    return 0.5 * (lo + hi)


@dataclass
class _Mesh:
    """A triangle mesh under construction with per-vertex part labels and ring centres."""

    points: list[np.ndarray] = field(default_factory=list)
    centres: list[np.ndarray] = field(default_factory=list)
    parts: list[np.ndarray] = field(default_factory=list)
    faces: list[np.ndarray] = field(default_factory=list)
    size: int = 0

    def add(self, points: np.ndarray, centre: np.ndarray, part: int) -> np.ndarray:
        """Add vertices sharing one ring ``centre``; returns their indices."""
        points = np.atleast_2d(points)
        self.points.append(points)
        self.centres.append(np.broadcast_to(centre, points.shape).copy())
        self.parts.append(np.full(len(points), part))
        self.size += len(points)
        return np.arange(self.size - len(points), self.size)

    def band(self, ring_a: np.ndarray, ring_b: np.ndarray, skip: np.ndarray | None = None) -> None:
        """Triangulate between two rings, both ordered counter-clockwise about the direction
        from ``ring_a`` to ``ring_b``: the faces then point outward. ``skip`` masks quads out."""
        a0, b0 = ring_a, ring_b
        a1, b1 = np.roll(ring_a, -1), np.roll(ring_b, -1)
        keep = slice(None) if skip is None else ~skip
        self.faces.append(np.stack((a0, a1, b1), -1)[keep])
        self.faces.append(np.stack((a0, b1, b0), -1)[keep])

    def cap(self, ring: np.ndarray, pole: int) -> None:
        """Close the tube's end ``ring`` (counter-clockwise about the outward tube axis)."""
        self.faces.append(np.stack((ring, np.roll(ring, -1), np.full_like(ring, pole)), -1))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Points, centres, parts and faces with unused vertices dropped."""
        points, centres = np.concatenate(self.points), np.concatenate(self.centres)
        parts, faces = np.concatenate(self.parts), np.concatenate(self.faces)
        used = np.zeros(len(points), bool)
        used[faces.ravel()] = True
        new_index = np.cumsum(used) - 1
        return points[used], centres[used], parts[used], new_index[faces]


# ----------------------------------------------------------------------------------------------
# Torso, neck and head


def _torso_levels() -> np.ndarray:
    """Ring heights of the torso tube below the head (crotch to the top of the neck)."""
    return np.concatenate((
        np.linspace(-0.13, _ARM_HOLE_Y[0], 29, endpoint=False),
        np.linspace(_ARM_HOLE_Y[0], _ARM_HOLE_Y[1], 8),  # 7 ring gaps for the arm holes
        np.linspace(0.515, 0.58, 5),
    ))


# y, half-width (x), half-depth (z), centre z, superellipse exponent
_TORSO_PROFILE = np.array([
    (-0.13, 0.150, 0.100, -0.005, 2.6),
    (-0.08, 0.170, 0.110, -0.010, 2.6),
    (0.00, 0.165, 0.105, 0.000, 2.6),
    (0.12, 0.140, 0.095, 0.010, 2.6),
    (0.25, 0.150, 0.105, 0.015, 2.6),
    (0.34, 0.165, 0.110, 0.010, 2.6),
    (0.42, 0.170, 0.100, 0.000, 2.8),
    (0.47, 0.160, 0.085, -0.010, 2.8),
    (0.505, 0.125, 0.070, -0.015, 2.4),
    (0.525, 0.070, 0.060, -0.010, 2.0),
    (0.55, 0.058, 0.055, 0.000, 2.0),
    (0.58, 0.056, 0.056, 0.005, 2.0),
])


def _torso_directions() -> tuple[np.ndarray, np.ndarray]:
    """Unit (x, z) directions of the torso segments, counter-clockwise about +y from the front."""
    theta = 2.0 * math.pi * np.arange(_TORSO_SEGMENTS) / _TORSO_SEGMENTS
    return np.sin(theta), np.cos(theta)


def _head_rings() -> list[tuple[float, np.ndarray]]:
    """(height, (S, 3) points) of the head rings from the chin up to just below the top."""
    ux, uz = _torso_directions()
    theta = np.arctan2(ux, uz)
    rings = []
    for lat in np.radians(np.linspace(-42.0, 80.0, 15)):
        y = _HEAD_CENTRE[1] + _HEAD_RADII[1] * math.sin(lat)
        radius = _superellipse_radius(ux, uz, _HEAD_RADII[0] * math.cos(lat),
                                      _HEAD_RADII[2] * math.cos(lat), 2.0)
        nose = 0.02 * np.exp(-(theta / 0.2) ** 2 - ((y - 0.655) / 0.018) ** 2)
        ears = 0.012 * np.exp(-((np.abs(theta) - math.pi / 2) / 0.16) ** 2 - ((y - 0.665) / 0.025) ** 2)
        chin = 0.012 * np.exp(-(theta / 0.6) ** 2 - ((y - 0.61) / 0.02) ** 2)
        radius = radius + nose + ears + chin
        points = np.stack((radius * ux, np.full_like(ux, y), _HEAD_CENTRE[2] + radius * uz), -1)
        rings.append((y, points))
    return rings


def _build_torso(mesh: _Mesh) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Torso, neck and head; returns the bottom ring and the arm-hole loops by side (+1 left,
    -1 right), each a closed loop of vertices round the hole."""
    ux, uz = _torso_directions()
    levels = _torso_levels()
    rings = []
    for y in levels:
        half_x, half_z, centre_z, exponent = _interp_rows(np.array(y), _TORSO_PROFILE)
        radius = _superellipse_radius(ux, uz, half_x, half_z, exponent, centre_z)
        points = np.stack((radius * ux, np.full_like(ux, y), radius * uz), -1)
        rings.append(mesh.add(points, np.array((0.0, y, 0.0)), TORSO))
    for y, points in _head_rings():
        rings.append(mesh.add(points, np.array((0.0, y, _HEAD_CENTRE[2])), TORSO))
    top = _HEAD_CENTRE + (0.0, _HEAD_RADII[1], 0.0)
    pole = mesh.add(top, top, TORSO)[0]

    hole_rows = np.flatnonzero((levels >= _ARM_HOLE_Y[0] - 1e-9) & (levels <= _ARM_HOLE_Y[1] + 1e-9))
    quarter = _TORSO_SEGMENTS // 4
    half_span = _ARM_HOLE_SEGMENTS // 2
    hole_columns = {side: (quarter * (2 - side) - half_span, quarter * (2 - side) + half_span)
                    for side in (1, -1)}  # left side is segment 12, right side 36
    for i in range(len(rings) - 1):
        skip = np.zeros(_TORSO_SEGMENTS, bool)
        if hole_rows[0] <= i < hole_rows[-1]:
            for k0, k1 in hole_columns.values():
                skip[k0:k1] = True
        mesh.band(rings[i], rings[i + 1], skip)
    mesh.cap(rings[-1], pole)

    grid = np.stack(rings[: len(levels)])
    loops = {}
    for side, (k0, k1) in hole_columns.items():
        r0, r1 = hole_rows[0], hole_rows[-1]
        loops[side] = np.concatenate((
            grid[r0, k0:k1], grid[r0:r1, k1], grid[r1, k1:k0:-1], grid[r1:r0:-1, k0]))
    return rings[0], loops


# ----------------------------------------------------------------------------------------------
# Limbs


def _polyline(names: tuple[str, ...], side: int) -> np.ndarray:
    sided = [name.replace("left_", "right_") if side < 0 else name for name in names]
    return np.stack([REST_POINTS[name] for name in sided])


def _align_angles(loop_angles: np.ndarray, blend: float) -> np.ndarray:
    """Blend the (increasing) angles of a start loop toward evenly spaced ones."""
    count = len(loop_angles)
    even = 2.0 * math.pi * np.arange(count) / count
    even = even + np.mean(loop_angles - even)
    return (1.0 - blend) * loop_angles + blend * even


def _loop_angles(mesh: _Mesh, loop: np.ndarray, centre: np.ndarray, axis1: np.ndarray,
                 axis2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angles of ``loop`` about ``centre`` in the (axis1, axis2) frame, unwrapped to increase;
    the loop is reversed first if it turns the other way."""
    points = np.concatenate(mesh.points)[loop] - centre
    angles = np.unwrap(np.arctan2(points @ axis2, points @ axis1))
    if angles[-1] < angles[0]:
        loop = loop[::-1]
        angles = angles[::-1]
    return loop, angles


def _sweep(mesh: _Mesh, loop: np.ndarray, centres: np.ndarray, axis1: np.ndarray,
           axis2: np.ndarray, radius_at, part: int) -> np.ndarray:
    """Rings from ``loop`` through ``centres``; ``radius_at(i, directions)`` gives ring i's radii
    along its (N, 3) unit directions. Returns the last ring."""
    loop, angles = _loop_angles(mesh, loop, centres[0], axis1, axis2)
    previous = loop
    for i, centre in enumerate(centres[1:], start=1):
        phi = _align_angles(angles, min(1.0, i / 3.0))
        directions = np.cos(phi)[:, None] * axis1 + np.sin(phi)[:, None] * axis2
        points = centre + radius_at(i, directions)[:, None] * directions
        ring = mesh.add(points, centre, part)
        mesh.band(previous, ring)
        previous = ring
    return previous


# y, half-width (x), half-depth (z), centre z offset
_LEG_PROFILE = np.array([
    (-0.17, 0.075, 0.085, 0.000),
    (-0.25, 0.072, 0.078, -0.005),
    (-0.38, 0.058, 0.064, 0.000),
    (-0.45, 0.050, 0.054, 0.005),
    (-0.49, 0.049, 0.051, 0.005),
    (-0.58, 0.050, 0.056, -0.012),
    (-0.70, 0.040, 0.043, -0.008),
    (-0.82, 0.032, 0.034, -0.002),
    (-0.86, 0.032, 0.035, 0.000),
])
_FOOT = {"half_width": 0.048, "heel": 0.065, "toe": 0.185}  # heel/toe: distance from the ankle axis
# Foot slices: (height above the sole, how far the outline has grown from the ankle to the foot)
_FOOT_SLICES = ((0.075, 0.10), (0.06, 0.35), (0.045, 0.6), (0.03, 0.85), (0.015, 1.0),
                (0.004, 1.0), (0.0, 0.93))


def _build_leg(mesh: _Mesh, loop: np.ndarray, side: int) -> None:
    part = LEFT_LEG if side > 0 else RIGHT_LEG
    chain = _polyline(("left_hip", "left_knee", "left_ankle"), side)
    leg_y = np.linspace(-0.17, -0.85, 32)
    foot_y = np.array([_SOLE_Y + h for h, _ in _FOOT_SLICES])
    ys = np.concatenate((leg_y, foot_y))
    axis_xz = np.stack([np.interp(-ys, -chain[:, 1], chain[:, c]) for c in (0, 2)], -1)
    leg_shape = _interp_rows(-leg_y, np.column_stack((-_LEG_PROFILE[:, 0], _LEG_PROFILE[:, 1:])))
    centres = np.column_stack((axis_xz[:, 0], ys, axis_xz[:, 1]))
    centres[: len(leg_y), 2] += leg_shape[:, 2]
    top = np.array((side * 0.085, -0.13, -0.005))
    centres = np.vstack((top, centres))
    ankle_radius = _LEG_PROFILE[-1, 1]

    def radius_at(i: int, directions: np.ndarray) -> np.ndarray:
        ring = i - 1
        if ring < len(leg_y):
            half_x, half_z, _ = leg_shape[ring]
            return _superellipse_radius(directions[:, 0], directions[:, 2], half_x, half_z, 2.0)
        growth = _FOOT_SLICES[ring - len(leg_y)][1]
        half_length = 0.5 * (_FOOT["toe"] + _FOOT["heel"])
        return _superellipse_radius(
            directions[:, 0], directions[:, 2],
            ankle_radius + growth * (_FOOT["half_width"] - ankle_radius),
            ankle_radius + growth * (half_length - ankle_radius),
            2.0 + growth * 0.6,
            growth * 0.5 * (_FOOT["toe"] - _FOOT["heel"]),
        )

    axis1 = np.array((side, 0.0, 0.0))
    axis2 = np.array((0.0, 0.0, side))  # axis1 x axis2 = -y: counter-clockwise about the leg
    sole = _sweep(mesh, loop, centres, axis1, axis2, radius_at, part)
    sole_points = np.concatenate(mesh.points)[sole]
    sole_centre = np.array((centres[-1, 0], _SOLE_Y,
                            centres[-1, 2] + 0.5 * (_FOOT["toe"] - _FOOT["heel"])))
    previous = sole
    for scale in (0.65, 0.3):
        ring = mesh.add(sole_centre + scale * (sole_points - sole_centre), sole_centre, part)
        mesh.band(previous, ring)
        previous = ring
    mesh.cap(previous, mesh.add(sole_centre, sole_centre, part)[0])


def _crotch_loops(mesh: _Mesh, bottom: np.ndarray) -> dict[int, np.ndarray]:
    """Split the torso's bottom ring into the two leg loops with a path across the crotch."""
    points = np.concatenate(mesh.points)
    front, back = points[bottom[0]], points[bottom[_TORSO_SEGMENTS // 2]]
    t = np.arange(1, _CROTCH_POINTS + 1)[:, None] / (_CROTCH_POINTS + 1)
    path_points = (1 - t) * front + t * back
    path_points[:, 1] = -0.145
    path = mesh.add(path_points, path_points * (0.0, 1.0, 0.0), TORSO)  # centres on the y axis
    half = _TORSO_SEGMENTS // 2
    # The bottom ring runs front -> left -> back -> right; each loop is oriented as the leg
    # sweep needs by _loop_angles.
    left = np.concatenate((bottom[: half + 1], path[::-1]))
    right = np.concatenate((bottom[half:], bottom[:1], path))
    return {1: left, -1: right}


# x (distance from the midline), half-height (y), half-depth (z)
_ARM_PROFILE = np.array([
    (0.19, 0.060, 0.060),
    (0.26, 0.050, 0.052),
    (0.38, 0.042, 0.044),
    (0.44, 0.038, 0.040),
    (0.52, 0.040, 0.042),
    (0.64, 0.028, 0.034),
    (0.69, 0.022, 0.032),
    (0.74, 0.018, 0.045),
    (0.80, 0.016, 0.048),
    (0.84, 0.014, 0.044),
    (0.862, 0.011, 0.033),
    (0.872, 0.008, 0.020),
])
_FINGER_TIP_X = 0.878


def _build_arm(mesh: _Mesh, loop: np.ndarray, side: int) -> None:
    part = LEFT_ARM if side > 0 else RIGHT_ARM
    chain = _polyline(("left_shoulder", "left_elbow", "left_wrist", "left_hand"), side)
    reach = np.concatenate((np.linspace(0.19, 0.74, 23), np.linspace(0.765, 0.872, 6)))
    axis_yz = np.stack([np.interp(reach, np.abs(chain[:, 0]), chain[:, c]) for c in (1, 2)], -1)
    centres = np.column_stack((side * reach, axis_yz))
    loop_points = np.concatenate(mesh.points)[loop]
    start = np.array((side * np.abs(loop_points[:, 0]).mean(), axis_yz[0, 0], axis_yz[0, 1]))
    centres = np.vstack((start, centres))
    shape = _interp_rows(reach, _ARM_PROFILE)

    def radius_at(i: int, directions: np.ndarray) -> np.ndarray:
        half_y, half_z = shape[i - 1]
        return _superellipse_radius(directions[:, 1], directions[:, 2], half_y, half_z, 2.2)

    axis1 = np.array((0.0, side, 0.0))
    axis2 = np.array((0.0, 0.0, 1.0))  # axis1 x axis2 = side * x: counter-clockwise outward
    tip = _sweep(mesh, loop, centres, axis1, axis2, radius_at, part)
    end = np.array((side * _FINGER_TIP_X, axis_yz[-1, 0], axis_yz[-1, 1]))
    mesh.cap(tip, mesh.add(end, end, part)[0])


# ----------------------------------------------------------------------------------------------
# Whole surface


def _split_longest_edges(points: np.ndarray, faces: np.ndarray, attributes: list[np.ndarray],
                         target: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Split the longest edge at its midpoint until there are ``target`` vertices. Each split
    keeps the mesh closed, manifold and genus 0; new vertices are appended, their per-vertex
    ``attributes`` the mean of the edge's ends."""
    count = len(points)
    points = np.concatenate((points, np.zeros((target - count, 3))))
    attributes = [np.concatenate((a, np.zeros((target - count, *a.shape[1:])))) for a in attributes]
    faces = faces.copy()
    for new in range(count, target):
        edges = np.stack((faces, np.roll(faces, -1, axis=1)), -1).reshape(-1, 2)
        lengths = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1)
        a, b = edges[np.argmax(lengths)]  # the directed edge a -> b; its twin is b -> a
        for values in (points, *attributes):
            values[new] = 0.5 * (values[a] + values[b])
        added = []
        for u, v in ((a, b), (b, a)):
            row, col = np.argwhere((faces == u) & (np.roll(faces, -1, axis=1) == v))[0]
            opposite = faces[row, (col + 2) % 3]
            faces[row] = (u, new, opposite)
            added.append((new, v, opposite))
        faces = np.vstack((faces, added))
    return points, faces, attributes


@dataclass(frozen=True)
class _Surface:
    """The swept surface before edge splits, with what the weights and shapes are built from."""

    points: np.ndarray  # (V, 3)
    centres: np.ndarray  # (V, 3) centre of the ring each vertex was swept on
    parts: np.ndarray  # (V,) TORSO, LEFT_LEG, ...
    faces: np.ndarray  # (F, 3)


def _build_surface() -> _Surface:
    mesh = _Mesh()
    bottom, arm_loops = _build_torso(mesh)
    for side, loop in _crotch_loops(mesh, bottom).items():
        _build_leg(mesh, loop, side)
    for side, loop in arm_loops.items():
        _build_arm(mesh, loop, side)
    surface = _Surface(*mesh.arrays())
    if len(surface.points) > NUM_VERTICES:
        raise AssertionError(f"mannequin rings give {len(surface.points)} vertices, "
                             f"over {NUM_VERTICES}")
    return surface


# ----------------------------------------------------------------------------------------------
# Landmark vertex ids


def _landmark_targets() -> dict[str, tuple[np.ndarray, tuple[int, ...]]]:
    """smplx vertex-id key -> (a point on the wanted spot, the parts to pick the vertex from)."""
    head_front = _HEAD_CENTRE[2] + _HEAD_RADII[2]
    toe_z = REST_POINTS["left_ankle"][2] + _FOOT["toe"]
    heel_z = REST_POINTS["left_ankle"][2] - _FOOT["heel"]
    ankle_x = REST_POINTS["left_ankle"][0]
    left = {
        "nose": ((0.0, 0.655, head_front + 0.02), (TORSO,)),
        "leye": ((0.032, 0.685, head_front - 0.01), (TORSO,)),
        "lear": ((_HEAD_RADII[0] + 0.012, 0.665, _HEAD_CENTRE[2]), (TORSO,)),
        "LBigToe": ((ankle_x - 0.02, _SOLE_Y + 0.012, toe_z), (LEFT_LEG,)),
        "LSmallToe": ((ankle_x + 0.03, _SOLE_Y + 0.012, toe_z - 0.03), (LEFT_LEG,)),
        "LHeel": ((ankle_x, _SOLE_Y + 0.004, heel_z), (LEFT_LEG,)),
        "lthumb": ((0.80, 0.44, 0.06), (LEFT_ARM,)),
        "lindex": ((0.862, 0.445, 0.03), (LEFT_ARM,)),
        "lmiddle": ((0.878, 0.445, 0.0), (LEFT_ARM,)),
        "lring": ((0.866, 0.445, -0.022), (LEFT_ARM,)),
        "lpinky": ((0.846, 0.445, -0.042), (LEFT_ARM,)),
    }
    mirror_part = {TORSO: TORSO, LEFT_LEG: RIGHT_LEG, LEFT_ARM: RIGHT_ARM}
    targets = {}
    for key, (xyz, parts) in left.items():
        targets[key] = (np.array(xyz), parts)
        if key != "nose":
            right_key = "R" + key[1:] if key[0] == "L" else "r" + key[1:]
            targets[right_key] = (np.array((-xyz[0], xyz[1], xyz[2])),
                                  tuple(mirror_part[p] for p in parts))
    return targets


def _landmark_vertices(surface: _Surface) -> dict[str, int]:
    """smplx vertex-id key -> the vertex of ``surface`` nearest its target on the wanted part."""
    landmarks = {}
    for key, (target, parts) in _landmark_targets().items():
        candidates = np.flatnonzero(np.isin(surface.parts, parts))
        distance = np.linalg.norm(surface.points[candidates] - target, axis=1)
        landmarks[key] = int(candidates[np.argmin(distance)])
    return landmarks


def _landmark_order(landmarks: dict[str, int], count: int) -> np.ndarray:
    """``order[new_id] = old_id``: a relabelling that puts each landmark at its smplx id."""
    order = np.arange(count)
    position = np.arange(count)  # position[old_id] = new_id
    for key, vertex in landmarks.items():
        wanted = SMPLX_VERTEX_IDS[key]
        here, displaced = position[vertex], order[wanted]
        order[wanted], order[here] = vertex, displaced
        position[vertex], position[displaced] = wanted, here
    return order


# ----------------------------------------------------------------------------------------------
# Skinning weights


def _chain_weights(s: np.ndarray, joints: tuple[str, ...], starts: tuple[float, ...],
                   widths: tuple[float, ...]) -> np.ndarray:
    """(V, 24) weights along a chain: ``joints[0]`` owns ``s`` below ``starts[0]``, ``joints[i]``
    owns ``[starts[i-1], starts[i])`` and the last joint the rest, blended smoothly over
    ``±widths[i]`` around each start. The ramps telescope, so rows sum to one."""
    ramps = [np.ones_like(s)] + [_ramp(s, start - w, start + w) for start, w in zip(starts, widths)]
    ramps.append(np.zeros_like(s))
    weights = np.zeros((len(s), len(SMPL24)))
    for i, name in enumerate(joints):
        weights[:, SMPL24.index(name)] += ramps[i] - ramps[i + 1]
    return weights


def _move_weight(weights: np.ndarray, amount: np.ndarray, joint: str,
                 source: str | None = None) -> None:
    """Give ``joint`` the fraction ``amount`` of every vertex's weight (or of ``source``'s)."""
    column = SMPL24.index(joint)
    if source is None:
        moved = weights * amount[:, None]
        weights -= moved
        weights[:, column] += moved.sum(1)
    else:
        moved = weights[:, SMPL24.index(source)] * amount
        weights[:, SMPL24.index(source)] -= moved
        weights[:, column] += moved


def _skinning_weights(surface: _Surface) -> np.ndarray:
    x, y, z = surface.points.T
    weights = np.zeros((len(x), len(SMPL24)))
    torso = surface.parts == TORSO
    p = REST_POINTS
    weights[torso] = _chain_weights(
        y[torso], ("pelvis", "spine1", "spine2", "spine3", "smpl_neck", "smpl_head"),
        tuple(p[n][1] for n in ("spine1", "spine2", "spine3", "smpl_neck", "smpl_head")),
        (0.05, 0.04, 0.03, 0.03, 0.03))
    on_left = _ramp(x, -0.06, 0.06)
    hips = np.where(torso, _ramp(y, 0.0, -0.12), 0.0)  # the lower torso turns with the thighs
    weights *= (1.0 - hips)[:, None]
    weights[:, SMPL24.index("left_hip")] += hips * on_left
    weights[:, SMPL24.index("right_hip")] += hips * (1.0 - on_left)
    for side, prefix in ((1, "left_"), (-1, "right_")):
        on_side = on_left if side > 0 else 1.0 - on_left
        collar = _ramp(side * x, 0.02, 0.13) * _ramp(y, 0.30, 0.42)
        _move_weight(weights, np.where(torso, collar, 0.0), prefix + "collar")

        leg = surface.parts == (LEFT_LEG if side > 0 else RIGHT_LEG)
        names = tuple(prefix + n for n in ("hip", "knee", "ankle"))
        weights[leg] = _chain_weights(-y[leg], names, tuple(-p[n][1] for n in names[1:]),
                                      (0.05, 0.035))
        # The top of the inner thigh meets the crotch, which both hips share.
        other_hip = ("right_" if side > 0 else "left_") + "hip"
        crotch = (1.0 - on_side) * (1.0 - _ramp(y, -0.17, -0.25))
        _move_weight(weights, np.where(leg, crotch, 0.0), other_hip, prefix + "hip")
        foot = p[prefix + "foot"]
        below_ankle = _ramp(y, p[prefix + "ankle"][1] + 0.02, p[prefix + "ankle"][1] - 0.04)
        toes = _ramp(z, foot[2] - 0.1, foot[2] + 0.1) * below_ankle
        _move_weight(weights, np.where(leg, toes, 0.0), prefix + "foot", prefix + "ankle")

        arm = surface.parts == (LEFT_ARM if side > 0 else RIGHT_ARM)
        names = tuple(prefix + n for n in ("collar", "shoulder", "elbow", "wrist", "hand"))
        starts = (0.20, p[prefix + "elbow"][0] * side, p[prefix + "wrist"][0] * side,
                  p[prefix + "hand"][0] * side)
        weights[arm] = _chain_weights(side * x[arm], names, starts, (0.04, 0.035, 0.04, 0.03))
    return weights


# ----------------------------------------------------------------------------------------------
# Shape directions


def _shape_directions(surface: _Surface) -> np.ndarray:
    """(V, 3, 10) smooth displacement fields per unit beta, each a few centimetres."""
    v, parts = surface.points, surface.parts
    x, y, z = v.T
    side = np.where(x >= 0.0, 1.0, -1.0)
    dirs = np.zeros((len(v), 3, NUM_BETAS))

    dirs[:, :, 0] = 0.025 * v  # overall size about the pelvis: +4.3 cm height per unit

    torso_girth = 0.15 * (1.0 - _ramp(y, 0.50, 0.58))
    limb_girth = np.where(parts == TORSO, torso_girth, 0.12)
    limb_girth = np.where(((parts == LEFT_LEG) | (parts == RIGHT_LEG)) & (y < -0.86), 0.04, limb_girth)
    limb_girth = np.where(((parts == LEFT_ARM) | (parts == RIGHT_ARM)) & (np.abs(x) > 0.7), 0.04,
                          limb_girth)
    attach = np.zeros_like(v)  # limbs ride outward with the torso surface they grow from
    attach[(parts == LEFT_LEG) | (parts == RIGHT_LEG), 0] = 0.15 * 0.085
    attach[(parts == LEFT_ARM) | (parts == RIGHT_ARM), 0] = 0.15 * 0.16
    dirs[:, :, 1] = limb_girth[:, None] * (v - surface.centres) + side[:, None] * attach

    hip_y, ankle_y = REST_POINTS["left_hip"][1], REST_POINTS["left_ankle"][1]
    dirs[:, 1, 2] = -0.05 * np.clip((hip_y - y) / (hip_y - ankle_y), 0.0, 1.0)  # leg length

    shoulder_x, wrist_x = REST_POINTS["left_shoulder"][0], REST_POINTS["left_wrist"][0]
    dirs[:, 0, 3] = side * 0.04 * np.clip((np.abs(x) - shoulder_x) / (wrist_x - shoulder_x), 0, 1)

    dirs[:, 0, 4] = side * 0.02 * _ramp(np.abs(x), 0.0, 0.18) * _ramp(y, 0.25, 0.40)  # shoulders

    front = np.clip(z / 0.11, 0.0, 1.0) * (parts == TORSO)
    dirs[:, 2, 5] = 0.035 * front * np.exp(-((y - 0.12) / 0.1) ** 2)  # belly

    dirs[:, :, 6] = 0.12 * (v - _HEAD_CENTRE) * _ramp(y, 0.55, 0.62)[:, None]  # head size

    dirs[:, 0, 7] = 0.02 * np.tanh(x / 0.05) * (1.0 - _ramp(y, -0.05, 0.15))  # hip width

    dirs[:, 1, 8] = 0.04 * _ramp(y, -0.05, 0.45)  # torso length

    dirs[:, 2, 9] = 0.025 * front * np.exp(-((y - 0.33) / 0.08) ** 2)  # chest depth
    return dirs


# ----------------------------------------------------------------------------------------------
# Joint regressors


def _regressor_row(points: np.ndarray, target: np.ndarray, margin: float = 0.04) -> np.ndarray:
    """Positive weights summing to one whose weighted mean of ``points`` is ``target``.

    The vertices within ``margin`` of the nearest one form the support; among weights with the
    wanted mean, the one closest (in relative entropy) to a Gaussian fall-off is chosen: it is
    ``prior * exp(lambda . (p - target))``, with ``lambda`` found by Newton's method.
    """
    distance = np.linalg.norm(points - target, axis=1)
    support = np.flatnonzero(distance <= distance.min() + margin)
    offsets = points[support] - target
    log_prior = -(distance[support] / max(distance.min(), 0.01)) ** 2

    def softmax(lam: np.ndarray) -> tuple[np.ndarray, float]:
        logits = log_prior + offsets @ lam
        top = logits.max()
        weights = np.exp(logits - top)
        return weights / weights.sum(), top + math.log(weights.sum())

    lam = np.zeros(3)
    weights, objective = softmax(lam)
    for _ in range(100):  # Newton with step halving on the convex log-partition function
        mean = weights @ offsets
        if np.linalg.norm(mean) < 1e-10:
            break
        covariance = (offsets * weights[:, None]).T @ offsets - np.outer(mean, mean)
        step = np.linalg.solve(covariance + 1e-12 * np.eye(3), mean)
        for _ in range(30):
            trial, trial_objective = softmax(lam - step)
            if trial_objective <= objective + 1e-12:  # slack for rounding at the optimum
                break
            step = step / 2
        lam, weights, objective = lam - step, trial, trial_objective
    else:
        raise AssertionError(f"joint regressor: {target} is not inside its vertex support")
    row = np.zeros(len(points))
    row[support] = weights
    return row


def _regressor(points: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    return np.stack([_regressor_row(points, REST_POINTS[name]) for name in names])


# ----------------------------------------------------------------------------------------------
# Public API


def _mean_pose() -> np.ndarray:
    """SPIN-style mean pose in 6D (144,): the root turned by pi about x into the camera frame
    (y down, facing the camera), the arms lowered 45 degrees to an A-pose, all else at rest."""
    axis_angle = torch.zeros(len(SMPL24), 3, dtype=torch.float64)
    axis_angle[0, 0] = math.pi
    axis_angle[SMPL24.index("left_shoulder"), 2] = -math.pi / 4
    axis_angle[SMPL24.index("right_shoulder"), 2] = math.pi / 4
    return rotmat_to_rot6d(axis_angle_to_rotmat(axis_angle)).reshape(-1).numpy()


def _build_body() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces, skinning weights and shape directions with SMPL's sizes and smplx's
    landmark vertex ids."""
    surface = _build_surface()
    landmarks = _landmark_vertices(surface)  # splits append vertices: these indices stay valid
    points, faces, (weights, shapedirs) = _split_longest_edges(
        surface.points, surface.faces,
        [_skinning_weights(surface), _shape_directions(surface)], NUM_VERTICES)
    order = _landmark_order(landmarks, NUM_VERTICES)
    new_id = np.empty_like(order)
    new_id[order] = np.arange(NUM_VERTICES)
    return points[order], new_id[faces], weights[order], shapedirs[order]


@functools.lru_cache(maxsize=1)
def _cached_files() -> BodyFiles:
    points, faces, weights, shapedirs = _build_body()
    kintree = np.array([[ROOT_PARENT if p < 0 else p for p in SMPL_PARENTS],
                        list(range(len(SMPL24)))], dtype=np.int64)
    smpl = {
        "v_template": points,
        "f": faces.astype(np.int64),
        "kintree_table": kintree,
        "weights": weights,
        "J_regressor": _regressor(points, SMPL24),
        "shapedirs": shapedirs,
        "posedirs": np.zeros((NUM_VERTICES, 3, NUM_POSE_BASIS)),
    }
    mean_params = {"pose": _mean_pose(), "shape": np.zeros(NUM_BETAS), "cam": np.array((0.9, 0, 0.))}
    files = BodyFiles(
        smpl=smpl,
        j_regressor_extra=_regressor(points, EXTRA9),
        j_regressor_h36m=_regressor(points, H36M17),
        mean_params=mean_params,
    )
    for array in (*smpl.values(), files.j_regressor_extra, files.j_regressor_h36m,
                  *mean_params.values()):
        array.flags.writeable = False
    return files


def build_mannequin() -> BodyFiles:
    """The mannequin as :class:`~str_lightning.body.model_files.BodyFiles` (float64 arrays,
    ``f`` and ``kintree_table`` int64), the same object
    :func:`~str_lightning.body.model_files.load_body_directory` returns for SMPL files.

    Built once per process and cached: every array is read-only (copy before changing one).
    The dicts are fresh on every call, so replacing an entry does not touch the cache.
    """
    files = _cached_files()
    return BodyFiles(dict(files.smpl), files.j_regressor_extra, files.j_regressor_h36m,
                     dict(files.mean_params))


def write_mannequin(out_dir: Path) -> list[Path]:
    """``str-lightning body mannequin OUT_DIR``: write the mannequin as SMPL files
    (SMPL_NEUTRAL.npz, J_regressor_extra.npy, J_regressor_h36m.npy, smpl_mean_params.npz).

    The directory then works anywhere a directory of real SMPL files does. Same bytes every run.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = build_mannequin()
    paths = [
        write_npz(out_dir / "SMPL_NEUTRAL.npz", files.smpl),
        out_dir / "J_regressor_extra.npy",
        out_dir / "J_regressor_h36m.npy",
        write_npz(out_dir / "smpl_mean_params.npz", files.mean_params),
    ]
    np.save(paths[1], files.j_regressor_extra)
    np.save(paths[2], files.j_regressor_h36m)
    return paths
