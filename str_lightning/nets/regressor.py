"""The HMR/SPIN iterative SMPL regressor shared by every encoder (docs/str.md)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from str_lightning.body import MANNEQUIN, BodyModel
from str_lightning.body.joints import NUM_BETAS, NUM_POSE_6D, NUM_POSE_PARAMS, NUM_SMPL_JOINTS
from str_lightning.geometry import project_to_crop, rot6d_to_rotmat, rotmat_to_axis_angle
from str_lightning.nets.interface import ModelFileError
from str_lightning.safe_pickle import load_torch_file

CAM_SIZE = 3


@dataclass
class RegressorOutput:
    """SMPL prediction per sample; ``...`` are the leading dimensions of the input features."""

    rotmat: Tensor  # (..., 24, 3, 3) joint rotations, global orientation first
    pose: Tensor  # (..., 72) the same as axis-angle
    betas: Tensor  # (..., 10)
    cam: Tensor  # (..., 3) crop camera (s, tx, ty)
    vertices: Tensor | None  # (..., 6890, 3) metres, model frame; None without the mesh
    joints: Tensor  # (..., 49, 3) spin49
    joints2d: Tensor  # (..., 49, 2) normalised crop coordinates


class Regressor(nn.Module):
    """Iterative error feedback from features ``(..., D)`` to SMPL (HMR, as in SPIN/VIBE/TCMR).

    Starting from the mean parameters (buffers ``init_pose`` (1, 144) 6D, ``init_shape``
    (1, 10), ``init_cam`` (1, 3)), each of ``num_iterations`` steps maps
    [feature, pose, shape, cam] through fc1, dropout, fc2, dropout (no non-linearity, as in SPIN)
    and adds the outputs of the heads decpose / decshape / deccam to the estimate. Head weights
    start xavier-uniform with gain 0.01. Only the last iteration is returned. The body model
    (``body_model``: "mannequin" or a directory of SMPL files) has no trainable parameters and
    no state in ``state_dict``. At D = 2048: 3,469,469 trainable parameters.
    """

    def __init__(self, feature_dim: int = 2048, hidden_size: int = 1024, num_iterations: int = 3,
                 dropout: float = 0.5, body_model: str | Path = MANNEQUIN):
        super().__init__()
        self.feature_dim = feature_dim
        self.num_iterations = num_iterations
        self.body = BodyModel(body_model)
        mean = self.body.mean_params
        for name, key, size in (("init_pose", "pose", NUM_POSE_6D),
                                ("init_shape", "shape", NUM_BETAS), ("init_cam", "cam", CAM_SIZE)):
            value = torch.tensor(mean[key], dtype=torch.float32).reshape(1, size)  # a copy
            self.register_buffer(name, value)
        self.fc1 = nn.Linear(feature_dim + NUM_POSE_6D + NUM_BETAS + CAM_SIZE, hidden_size)
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.drop2 = nn.Dropout(dropout)
        self.decpose = nn.Linear(hidden_size, NUM_POSE_6D)
        self.decshape = nn.Linear(hidden_size, NUM_BETAS)
        self.deccam = nn.Linear(hidden_size, CAM_SIZE)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start the heads small (xavier-uniform weights, gain 0.01), so the first predictions
        stay near the mean parameters; the other layers keep their own defaults."""
        for head in (self.decpose, self.decshape, self.deccam):
            nn.init.xavier_uniform_(head.weight, gain=0.01)

    def regress_parameters(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Features ``(N, D)`` to (pose 6D ``(N, 144)``, betas ``(N, 10)``, cam ``(N, 3)``)."""
        count = features.shape[0]
        pose = self.init_pose.expand(count, -1)
        shape = self.init_shape.expand(count, -1)
        cam = self.init_cam.expand(count, -1)
        for _ in range(self.num_iterations):
            hidden = torch.cat((features, pose, shape, cam), dim=1)
            hidden = self.drop2(self.fc2(self.drop1(self.fc1(hidden))))
            pose = self.decpose(hidden) + pose
            shape = self.decshape(hidden) + shape
            cam = self.deccam(hidden) + cam
        return pose, shape, cam

    def mean_pose_baseline(self) -> Regressor:
        """A copy whose iterations add nothing: it predicts the mean SMPL parameters (the
        ``init_*`` buffers) for every input, the baseline any trained regressor must beat."""
        baseline = copy.deepcopy(self)
        with torch.no_grad():
            for head in (baseline.decpose, baseline.decshape, baseline.deccam):
                head.weight.zero_()
                head.bias.zero_()
        return baseline

    def forward(self, features: Tensor, with_vertices: bool = True) -> RegressorOutput:
        """SMPL outputs for ``features`` ``(..., D)``; ``with_vertices=False`` skips the mesh
        (same joints, a fraction of the body-model cost: what the training loss needs)."""
        if features.shape[-1] != self.feature_dim:
            raise ValueError(f"Regressor expects features of shape (..., {self.feature_dim}), "
                             f"got {tuple(features.shape)}")
        leading = features.shape[:-1]
        pose6d, betas, cam = self.regress_parameters(features.reshape(-1, self.feature_dim))
        rotmat = rot6d_to_rotmat(pose6d.reshape(-1, NUM_SMPL_JOINTS, 6))
        body = self.body(rotmat, betas) if with_vertices else self.body.joints_only(rotmat, betas)
        joints2d = project_to_crop(body.joints, cam)
        pose = rotmat_to_axis_angle(rotmat).reshape(-1, NUM_POSE_PARAMS)

        def unflatten(x: Tensor) -> Tensor:
            return x.reshape(*leading, *x.shape[1:])

        return RegressorOutput(
            rotmat=unflatten(rotmat), pose=unflatten(pose), betas=unflatten(betas),
            cam=unflatten(cam), joints=unflatten(body.joints),
            vertices=None if body.vertices is None else unflatten(body.vertices),
            joints2d=unflatten(joints2d),
        )

    def load_spin_state_dict(self, state_dict: dict[str, Tensor]) -> None:
        """Load the regressor weights of a SPIN HMR ``state_dict`` (a SPIN checkpoint's
        ``["model"]``): fc1, fc2, decpose, decshape, deccam, init_*. Other keys (the ResNet-50)
        are ignored. Raises ValueError naming every missing key and every shape mismatch."""
        expected = self.state_dict()
        state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
        missing = sorted(set(expected) - set(state_dict))
        mismatched = [
            f"{key}: expected {tuple(expected[key].shape)}, got {tuple(state_dict[key].shape)}"
            for key in expected
            if key in state_dict and state_dict[key].shape != expected[key].shape
        ]
        if missing or mismatched:
            raise ModelFileError(
                "SPIN state_dict does not fit the Regressor (feature_dim="
                f"{self.feature_dim}): missing keys {missing}; shape mismatches {mismatched}"
            )
        self.load_state_dict({key: state_dict[key] for key in expected}, strict=True)


def load_spin_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The HMR ``state_dict`` (``["model"]``) of a SPIN checkpoint file, read with
    ``weights_only=True`` plus numpy scalars (no arbitrary unpickling)."""
    checkpoint = load_torch_file(path)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        keys = list(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ModelFileError(f"{path}: expected a SPIN checkpoint with key 'model', found {keys}")
    return checkpoint["model"]
