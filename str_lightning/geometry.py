"""Rotation maths, the crop camera and Procrustes alignment: the only place for them.

All functions are batched over leading dimensions and differentiable unless stated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-6


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """6D representation ``(..., 6)`` to rotation matrices ``(..., 3, 3)``.

    The six numbers are a 3x2 matrix read row-major whose columns ``a1, a2`` are
    Gram-Schmidt orthonormalised into ``b1, b2``; ``b3 = b1 x b2``; ``R = [b1 b2 b3]``
    (the SPIN/VIBE/TCMR convention, peers §1).
    """
    a = x.reshape(*x.shape[:-1], 3, 2)
    b1 = F.normalize(a[..., 0], dim=-1, eps=_EPS)
    a2 = a[..., 1]
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1, eps=_EPS)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_rot6d(rotmat: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` to the 6D representation ``(..., 6)`` (first two columns)."""
    return rotmat[..., :, :2].reshape(*rotmat.shape[:-2], 6)


def axis_angle_to_rotmat(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, ``(..., 3)`` to ``(..., 3, 3)``; exact at 0 and smooth near it."""
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True).unsqueeze(-1)
    theta = theta2.clamp_min(1e-12).sqrt()
    small = theta2 < 1e-8
    # sin(t)/t and (1-cos t)/t^2 with their Taylor series where t is tiny.
    sinc = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    cosc = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    k = _skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + sinc * k + cosc * (k @ k)


def rotmat_to_axis_angle(rotmat: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` to axis-angle ``(..., 3)`` with angle in ``[0, pi]``.

    Goes through a unit quaternion (numerically stable for every angle, including 0 and pi).
    """
    quat = rotmat_to_quaternion(rotmat)
    # Canonical sign (w >= 0) gives an angle in [0, pi].
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    w, xyz = quat[..., :1], quat[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, w)
    # angle / sin(angle / 2) -> 2 as the angle -> 0.
    scale = torch.where(sin_half < 1e-7, 2 / w.clamp_min(_EPS), angle / sin_half.clamp_min(1e-12))
    return xyz * scale


def rotmat_to_quaternion(rotmat: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` to unit quaternions ``(..., 4)`` as ``(w, x, y, z)``.

    Uses the largest of the four candidate denominators per matrix (Shepperd's method).
    """
    m = rotmat
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = torch.stack(
        (
            1 + m00 + m11 + m22,
            1 + m00 - m11 - m22,
            1 - m00 + m11 - m22,
            1 - m00 - m11 + m22,
        ),
        dim=-1,
    )
    best = candidates.argmax(dim=-1, keepdim=True)
    r = candidates.gather(-1, best).clamp_min(1e-12).sqrt()  # 2 * |largest component|
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    # Row i: the quaternion (times 2r) computed from candidate i.
    options = torch.stack(
        (
            torch.stack((r[..., 0] ** 2, d21, d02, d10), -1),
            torch.stack((d21, r[..., 0] ** 2, s10, s02), -1),
            torch.stack((d02, s10, r[..., 0] ** 2, s21), -1),
            torch.stack((d10, s02, s21, r[..., 0] ** 2), -1),
        ),
        dim=-2,
    )
    index = best.unsqueeze(-1).expand(*best.shape[:-1], 1, 4)
    quat = options.gather(-2, index).squeeze(-2) / (2 * r)
    return F.normalize(quat, dim=-1)


def project_to_crop(
    points: torch.Tensor, cam: torch.Tensor, focal: float = 5000.0, crop_size: float = 224.0
) -> torch.Tensor:
    """Project camera-frame points ``(..., J, 3)`` with a crop camera ``(..., 3) = (s, tx, ty)``.

    Peers §1: translation ``(tx, ty, 2 focal / (crop_size s + 1e-9))``, perspective projection with
    ``focal`` and principal point 0, divided by ``crop_size / 2``. Returns normalised crop
    coordinates ``(..., J, 2)``, about ``[-1, 1]`` for a person filling the crop.
    """
    s, tx, ty = cam.unbind(-1)
    depth = 2 * focal / (crop_size * s + 1e-9)
    translation = torch.stack((tx, ty, depth), dim=-1).unsqueeze(-2)
    p = points + translation
    return focal * p[..., :2] / p[..., 2:3] / (crop_size / 2)


def similarity_procrustes(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Align each ``pred`` point set ``(N, J, 3)`` to ``target`` by the best similarity transform.

    Least-squares scale, rotation and translation (Umeyama) per item, computed in float64 with a
    reflection correction (``det(R) = +1`` always). Returns the aligned ``pred`` in its own dtype.
    """
    x = pred.double()
    y = target.double()
    mu_x, mu_y = x.mean(-2, keepdim=True), y.mean(-2, keepdim=True)
    xc, yc = x - mu_x, y - mu_y
    cov = xc.transpose(-1, -2) @ yc  # (N, 3, 3) = sum_j x_j y_j^T
    u, sigma, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(vh.transpose(-1, -2) @ u.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    signs = torch.ones_like(sigma)
    signs[..., -1] = d
    rot = vh.transpose(-1, -2) @ (signs.unsqueeze(-1) * u.transpose(-1, -2))  # maps x onto y
    var_x = (xc * xc).sum((-1, -2))
    scale = (sigma * signs).sum(-1) / var_x.clamp_min(1e-12)
    aligned = scale[:, None, None] * xc @ rot.transpose(-1, -2) + mu_y
    return aligned.to(pred.dtype)


def _skew(v: torch.Tensor) -> torch.Tensor:
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), dim=-1).reshape(*v.shape[:-1], 3, 3)
