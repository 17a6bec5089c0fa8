"""Rotation maths, the crop camera, root and Procrustes alignment: the only place for them.

All functions are batched over leading dimensions and differentiable unless stated.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from str_lightning.host_syncs import device_index

_EPS = 1e-6

Root = int | tuple[int, ...] | None
"""Root of a point set: indices whose mean is the root (the evaluation roots of each joint set
are ``str_lightning.body.joints.ROOTS``), one index, or None for no alignment."""


def root_indices(root: Root) -> list[int]:
    """The point indices of ``root`` as a list ([] for None)."""
    return [] if root is None else [root] if isinstance(root, int) else list(root)


def align_to_root(points: torch.Tensor, root: Root) -> torch.Tensor:
    """Subtract the root (mean of the ``root`` points, ``(..., 1, 3)``) from ``points``."""
    if root is None:
        return points
    return points - points[..., _root_selector(root, points.device), :].mean(-2, keepdim=True)


def _root_selector(root: Root, device: torch.device) -> slice | torch.Tensor:
    """The root points as a slice when they are consecutive (every evaluation root is), else
    as an index on ``device``: neither copies an index from the host."""
    indices = root_indices(root)
    first, last = indices[0], indices[-1]
    if indices == list(range(first, last + 1)) and (first >= 0 or last < 0):
        return slice(first, last + 1 or None)
    return device_index(tuple(indices), device)


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """6D representation ``(..., 6)`` to rotation matrices ``(..., 3, 3)``.

    The six numbers are a 3x2 matrix read row-major whose columns ``a1, a2`` are
    Gram-Schmidt orthonormalised into ``b1, b2``; ``b3 = b1 x b2``; ``R = [b1 b2 b3]``
    (the SPIN/VIBE/TCMR convention).
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


def axis_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """Rotations by ``angle`` ``(...)`` about coordinate axis ``axis`` (0 = x, 1 = y, 2 = z),
    ``(..., 3, 3)``, right-handed."""
    c, s = torch.cos(angle), torch.sin(angle)
    out = torch.zeros(*angle.shape, 3, 3, dtype=angle.dtype, device=angle.device)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]  # the plane the rotation acts in
    out[..., axis, axis] = 1
    out[..., i, i], out[..., j, j] = c, c
    out[..., i, j], out[..., j, i] = -s, s
    return out


def euler_to_rotmat(euler: torch.Tensor) -> torch.Tensor:
    """Euler angles ``(..., 3)`` = (x, y, z) to ``Rx(x) @ Ry(y) @ Rz(z)``, ``(..., 3, 3)``."""
    x, y, z = euler.unbind(-1)
    return axis_rotation(x, 0) @ axis_rotation(y, 1) @ axis_rotation(z, 2)


