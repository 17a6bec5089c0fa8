"""The pre-training main job: pose a body model through a short walk and draw it."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from str_lightning.body.joints import SMPL24
from str_lightning.body.model_files import MANNEQUIN
from str_lightning.body.smpl import BodyModel
from str_lightning.geometry import axis_angle_to_rotmat


def walking_poses(frames: int, stride_angle: float = 0.5) -> torch.Tensor:
    """One gait cycle as SMPL axis-angle poses ``(frames, 24, 3)`` in the rest frame (y up, +z
    forward): hips swing about x, knees bend on the back-swing, arms hang and swing opposite."""
    pose = torch.zeros(frames, 24, 3)
    joint = {name: i for i, name in enumerate(SMPL24)}
    for t in range(frames):
        phase = 2 * math.pi * t / frames
        swing = stride_angle * math.sin(phase)
        pose[t, joint["left_hip"], 0] = -swing  # negative x rotation moves the leg forward
        pose[t, joint["right_hip"], 0] = swing
        pose[t, joint["left_knee"], 0] = stride_angle * max(0.0, math.sin(phase + math.pi / 2)) + 0.1
        pose[t, joint["right_knee"], 0] = stride_angle * max(0.0, -math.sin(phase + math.pi / 2)) + 0.1
        pose[t, joint["left_shoulder"]] = torch.tensor([0.6 * swing, 0.0, -1.2])
        pose[t, joint["right_shoulder"]] = torch.tensor([-0.6 * swing, 0.0, 1.2])
        pose[t, joint["left_elbow"], 1] = -0.4
        pose[t, joint["right_elbow"], 1] = 0.4
    return pose


def walk_filmstrip(out_dir: Path, model_path: str = MANNEQUIN, frames: int = 8) -> Path:
    """Pose ``model_path`` through ``frames`` frames of a walk and write ``out_dir/walk.png``."""
    from str_lightning.body.render import render_views

    body = BodyModel(model_path)
    rotmat = axis_angle_to_rotmat(walking_poses(frames))
    with torch.no_grad():
        vertices = body(rotmat, torch.zeros(frames, 10)).vertices.numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "walk.png"
    render_views(list(vertices), body.faces, [f"frame {t}" for t in range(frames)], out)
    return out
