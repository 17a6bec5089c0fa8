"""The SMPL body layer: smplx's SMPL plus the SPIN joint sets, with no state in checkpoints."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.lbs import batch_rigid_transform
from smplx.utils import Struct
from torch import nn

from str_lightning.body.joints import SPIN49_FROM_SMPLX54, convert_joints
from str_lightning.body.model_files import MANNEQUIN, load_body_files


@dataclass
class BodyOutput:
    """SMPL forward result for a batch of ``B`` bodies (metres, model frame)."""

    vertices: torch.Tensor | None  # (B, 6890, 3); None from ``joints_only``
    joints: torch.Tensor  # (B, 49, 3) spin49
    smpl_joints: torch.Tensor  # (B, 24, 3) the kinematic-tree joints


class BodyModel(nn.Module):
    """SMPL (neutral) through ``smplx.SMPL(..., data_struct=...)`` with SPIN's joint sets.

    ``model_path`` is ``"mannequin"`` (the built-in model) or a directory of SMPL files (see
    :mod:`str_lightning.body.model_files`). Every buffer is non-persistent: the body model never
    enters a ``state_dict`` or a checkpoint (licence and size), and it has no trainable
    parameters.
    """

    def __init__(self, model_path: str | Path = MANNEQUIN) -> None:
        super().__init__()
        self.model_path = str(model_path)
        files = load_body_files(model_path)
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 betas
            self.smpl = smplx.SMPL(
                model_path=self.model_path,
                data_struct=Struct(**files.smpl),
                create_betas=False,
                create_global_orient=False,
                create_body_pose=False,
                create_transl=False,
            )
        self.faces: np.ndarray = np.asarray(files.smpl["f"], dtype=np.int64)
        self.register_buffer("j_regressor_extra", _float_tensor(files.j_regressor_extra))
        self.register_buffer("j_regressor_h36m", _float_tensor(files.j_regressor_h36m))
        self.register_buffer("spin_index", torch.tensor(SPIN49_FROM_SMPLX54, dtype=torch.long))
        self._register_joint_vertex_subset()
        self.mean_params: dict[str, np.ndarray] = files.mean_params  # pose (144,) 6D, shape, cam
        _make_buffers_non_persistent(self)

    def forward(self, rotmat: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """Pose ``rotmat`` (B, 24, 3, 3) and shape ``betas`` (B, 10) to vertices and joints."""
        out = self.smpl(
            betas=betas,
            global_orient=rotmat[:, :1],
            body_pose=rotmat[:, 1:],
            pose2rot=False,
        )
        extra = torch.einsum("jv,bvc->bjc", self.j_regressor_extra, out.vertices)
        joints54 = torch.cat((out.joints, extra), dim=1)
        return BodyOutput(
            vertices=out.vertices,
            joints=joints54[:, self.spin_index],
            smpl_joints=out.joints[:, :24],
        )

    def joints_only(self, rotmat: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """``forward`` without the mesh: the same joints (to float rounding), ``vertices=None``.

        Skins only the vertices the joints read (smplx's landmark vertices and the support of
        ``J_regressor_extra``), typically a few hundred of the 6890: what training needs.
        """
        smpl = self.smpl
        batch = rotmat.shape[0]
        v_shaped = self.subset_template + torch.einsum("bl,vcl->bvc", betas, self.subset_shapedirs)
        rest_joints = self.joint_template + torch.einsum("bl,jcl->bjc", betas, self.joint_shapedirs)
        eye = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
        v_posed = v_shaped
        if self.has_pose_correctives:  # the mannequin has none: skip a large matmul
            pose_feature = (rotmat[:, 1:] - eye).reshape(batch, -1)
            v_posed = v_shaped + (pose_feature @ self.subset_posedirs).reshape(batch, -1, 3)
        posed_joints, transforms = batch_rigid_transform(rotmat, rest_joints, smpl.parents)
        skinning = torch.einsum("vj,bjmn->bvmn", self.subset_weights, transforms)
        points = (skinning[..., :3, :3] @ v_posed.unsqueeze(-1)).squeeze(-1) + skinning[..., :3, 3]
        landmarks = points[:, self.subset_landmarks]
        extra = torch.einsum("jv,bvc->bjc", self.subset_regressor_extra, points)
        joints54 = torch.cat((posed_joints, landmarks, extra), dim=1)
        return BodyOutput(vertices=None, joints=joints54[:, self.spin_index],
                          smpl_joints=posed_joints)

    def _register_joint_vertex_subset(self) -> None:
        """Buffers of ``joints_only``: the vertices the 49 joints read, and their model data."""
        smpl = self.smpl
        landmark_ids = smpl.vertex_joint_selector.extra_joints_idxs.long()
        extra_support = torch.nonzero(self.j_regressor_extra.abs().sum(0)).squeeze(1)
        subset, inverse = torch.unique(torch.cat((landmark_ids, extra_support)), return_inverse=True)
        num_vertices = smpl.v_template.shape[0]
        posedirs = smpl.posedirs.reshape(smpl.posedirs.shape[0], num_vertices, 3)
        buffers = {
            "subset_template": smpl.v_template[subset],
            "subset_shapedirs": smpl.shapedirs[subset],
            "subset_posedirs": posedirs[:, subset].reshape(posedirs.shape[0], -1),
            "subset_weights": smpl.lbs_weights[subset],
            "subset_landmarks": inverse[: len(landmark_ids)],
            "subset_regressor_extra": self.j_regressor_extra[:, subset],
            "joint_template": smpl.J_regressor @ smpl.v_template,
            "joint_shapedirs": torch.einsum("jv,vcl->jcl", smpl.J_regressor, smpl.shapedirs),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value)
        self.has_pose_correctives = bool(smpl.posedirs.any())

    def eval_joints(self, vertices: torch.Tensor, joint_set: str = "common14") -> torch.Tensor:
        """Evaluation joints from ``vertices`` (..., 6890, 3) through ``J_regressor_h36m``.

        ``joint_set`` is ``"h36m17"`` or ``"common14"`` (= the H36M_TO_J14 subset, by name).
        """
        h36m = torch.einsum("jv,...vc->...jc", self.j_regressor_h36m, vertices)
        return h36m if joint_set == "h36m17" else convert_joints(h36m, "h36m17", joint_set)


def _float_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32))


def _make_buffers_non_persistent(module: nn.Module) -> None:
    for sub in module.modules():
        for name, buf in list(sub._buffers.items()):
            if buf is not None:
                sub.register_buffer(name, buf, persistent=False)
