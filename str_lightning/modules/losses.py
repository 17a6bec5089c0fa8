"""The paper's training loss (paper §2.5; docs/training.md).

Four L2 terms on the target frames, each switched per frame by a supervision weight so that one
batch can mix datasets that supervise different things:

- 2D keypoints: confidence-weighted squared error over the 49 spin joints in normalised crop
  coordinates; the mean runs over all 49 joints and both coordinates (zero-confidence joints
  still count in the denominator, as in TCMR/VIBE).
- 3D keypoints: squared error over the common-14 joints (``spin49[25:39]``) after subtracting
  each set's mid-hip, in metres.
- SMPL pose: squared error between rotation matrices (24 x 3 x 3).
- SMPL shape: squared error between betas.

Weights default to the released TCMR/VIBE values 300 / 300 / 60 / 0.06. A term whose frames are
all unsupervised is exactly zero (never NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from str_lightning.body.joints import COMMON14_IN_SPIN49, NUM_SMPL_JOINTS, ROOTS
from str_lightning.geometry import align_to_root, axis_angle_to_rotmat


@dataclass(frozen=True)
class LossWeights:
    """Weights of the four terms (TCMR/VIBE's released configs)."""

    kp2d: float = 300.0
    kp3d: float = 300.0
    pose: float = 60.0
    shape: float = 0.06


class PoseShapeLoss(nn.Module):
    """``forward(pred, target) -> dict`` of weighted terms and their sum under ``"total"``.

    ``pred``: ``kp2d`` (N, 49, 2), ``kp3d`` (N, 49, 3), ``rotmat`` (N, 24, 3, 3), ``betas`` (N, 10).
    ``target``: ``kp2d`` (N, 49, 3) with confidence last, ``kp3d`` (N, 49, 3), ``pose`` (N, 72)
    axis-angle, ``shape`` (N, 10), and per-frame weights ``w_kp2d``, ``w_kp3d``, ``w_smpl`` (N,)
    (supervision flag times validity, 0 or 1).
    """

    def __init__(self, weights: LossWeights | None = None) -> None:
        super().__init__()
        self.weights = weights or LossWeights()

    def forward(self, pred: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
        terms = {
            "kp2d": self.weights.kp2d * keypoint_2d_loss(pred["kp2d"], target["kp2d"], target["w_kp2d"]),
            "kp3d": self.weights.kp3d * keypoint_3d_loss(pred["kp3d"], target["kp3d"], target["w_kp3d"]),
            "pose": self.weights.pose * pose_loss(pred["rotmat"], target["pose"], target["w_smpl"]),
            "shape": self.weights.shape * shape_loss(pred["betas"], target["shape"], target["w_smpl"]),
        }
        terms["total"] = sum(terms.values())
        return terms


def keypoint_2d_loss(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean over supervised frames, joints and coordinates of ``conf * (pred - gt)^2``."""
    squared = target[..., 2:] * (pred - target[..., :2]) ** 2
    return _weighted_mean(squared, weight)


def keypoint_3d_loss(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """MSE over the common-14 joints of spin-49 inputs, each set centred on its mid-hip."""
    root = ROOTS["common14"]
    pred14 = align_to_root(pred[:, COMMON14_IN_SPIN49], root)
    target14 = align_to_root(target[:, COMMON14_IN_SPIN49], root)
    return _weighted_mean((pred14 - target14) ** 2, weight)


def pose_loss(pred_rotmat: Tensor, target_pose: Tensor, weight: Tensor) -> Tensor:
    """MSE between predicted and ground-truth rotation matrices of the 24 SMPL joints."""
    target_rotmat = axis_angle_to_rotmat(target_pose.reshape(-1, NUM_SMPL_JOINTS, 3))
    return _weighted_mean((pred_rotmat - target_rotmat) ** 2, weight)


def shape_loss(pred_betas: Tensor, target_betas: Tensor, weight: Tensor) -> Tensor:
    """MSE between predicted and ground-truth betas."""
    return _weighted_mean((pred_betas - target_betas) ** 2, weight)


def _weighted_mean(squared: Tensor, weight: Tensor) -> Tensor:
    """Mean of ``squared`` (N, ...) over the frames with weight > 0 and all other dimensions."""
    per_frame = squared.flatten(1).mean(1)
    weight = weight.to(per_frame.dtype)
    # where(), not a product: an unsupervised frame's target may hold anything, even NaN.
    return torch.where(weight > 0, per_frame * weight, 0.0).sum() / weight.sum().clamp_min(1.0)
