import math

import numpy as np
import pytest
import torch

from str_lightning import geometry as g


def random_rotations(n: int, seed: int = 0) -> torch.Tensor:
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(n, 3, 3)


def axis_angles_with_edge_cases(seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    axes = torch.nn.functional.normalize(torch.randn(60, 3, generator=gen, dtype=torch.float64), dim=-1)
    angles = torch.cat(
        (
            torch.rand(20, generator=gen, dtype=torch.float64) * math.pi,
            torch.tensor([0.0, 1e-12, 1e-8, 1e-6, 1e-4, 1e-3], dtype=torch.float64).repeat(2)[:10],
            math.pi - torch.tensor([0.0, 1e-12, 1e-9, 1e-7, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.3]),
            torch.rand(20, generator=gen, dtype=torch.float64) * 1e-3,
        )
    ).to(torch.float64)
    return axes * angles[:, None]


def test_rotation_helpers_make_proper_rotations():
    r = random_rotations(100)
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3, dtype=r.dtype).expand(100, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(100, dtype=r.dtype))


def test_rot6d_round_trip_and_gram_schmidt():
    r = random_rotations(200)
    assert torch.allclose(g.rot6d_to_rotmat(g.rotmat_to_rot6d(r)), r, atol=1e-12)
    # Arbitrary 6D input always gives a proper rotation.
    out = g.rot6d_to_rotmat(torch.randn(50, 6, dtype=torch.float64))
    assert torch.allclose(out @ out.transpose(-1, -2), torch.eye(3, dtype=out.dtype).expand(50, 3, 3), atol=1e-10)
    assert torch.allclose(torch.linalg.det(out), torch.ones(50, dtype=out.dtype))


def test_rot6d_layout_matches_spin_convention():
    # SPIN reads the 6 numbers as a 3x2 matrix row-major: (a1x, a2x, a1y, a2y, a1z, a2z).
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    assert torch.allclose(g.rot6d_to_rotmat(x), torch.eye(3)[None])
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0, 0.0]])  # columns e_y, e_x -> det +1 needs b3 = -e_z
    expected = torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]])
    assert torch.allclose(g.rot6d_to_rotmat(x), expected)


def test_axis_angle_round_trip_near_zero_and_pi():
    aa = axis_angles_with_edge_cases()
    r = g.axis_angle_to_rotmat(aa)
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3, dtype=r.dtype).expand_as(r), atol=1e-12)
    back = g.rotmat_to_axis_angle(r)
    assert torch.allclose(g.axis_angle_to_rotmat(back), r, atol=1e-9)
    # Away from pi the axis-angle itself comes back (at pi, aa and -aa are the same rotation).
    away = aa.norm(dim=-1) < math.pi - 1e-3
    assert torch.allclose(back[away], aa[away], atol=1e-9)


def test_axis_angle_matches_independent_formula():
    aa = axis_angles_with_edge_cases()
    ours = g.axis_angle_to_rotmat(aa).numpy()
    for v, r in zip(aa.numpy(), ours):
        angle = np.linalg.norm(v)
        if angle < 1e-9:
            np.testing.assert_allclose(r, np.eye(3), atol=1e-9)
            continue
        k = v / angle
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        expected = np.cos(angle) * np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * np.outer(k, k)
        np.testing.assert_allclose(r, expected, atol=1e-12)


def test_rotmat_to_axis_angle_random_and_float32():
    r = random_rotations(500, seed=3)
    back = g.axis_angle_to_rotmat(g.rotmat_to_axis_angle(r))
    assert torch.allclose(back, r, atol=1e-10)
    r32 = r.float()
    assert torch.allclose(g.axis_angle_to_rotmat(g.rotmat_to_axis_angle(r32)), r32, atol=1e-5)


