"""The SMPL body layer: smplx's SMPL plus the SPIN joint sets, with no state in checkpoints.

The model's arrays are read and held by ``smplx.SMPL``; the forward pass is smplx's linear blend
skinning (``smplx.lbs.lbs``) step for step, except that the kinematic chain is walked with the
parents as Python ints (:class:`KinematicTree`): smplx indexes a list with elements of its
``parents`` tensor, one host sync per joint on a GPU.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.lbs import blend_shapes, transform_mat, vertices2joints
from smplx.utils import Struct
from torch import nn
from torch.nn import functional

from str_lightning.body.joints import SPIN49_FROM_SMPLX54, convert_joints
from str_lightning.body.model_files import MANNEQUIN, BodyModelFileError
from str_lightning.body.sources import load_body_files


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
        try:
            self.kinematic_tree = KinematicTree(self.smpl.parents.tolist())
        except ValueError as error:
            raise BodyModelFileError(f"{self.model_path}: kintree_table: {error}") from None
        self._register_joint_vertex_subset()
        self.mean_params: dict[str, np.ndarray] = files.mean_params  # pose (144,) 6D, shape, cam
        _make_buffers_non_persistent(self)

    def forward(self, rotmat: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """Pose ``rotmat`` (B, 24, 3, 3) and shape ``betas`` (B, 10) to vertices and joints."""
        vertices, posed_joints = self._skin(rotmat, betas)
        landmarks = torch.index_select(vertices, 1, self.smpl.vertex_joint_selector.extra_joints_idxs)
        extra = torch.einsum("jv,bvc->bjc", self.j_regressor_extra, vertices)
        joints54 = torch.cat((posed_joints, landmarks, extra), dim=1)
        return BodyOutput(
            vertices=vertices,
            joints=joints54[:, self.spin_index],
            smpl_joints=posed_joints,
        )

    def _skin(self, rotmat: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices ``(B, 6890, 3)`` and posed kinematic-tree joints ``(B, 24, 3)``: smplx's
        ``lbs`` with rotation matrices, operation for operation (so the same numbers), with the
        chain walked by :class:`KinematicTree` and without the pose correctives of a model that
        has none (the mannequin; adding their zeros would change nothing)."""
        smpl = self.smpl
        batch = rotmat.shape[0]
        shaped = smpl.v_template + blend_shapes(betas, smpl.shapedirs)
        rest_joints = vertices2joints(smpl.J_regressor, shaped)
        if self.has_pose_correctives:
            eye = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
            pose_feature = (rotmat[:, 1:] - eye).reshape(batch, -1)
            shaped = torch.matmul(pose_feature, smpl.posedirs).view(batch, -1, 3) + shaped
        posed_joints, transforms = self.kinematic_tree(rotmat, rest_joints)
        weights = smpl.lbs_weights.unsqueeze(dim=0).expand(batch, -1, -1)
        skinning = torch.matmul(weights, transforms.view(batch, -1, 16)).view(batch, -1, 4, 4)
        ones = torch.ones(batch, shaped.shape[1], 1, dtype=shaped.dtype, device=shaped.device)
        homogeneous = torch.cat((shaped, ones), dim=2)
        vertices = torch.matmul(skinning, homogeneous.unsqueeze(-1))[:, :, :3, 0]
        return vertices, posed_joints

    def joints_only(self, rotmat: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """``forward`` without the mesh: the same joints (to float rounding), ``vertices=None``.

        The 21 landmark vertices are skinned directly. The 9 ``J_regressor_extra`` joints use
        that skinning is linear in the rest vertices: a regressed joint is
        ``sum_j A_j m_j`` with ``A_j`` the joint transforms and ``m_j`` a regressor- and
        skinning-weighted sum of the shaped (and pose-corrected) rest vertices, itself linear in
        betas and the pose features, so its coefficients are computed once. The cost no longer
        depends on the mesh size: what training needs.
        """
        batch = rotmat.shape[0]
        rest_joints = self.rest_joints(betas)
        posed_joints, transforms = self.kinematic_tree(rotmat, rest_joints)
        rotations, translations = transforms[..., :3, :3], transforms[..., :3, 3]

        landmarks = self.landmark_template + torch.einsum("bl,vcl->bvc", betas, self.landmark_shapedirs)
        moments = self.extra_template + torch.einsum("bl,ejcl->bejc", betas, self.extra_shapedirs)
        if self.has_pose_correctives:  # the mannequin has none: skip two matmuls
            eye = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
            pose_feature = (rotmat[:, 1:] - eye).reshape(batch, -1)
            landmarks = landmarks + torch.einsum("bp,pvc->bvc", pose_feature, self.landmark_posedirs)
            moments = moments + torch.einsum("bp,ejcp->bejc", pose_feature, self.extra_posedirs)
        skinning = torch.einsum("vj,bjmn->bvmn", self.landmark_weights, transforms)
        landmarks = (skinning[..., :3, :3] @ landmarks.unsqueeze(-1)).squeeze(-1) + skinning[..., :3, 3]
        extra = torch.einsum("bjmn,bejn->bem", rotations, moments) + torch.einsum(
            "bjm,ej->bem", translations, self.extra_mass)
        joints54 = torch.cat((posed_joints, landmarks, extra), dim=1)
        return BodyOutput(vertices=None, joints=joints54[:, self.spin_index],
                          smpl_joints=posed_joints)

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """The shaped rest joints ``J(betas)`` ``(B, 24, 3)``: where the kinematic tree's joints
        sit before posing (the bone offsets of the person's own skeleton)."""
        return self.joint_template + torch.einsum("bl,jcl->bjc", betas, self.joint_shapedirs)

    @property
    def parents(self) -> list[int]:
        """Parent index of each of the 24 kinematic-tree joints (-1 for the root)."""
        return list(self.kinematic_tree.parents)

    def _register_joint_vertex_subset(self) -> None:
        """Buffers of ``joints_only`` (see there), computed once from the model's arrays."""
        smpl = self.smpl
        landmark_ids = smpl.vertex_joint_selector.extra_joints_idxs.long()
        num_vertices = smpl.v_template.shape[0]
        posedirs = smpl.posedirs.reshape(smpl.posedirs.shape[0], num_vertices, 3)
        # coefficient[e, j, v]: how much rest vertex v, moved by joint j, enters extra joint e
        coefficient = torch.einsum("ev,vj->ejv", self.j_regressor_extra.double(),
                                   smpl.lbs_weights.double())
        buffers = {
            "joint_template": smpl.J_regressor @ smpl.v_template,
            "joint_shapedirs": torch.einsum("jv,vcl->jcl", smpl.J_regressor, smpl.shapedirs),
            "landmark_template": smpl.v_template[landmark_ids],
            "landmark_shapedirs": smpl.shapedirs[landmark_ids],
            "landmark_posedirs": posedirs[:, landmark_ids],
            "landmark_weights": smpl.lbs_weights[landmark_ids],
            "extra_template": torch.einsum("ejv,vc->ejc", coefficient, smpl.v_template.double()),
            "extra_shapedirs": torch.einsum("ejv,vcl->ejcl", coefficient, smpl.shapedirs.double()),
            "extra_posedirs": torch.einsum("ejv,pvc->ejcp", coefficient, posedirs.double()),
            "extra_mass": coefficient.sum(-1),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.to(smpl.v_template.dtype))
        self.has_pose_correctives = bool(smpl.posedirs.any())

    def eval_joints(self, vertices: torch.Tensor, joint_set: str = "common14") -> torch.Tensor:
        """Evaluation joints from ``vertices`` (..., 6890, 3) through ``J_regressor_h36m``.

        ``joint_set`` is ``"h36m17"`` or ``"common14"`` (= the H36M_TO_J14 subset, by name).
        """
        h36m = torch.einsum("jv,...vc->...jc", self.j_regressor_h36m, vertices)
        return h36m if joint_set == "h36m17" else convert_joints(h36m, "h36m17", joint_set)


class KinematicTree(nn.Module):
    """Joint rotations and rest joints to posed joints and skinning transforms.

    ``smplx.lbs.batch_rigid_transform``, operation for operation, with ``parents`` held as
    Python ints (``parents[j]`` is joint j's parent, -1 for the root; every parent comes before
    its children): walking the chain reads no tensor on the host.
    """

    def __init__(self, parents: Sequence[int]) -> None:
        super().__init__()
        self.parents = tuple(int(parent) for parent in parents)
        if not self.parents or self.parents[0] != -1 or any(
                not 0 <= parent < joint for joint, parent in enumerate(self.parents[1:], start=1)):
            raise ValueError(f"expected the root's parent -1 first, then each joint's parent "
                             f"among the joints before it, got parents {list(self.parents)}")
        self.register_buffer("parent_index", torch.tensor(self.parents[1:], dtype=torch.long),
                             persistent=False)

    def forward(self, rotmat: torch.Tensor, rest_joints: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Local rotations ``(B, J, 3, 3)`` and rest joints ``(B, J, 3)`` to the posed joints
        ``(B, J, 3)`` and the transforms ``(B, J, 4, 4)`` that carry a rest point rigidly
        attached to each joint to its posed place."""
        joints = rest_joints.unsqueeze(-1)
        offsets = joints.clone()
        offsets[:, 1:] -= joints[:, self.parent_index]
        local = transform_mat(rotmat.reshape(-1, 3, 3), offsets.reshape(-1, 3, 1)).reshape(
            -1, joints.shape[1], 4, 4)
        chain = [local[:, 0]]
        for joint, parent in enumerate(self.parents[1:], start=1):
            chain.append(torch.matmul(chain[parent], local[:, joint]))
        transforms = torch.stack(chain, dim=1)
        rest_homogeneous = functional.pad(joints, [0, 0, 0, 1])
        relative = transforms - functional.pad(torch.matmul(transforms, rest_homogeneous),
                                               [3, 0, 0, 0, 0, 0, 0, 0])
        return transforms[:, :, :3, 3], relative


def _float_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32))


def _make_buffers_non_persistent(module: nn.Module) -> None:
    for sub in module.modules():
        for name, buf in list(sub._buffers.items()):
            if buf is not None:
                sub.register_buffer(name, buf, persistent=False)