def rotmat_to_euler(rotmat: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`euler_to_rotmat`: ``(..., 3, 3)`` to ``(x, y, z)`` with
    ``R = Rx(x) @ Ry(y) @ Rz(z)``, ``y`` in ``[-pi/2, pi/2]``, ``x`` and ``z`` in ``(-pi, pi]``.

    At gimbal lock (``|y| = pi/2``) only ``x + z`` or ``x - z`` is determined; ``z = 0`` then.
    Not differentiable at gimbal lock.
    """
    r = rotmat
    cos_y = torch.hypot(r[..., 0, 0], r[..., 0, 1])
    y = torch.atan2(r[..., 0, 2], cos_y)
    locked = cos_y < _EPS
    x = torch.where(locked, torch.atan2(r[..., 2, 1], r[..., 1, 1]),
                    torch.atan2(-r[..., 1, 2], r[..., 2, 2]))
    z = torch.where(locked, torch.zeros_like(y), torch.atan2(-r[..., 0, 1], r[..., 0, 0]))
    return torch.stack((x, y, z), dim=-1)


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

    As in SPIN, TCMR and VIBE: translation ``(tx, ty, 2 focal / (crop_size s + 1e-9))``, perspective projection with
    ``focal`` and principal point 0, divided by ``crop_size / 2``. Returns normalised crop
    coordinates ``(..., J, 2)``, about ``[-1, 1]`` for a person filling the crop.
    """
    s, tx, ty = cam.unbind(-1)
    depth = 2 * focal / (crop_size * s + 1e-9)
    translation = torch.stack((tx, ty, depth), dim=-1)
    return project_pinhole(points, translation, focal) / (crop_size / 2)


def project_pinhole(points: torch.Tensor, translation: torch.Tensor, focal: float | torch.Tensor,
                    principal_point: torch.Tensor | tuple[float, float] = (0.0, 0.0)
                    ) -> torch.Tensor:
    """Pinhole projection of points ``(..., J, 3)`` moved by ``translation`` ``(..., 3)``
    (identity rotation): ``focal * (x, y) / z + principal_point``, ``(..., J, 2)``."""
    p = points + translation.unsqueeze(-2)
    projected = focal * p[..., :2] / p[..., 2:3]
    if isinstance(principal_point, tuple) and not any(principal_point):
        return projected  # no tensor made from host numbers for the crop camera's (0, 0)
    return projected + torch.as_tensor(principal_point, dtype=p.dtype, device=p.device)


def crop_camera_to_image(cam: torch.Tensor, crop_centre: torch.Tensor, crop_side: torch.Tensor,
                         image_size: tuple[int, int], focal: float) -> torch.Tensor:
    """The translation ``(..., 3)`` that puts a crop-camera prediction into the full image.

    ``cam`` ``(..., 3) = (s, tx, ty)`` was predicted for the square crop of side ``crop_side``
    pixels centred at ``crop_centre`` ``(..., 2)`` of an image ``(width, height)``. The result
    is for a pinhole camera with ``focal`` (pixels) and the principal point at the image centre
    (:func:`project_pinhole`): ``tz = 2 focal / (s side)``, ``tx + 2 (cx - W/2) / (s side)``,
    ``ty + 2 (cy - H/2) / (s side)``, the translation of VIBE's and TCMR's weak-perspective
    ``orig_cam``. A point of the body's root plane (model z = 0) lands on the pixel the
    weak-perspective crop camera gives it, ``centre + side / 2 * s (x + tx, y + ty)``, for any
    ``focal``; off that plane the two differ by perspective, by a fraction ``z / tz``.
    """
    s, tx, ty = cam.unbind(-1)
    scale = s * crop_side
    width, height = image_size
    shift = 2 * (crop_centre - crop_centre.new_tensor((width / 2, height / 2))) / scale.unsqueeze(-1)
    return torch.stack((tx + shift[..., 0], ty + shift[..., 1], 2 * focal / scale), dim=-1)


def similarity_procrustes(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Align each ``pred`` point set ``(N, J, 3)`` to ``target`` by the best similarity transform.

    Least-squares scale, rotation and translation (Umeyama) per item, computed in float64 with a
    reflection correction (``det(R) = +1`` always). Returns the aligned ``pred`` in its own dtype.
    """
    xc, _, transform = _procrustes_fit(pred, target)
    mu_y = target.permute(2, 0, 1).mean(-1, keepdim=True, dtype=torch.float64)
    aligned = torch.stack(list(_transformed_components(transform, xc))) + mu_y
    return aligned.permute(1, 2, 0).to(pred.dtype)


def procrustes_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-point distances ``(N, J)`` float64 between ``target`` and ``pred`` aligned to it by
    :func:`similarity_procrustes` (what PA-MPJPE averages), without building the aligned set."""
    xc, yc, transform = _procrustes_fit(pred, target)
    squared = torch.zeros_like(xc[0])
    for component, target_component in zip(_transformed_components(transform, xc), yc):
        residual = component.sub_(target_component)
        squared.addcmul_(residual, residual)
    return squared.sqrt_()


def _procrustes_fit(pred: torch.Tensor, target: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centred point sets component-major ``(3, N, J)`` float64 and the linear part of the
    similarity transform ``scale * R`` as ``(3, 3, N)``."""
    xc, yc = _centred_components(pred), _centred_components(target)
    cov = torch.einsum("inj,knj->ikn", xc, yc)  # sum_j x_j y_j^T
    rotation, trace = procrustes_rotation(cov)
    scale = trace / xc.square().sum((0, 2)).clamp_min(1e-12)
    return xc, yc, rotation * scale


def _centred_components(points: torch.Tensor) -> torch.Tensor:
    """``(N, J, 3)`` to float64 ``(3, N, J)`` minus each set's mean."""
    components = points.new_empty(points.permute(2, 0, 1).shape, dtype=torch.float64)
    components.copy_(points.permute(2, 0, 1))
    return components.sub_(components.mean(-1, keepdim=True))


def _transformed_components(matrix: torch.Tensor, points: torch.Tensor) -> Iterator[torch.Tensor]:
    """The components ``(N, J)`` of ``matrix`` ``(3, 3, N)`` times every point of ``points``
    ``(3, N, J)``, one new tensor each (elementwise: faster than a batched 3x3 matmul)."""
    for row in matrix:
        component = row[0, :, None] * points[0]
        yield component.addcmul_(row[1, :, None], points[1]).addcmul_(row[2, :, None], points[2])


def procrustes_rotation(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For matrices ``cov`` held component-major ``(3, 3, N)``: the proper rotations ``R``
    ``(3, 3, N)`` maximising ``trace(R cov)`` and that maximum ``(N,)``.

    ``cov = U S V^T`` gives ``R = V diag(1, 1, d) U^T`` with ``d = sign(det(V U^T))`` and the
    maximum ``trace(S diag(1, 1, d))``. Items whose ``det(cov)`` is clearly positive take
    ``R = Q^T`` for the orthogonal polar factor ``Q`` of ``cov`` (scaled Newton iterations:
    elementwise arithmetic, no LAPACK call per matrix); the others (reflections, near-singular
    or not converged) take the SVD.
    """
    polar, converged = _newton_polar(cov)
    rotation = polar.transpose(0, 1)
    trace = (polar * cov).sum((0, 1))
    fallback = torch.nonzero(~converged).squeeze(1)
    if len(fallback):
        fallback_rotation, fallback_trace = _svd_rotation(cov[..., fallback].permute(2, 0, 1))
        rotation = rotation.index_copy(2, fallback, fallback_rotation.permute(1, 2, 0))
        trace = trace.index_copy(0, fallback, fallback_trace)
    return rotation, trace


_POLAR_MAX_ITERATIONS = 30
_POLAR_STEP_TOL = 1e-9  # Newton converges quadratically: the step after this one is ~1e-18
_POLAR_MIN_RELATIVE_DET = 1e-8  # det / |A|_F^3; smaller goes to the SVD


def _newton_polar(matrices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonal polar factors of matrices ``(3, 3, N)`` (component-major).

    Scaled Newton (Higham): ``X <- (g X + X^{-T} / g) / 2`` with ``g = (|X^{-1}|_F / |X|_F)^{1/2}``
    and ``X^{-T} = cofactor(X) / det(X)``. Returns the factors and a mask ``(N,)`` of the items
    that started with a clearly positive determinant and converged; the factor of every other
    item is meaningless.
    """
    x = matrices
    cofactor = _cofactors(x)
    det = (x[0] * cofactor[0]).sum(0)
    usable = det > _POLAR_MIN_RELATIVE_DET * _frobenius(x).pow(3)
    x = torch.where(usable, x, torch.eye(3, dtype=x.dtype, device=x.device)[..., None])
    converged = usable
    for _ in range(_POLAR_MAX_ITERATIONS):
        cofactor = _cofactors(x)
        det = (x[0] * cofactor[0]).sum(0)
        # |X^{-T}|_F = |cofactor|_F / |det|, and det > 0 all along for the usable items.
        gain = (_frobenius(cofactor) / (det * _frobenius(x))).sqrt()
        updated = (0.5 / (gain * det)) * cofactor
        updated.add_(x * (0.5 * gain))
        converged = _frobenius(updated - x) <= _POLAR_STEP_TOL
        x = updated
        if bool(converged.all()):
            break
    return x, converged & usable


def _frobenius(x: torch.Tensor) -> torch.Tensor:
    """Frobenius norms ``(N,)`` of ``(3, 3, N)`` (``vector_norm`` is slower on this layout)."""
    return (x * x).sum((0, 1)).sqrt()


def _cofactors(x: torch.Tensor) -> torch.Tensor:
    """Cofactor matrices of ``(3, 3, N)``: row i is the cross product of the other two rows."""
    rows = []
    for i in range(3):
        a, b = x[(i + 1) % 3], x[(i + 2) % 3]
        rows += [a[j1] * b[j2] - a[j2] * b[j1] for j1, j2 in ((1, 2), (2, 0), (0, 1))]
    return torch.stack(rows).view(x.shape)


def _svd_rotation(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`procrustes_rotation` by SVD for ``cov`` ``(M, 3, 3)``: ``R`` ``(M, 3, 3)``, trace."""
    u, sigma, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(vh.transpose(-1, -2) @ u.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    signs = torch.ones_like(sigma)
    signs[..., -1] = d
    rotation = vh.transpose(-1, -2) @ (signs.unsqueeze(-1) * u.transpose(-1, -2))
    return rotation, (sigma * signs).sum(-1)


def _skew(v: torch.Tensor) -> torch.Tensor:
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), dim=-1).reshape(*v.shape[:-1], 3, 3)