def test_rotation_gradients_are_finite_at_zero():
    aa = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    g.axis_angle_to_rotmat(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    r = torch.eye(3, dtype=torch.float64).repeat(4, 1, 1).requires_grad_(True)
    g.rotmat_to_axis_angle(r).sum().backward()
    assert torch.isfinite(r.grad).all()


def test_project_to_crop_is_weak_perspective_for_distant_camera():
    points = torch.tensor([[[0.1, -0.2, 0.05], [0.0, 0.0, 0.0]]])
    cam = torch.tensor([[0.8, 0.1, -0.05]])
    uv = g.project_to_crop(points, cam)
    s, tx, ty = cam[0]
    depth = 2 * 5000 / (224 * s)
    expected = 5000 * (points[0, :, :2] + torch.tensor([tx, ty])) / (points[0, :, 2:] + depth) / 112
    assert torch.allclose(uv[0], expected)
    # Weak-perspective approximation u ~ s (X + tx) holds to < 1%.
    assert torch.allclose(uv[0], s * (points[0, :, :2] + torch.tensor([tx, ty])), rtol=1e-2, atol=1e-4)


def known_similarity(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randn(32, 14, 3, generator=gen, dtype=torch.float64)
    rot = random_rotations(32, seed=seed + 10)
    scale = torch.rand(32, generator=gen, dtype=torch.float64) * 2 + 0.5
    shift = torch.randn(32, 1, 3, generator=gen, dtype=torch.float64)
    # pred = inverse transform of the target, so aligning pred gives the target back exactly.
    pred = ((target - shift) @ rot) / scale[:, None, None]
    return pred, target


def test_procrustes_recovers_known_similarity():
    pred, target = known_similarity()
    aligned = g.similarity_procrustes(pred, target)
    assert torch.allclose(aligned, target, atol=1e-10)
    aligned32 = g.similarity_procrustes(pred.float(), target.float())
    assert aligned32.dtype == torch.float32
    assert torch.allclose(aligned32.double(), target, atol=1e-4)


def test_procrustes_never_reflects():
    pred, target = known_similarity(seed=5)
    mirrored = pred * torch.tensor([-1.0, 1.0, 1.0], dtype=pred.dtype)
    aligned = g.similarity_procrustes(mirrored, target)
    # A proper rotation cannot undo a mirror: the residual stays positive, and the best proper
    # alignment is what an independent brute-force check (SVD per item with det fix) gives.
    assert (aligned - target).norm(dim=-1).mean() > 1e-3
    for p, t, a in zip(mirrored.numpy(), target.numpy(), aligned.numpy()):
        pc, tc = p - p.mean(0), t - t.mean(0)
        u, s, vt = np.linalg.svd(pc.T @ tc)
        d = np.sign(np.linalg.det(vt.T @ u.T))
        r = vt.T @ np.diag([1, 1, d]) @ u.T
        scale = (s * [1, 1, d]).sum() / (pc**2).sum()
        np.testing.assert_allclose(a, scale * pc @ r.T + t.mean(0), atol=1e-10)
        assert np.linalg.det(r) == pytest.approx(1.0)


def test_euler_to_rotmat_composes_axis_rotations():
    angles = torch.tensor([0.3, -1.1, 2.0], dtype=torch.float64)
    expected = torch.eye(3, dtype=torch.float64)
    for axis in range(3):
        unit = torch.zeros(3, dtype=torch.float64)
        unit[axis] = angles[axis]
        expected = expected @ g.axis_angle_to_rotmat(unit)  # Rx @ Ry @ Rz
    assert torch.allclose(g.euler_to_rotmat(angles), expected, atol=1e-12)


def test_rotmat_to_euler_inverts_euler_to_rotmat_gimbal_lock_included():
    torch.manual_seed(0)
    angles = torch.rand(500, 3, dtype=torch.float64) * 2 * math.pi - math.pi
    angles[:, 1] /= 2  # y in [-pi/2, pi/2]: the representative rotmat_to_euler returns
    recovered = g.rotmat_to_euler(g.euler_to_rotmat(angles))
    torch.testing.assert_close(recovered, angles, atol=1e-9, rtol=0)
    locked = torch.tensor([[0.3, math.pi / 2, -1.1], [-2.0, -math.pi / 2, 0.4]], dtype=torch.float64)
    rotations = g.euler_to_rotmat(locked)
    euler = g.rotmat_to_euler(rotations)
    assert (euler[:, 2] == 0).all()
    torch.testing.assert_close(g.euler_to_rotmat(euler), rotations, atol=1e-9, rtol=0)
