"""A small BVH (Biovision Hierarchy) writer for a kinematic tree given by parent indices.

Every joint has three rotation channels ``Xrotation Yrotation Zrotation`` (degrees; the local
rotation is ``Rx @ Ry @ Rz``, :func:`str_lightning.geometry.euler_to_rotmat`); the root also has
``Xposition Yposition Zposition`` first. A joint's world transform is its parent's times
``[R_local | OFFSET]``, as in SMPL's forward kinematics, so SMPL's relative joint rotations and
rest-pose bone offsets go in unchanged. The root's OFFSET is zero and its position channels
hold its world position (readers differ on whether they add the two). Leaves end in an
``End Site`` at their own position (offset zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from str_lightning.geometry import rotmat_to_euler


def depth_first_order(parents: Sequence[int]) -> list[int]:
    """Joint indices in the order the hierarchy lists them (children by ascending index)."""
    children: dict[int, list[int]] = {i: [] for i in range(-1, len(parents))}
    for joint, parent in enumerate(parents):
        children[parent].append(joint)
    if len(children[-1]) != 1:
        raise ValueError(f"a BVH skeleton needs exactly one root (parent -1), got {children[-1]}")
    order, stack = [], [children[-1][0]]
    while stack:
        joint = stack.pop()
        order.append(joint)
        stack.extend(reversed(children[joint]))
    return order


def write_bvh(path: str | Path, names: Sequence[str], parents: Sequence[int], offsets: np.ndarray,
              root_positions: np.ndarray, rotations: np.ndarray, frame_time: float) -> Path:
    """Write an animation of ``F`` frames of a ``J``-joint tree.

    ``parents``: each joint's parent index (-1 for the one root); ``offsets`` ``(J, 3)``: each joint's
    position relative to its parent in the rest pose (the root's is ignored); ``root_positions``
    ``(F, 3)``; ``rotations`` ``(F, J, 3, 3)``: local rotation matrices, the root's in the world
    frame; ``frame_time`` in seconds. Lengths are written as given (choose the unit before).
    """
    joints = len(names)
    if len(parents) != joints or offsets.shape != (joints, 3) or rotations.shape[1:] != (
            joints, 3, 3) or root_positions.shape != (rotations.shape[0], 3):
        raise ValueError(f"write_bvh: inconsistent shapes: {joints} names, {len(parents)} "
                         f"parents, offsets {offsets.shape}, root_positions "
                         f"{root_positions.shape}, rotations {rotations.shape}")
    order = depth_first_order(parents)
    euler = np.degrees(rotmat_to_euler(torch.as_tensor(rotations, dtype=torch.float64)).numpy())
    motion = np.concatenate([root_positions[:, None, :], euler[:, order]], axis=1)
    lines = ["HIERARCHY", *_hierarchy_lines(names, parents, offsets, order[0], 0),
             "MOTION", f"Frames: {rotations.shape[0]}", f"Frame Time: {frame_time:.8f}"]
    lines += [" ".join(f"{value:.6f}" for value in frame) for frame in motion.reshape(len(motion), -1)]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def _hierarchy_lines(names: Sequence[str], parents: Sequence[int], offsets: np.ndarray,
                     joint: int, depth: int) -> list[str]:
    indent = "  " * depth
    children = [j for j, p in enumerate(parents) if p == joint]
    if depth == 0:
        head, offset = f"ROOT {names[joint]}", (0.0, 0.0, 0.0)
        channels = "CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation"
    else:
        head, offset = f"JOINT {names[joint]}", offsets[joint]
        channels = "CHANNELS 3 Xrotation Yrotation Zrotation"
    lines = [f"{indent}{head}", f"{indent}{{", f"{indent}  OFFSET {_triple(offset)}",
             f"{indent}  {channels}"]
    for child in children:
        lines += _hierarchy_lines(names, parents, offsets, child, depth + 1)
    if not children:
        lines += [f"{indent}  End Site", f"{indent}  {{", f"{indent}    OFFSET 0.000000 0.000000 0.000000",
                  f"{indent}  }}"]
    return lines + [f"{indent}}}"]


def _triple(values: Sequence[float]) -> str:
    return " ".join(f"{float(v):.6f}" for v in values)
