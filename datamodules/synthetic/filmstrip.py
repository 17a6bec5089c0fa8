"""``str-lightning body demo``: a body model walking, drawn as a filmstrip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datamodules.synthetic.motion import walk
from str_lightning.body import MANNEQUIN, BodyModel
from str_lightning.body.joints import NUM_BETAS
from str_lightning.body.render import render_views
from str_lightning.geometry import euler_to_rotmat


def walking_rotmats(frames: int, seed: int = 0) -> torch.Tensor:
    """About one gait cycle of the synthetic benchmark's walk, ``(frames, 24, 3, 3)``, in the
    body's own frame (y up, facing +z)."""
    t = np.arange(frames) / frames  # one second: about one cycle at the walk's 0.8-1.1 Hz
    curves = walk(t, np.random.default_rng(seed))
    return euler_to_rotmat(torch.from_numpy(curves.euler)).float()


def walk_filmstrip(out_dir: Path, model_path: str = MANNEQUIN, frames: int = 8) -> Path:
    """Pose ``model_path`` through ``frames`` frames of a walk and write ``out_dir/walk.png``."""
    body = BodyModel(model_path)
    with torch.no_grad():
        vertices = body(walking_rotmats(frames), torch.zeros(frames, NUM_BETAS)).vertices.numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "walk.png"
    render_views(list(vertices), body.faces, [f"frame {t}" for t in range(frames)], out)
    return out
