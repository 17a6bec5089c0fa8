"""Metrics against independent numpy references written from the formulas, plus invariances."""

import numpy as np
import pytest
import torch

from str_lightning.evaluation.metrics import (
    MPJPE,
    MPVPE,
    PAMPJPE,
    AccelError,
    EmptyMetricError,
)
from str_lightning.geometry import align_to_root

TOL_MM = 1e-4


# ---------------------------------------------------------------- numpy references (per frame)
def ref_root(points: np.ndarray, root) -> np.ndarray:
    if root is None:
        return np.zeros(3)
    return points[np.atleast_1d(root)].mean(axis=0)


def ref_mpjpe(pred, gt, valid, root) -> float:
    errors = [
        np.linalg.norm((p - ref_root(p, root)) - (g - ref_root(g, root)), axis=-1).mean()
        for p, g, ok in zip(pred, gt, valid) if ok
    ]
    return 1000 * float(np.mean(errors))


def ref_procrustes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Similarity transform of x (J, 3) onto y: TCMR's formulas with 3 x J matrices."""
    x1, x2 = x.T, y.T
    mu1, mu2 = x1.mean(1, keepdims=True), x2.mean(1, keepdims=True)
    x1c, x2c = x1 - mu1, x2 - mu2
    k = x1c @ x2c.T
    u, _, vt = np.linalg.svd(k)
    v = vt.T
    z = np.eye(3)
    z[2, 2] = np.sign(np.linalg.det(u @ v.T))
    r = v @ z @ u.T
    scale = np.trace(r @ k) / np.sum(x1c ** 2)
    t = mu2 - scale * r @ mu1
    return (scale * r @ x1 + t).T


def ref_pa_mpjpe(pred, gt, valid) -> float:
    errors = [np.linalg.norm(ref_procrustes(p, g) - g, axis=-1).mean()
              for p, g, ok in zip(pred, gt, valid) if ok]
    return 1000 * float(np.mean(errors))


def ref_accel(pred, gt, valid, root) -> float:
    pred = np.stack([p - ref_root(p, root) for p in pred])
    gt = np.stack([g - ref_root(g, root) for g in gt])
    errors = []
    for t in range(1, len(pred) - 1):
        if valid[t - 1] and valid[t] and valid[t + 1]:
            accel_pred = pred[t - 1] - 2 * pred[t] + pred[t + 1]
            accel_gt = gt[t - 1] - 2 * gt[t] + gt[t + 1]
            errors.append(np.linalg.norm(accel_pred - accel_gt, axis=-1).mean())
    return 1000 * float(np.mean(errors))


# ---------------------------------------------------------------- data
def random_frames(num_frames=40, num_points=14, seed=0):
    """GT poses around 1 m in size, predictions ~10 cm off, float32 like real inputs."""
    gen = torch.Generator().manual_seed(seed)
    gt = torch.randn(num_frames, num_points, 3, generator=gen) * 0.5 + torch.tensor([0, 0, 4.0])
    pred = gt + 0.1 * torch.randn(num_frames, num_points, 3, generator=gen)
    return pred, gt


def random_mask(num_frames, seed=0):
    gen = torch.Generator().manual_seed(seed + 100)
    mask = torch.rand(num_frames, generator=gen) > 0.3
    mask[:2] = True
    return mask


def value(metric, *args):
    metric.update(*args)
    return metric.compute().item()


ROOTS = [(2, 3), 5, None]


# ---------------------------------------------------------------- reference agreement
@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize("masked", [False, True])
def test_mpjpe_matches_reference(root, masked):
    pred, gt = random_frames()
    mask = random_mask(len(pred)) if masked else torch.ones(len(pred), dtype=torch.bool)
    got = value(MPJPE(root=root), pred, gt, mask if masked else None)
    assert got == pytest.approx(ref_mpjpe(pred.numpy(), gt.numpy(), mask.numpy(), root), abs=TOL_MM)


@pytest.mark.parametrize("masked", [False, True])
def test_mpvpe_matches_reference(masked):
    pred, gt = random_frames(num_frames=12, num_points=300, seed=3)
    mask = random_mask(len(pred), 3) if masked else torch.ones(len(pred), dtype=torch.bool)
    got = value(MPVPE(), pred, gt, mask)
    assert got == pytest.approx(ref_mpjpe(pred.numpy(), gt.numpy(), mask.numpy(), None), abs=TOL_MM)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("reflected", [False, True])
def test_pa_mpjpe_matches_reference(masked, reflected):
    pred, gt = random_frames(seed=1)
    if reflected:  # a mirror image cannot be reached by a rotation: the correction matters
        pred = pred * torch.tensor([-1.0, 1.0, 1.0])
    mask = random_mask(len(pred), 1) if masked else torch.ones(len(pred), dtype=torch.bool)
    got = value(PAMPJPE(), pred, gt, mask)
    assert got == pytest.approx(ref_pa_mpjpe(pred.numpy(), gt.numpy(), mask.numpy()), abs=TOL_MM)


def test_pa_mpjpe_of_a_mirrored_pose_is_not_zero():
    _, gt = random_frames(seed=2)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0])
    assert value(PAMPJPE(), mirrored, gt) > 50


@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize("masked", [False, True])
def test_accel_error_matches_reference(root, masked):
    pred, gt = random_frames(num_frames=30, seed=4)
    mask = random_mask(len(pred), 4) if masked else torch.ones(len(pred), dtype=torch.bool)
    got = value(AccelError(root=root), pred, gt, mask if masked else None)
    assert got == pytest.approx(ref_accel(pred.numpy(), gt.numpy(), mask.numpy(), root), abs=TOL_MM)


def test_values_pool_frames_over_updates():
    pred, gt = random_frames(num_frames=50, seed=5)
    metric = MPJPE()
    for part in torch.split(torch.arange(50), [7, 30, 13]):
        metric.update(pred[part], gt[part])
    expected = ref_mpjpe(pred.numpy(), gt.numpy(), np.ones(50, bool), (2, 3))
    assert metric.compute().item() == pytest.approx(expected, abs=TOL_MM)


# ---------------------------------------------------------------- invariances
def random_rotation(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))
    return q * torch.sign(torch.det(q))


def test_pa_mpjpe_invariant_to_similarity_transform_of_prediction():
    pred, gt = random_frames(seed=6)
    moved = 2.7 * pred @ random_rotation(6).T + torch.tensor([0.3, -1.2, 5.0])
    assert value(PAMPJPE(), moved, gt) == pytest.approx(value(PAMPJPE(), pred, gt), abs=TOL_MM)


def test_mpjpe_invariant_to_translation_and_zero_on_identical_input():
    pred, gt = random_frames(seed=7)
    shifted = pred + torch.tensor([1.0, 2.0, -3.0])
    assert value(MPJPE(), shifted, gt) == pytest.approx(value(MPJPE(), pred, gt), abs=TOL_MM)
    assert value(MPJPE(), gt, gt) == 0.0
    assert value(AccelError(), gt, gt) == 0.0
    assert value(PAMPJPE(), gt, gt) == pytest.approx(0.0, abs=TOL_MM)


def test_accel_error_zero_for_constant_velocity_offsets():
    _, gt = random_frames(num_frames=25, seed=8)
    gt = gt.double()  # float32 would round the offsets of up to 24 m to ~1e-3 mm
    gen = torch.Generator().manual_seed(8)
    offset = torch.randn(14, 3, generator=gen, dtype=torch.float64)
    velocity = torch.randn(14, 3, generator=gen, dtype=torch.float64)
    time = torch.arange(25, dtype=torch.float64)[:, None, None]
    pred = gt + offset + velocity * time
    assert value(AccelError(root=None), pred, gt) == pytest.approx(0.0, abs=TOL_MM)
    assert value(AccelError(), pred, gt) == pytest.approx(0.0, abs=TOL_MM)
    assert value(MPJPE(root=None), pred, gt) > 1000  # the offsets are there, accel ignores them


# ---------------------------------------------------------------- masks
def test_mask_equals_dropping_the_frames_even_when_they_hold_nan():
    pred, gt = random_frames(seed=9)
    mask = random_mask(len(pred), 9)
    poisoned = pred.clone()
    poisoned[~mask] = float("nan")
    for make in (MPJPE, PAMPJPE, MPVPE):
        masked = value(make(), poisoned, gt, mask)
        assert masked == pytest.approx(value(make(), pred[mask], gt[mask]), abs=TOL_MM)


def test_accel_invalid_frame_removes_exactly_the_terms_it_touches():
    pred, gt = random_frames(num_frames=12, seed=10)
    mask = torch.ones(12, dtype=torch.bool)
    mask[5] = False
    pred[5] = float("nan")
    metric = AccelError()
    metric.update(pred, gt, mask)
    assert metric.count.item() == 10 - 3  # terms of frames 4, 5, 6 removed
    per_term = [value(AccelError(), pred[t - 1:t + 2], gt[t - 1:t + 2]) for t in range(1, 11)
                if t not in (4, 5, 6)]
    assert metric.compute().item() == pytest.approx(np.mean(per_term), abs=TOL_MM)


def test_accel_never_crosses_sequences():
    pred, gt = random_frames(num_frames=20, seed=11)
    separate = AccelError()
    separate.update(pred[:8], gt[:8])
    separate.update(pred[8:], gt[8:])
    assert separate.count.item() == 6 + 10
    batched = AccelError()
    batched.update(pred.view(2, 10, 14, 3), gt.view(2, 10, 14, 3))
    one_by_one = AccelError()
    for seq in range(2):
        one_by_one.update(pred.view(2, 10, 14, 3)[seq], gt.view(2, 10, 14, 3)[seq])
    assert batched.compute().item() == pytest.approx(one_by_one.compute().item(), abs=TOL_MM)


def test_batched_accel_with_padding_masks():
    pred, gt = random_frames(num_frames=20, seed=12)
    valid = torch.ones(2, 10, dtype=torch.bool)
    valid[1, 6:] = False  # second sequence has 6 real frames, then padding
    batched = AccelError()
    batched.update(pred.view(2, 10, 14, 3), gt.view(2, 10, 14, 3), valid)
    expected = AccelError()
    expected.update(pred[:10], gt[:10])
    expected.update(pred[10:16], gt[10:16])
    assert batched.count.item() == expected.count.item() == 8 + 4
    assert batched.compute().item() == pytest.approx(expected.compute().item(), abs=TOL_MM)


def test_short_sequences_have_no_acceleration_term():
    pred, gt = random_frames(num_frames=2)
    metric = AccelError()
    metric.update(pred, gt)
    metric.update(pred[:1], gt[:1])
    assert metric.count.item() == 0


# ---------------------------------------------------------------- empty and bad input
@pytest.mark.parametrize("make", [MPJPE, PAMPJPE, MPVPE, AccelError])
def test_compute_without_a_valid_frame_raises(make):
    pred, gt = random_frames(num_frames=5)
    metric = make()
    metric.update(pred, gt, torch.zeros(5, dtype=torch.bool))
    with pytest.raises(EmptyMetricError, match="no valid frame"):
        metric.compute()


def test_integer_masks_work_and_float_masks_are_rejected():
    pred, gt = random_frames(num_frames=6)
    mask = torch.tensor([1, 0, 1, 1, 0, 1], dtype=torch.uint8)
    assert value(MPJPE(), pred, gt, mask) == pytest.approx(
        value(MPJPE(), pred[mask.bool()], gt[mask.bool()]), abs=TOL_MM)
    with pytest.raises(TypeError, match="bool or integer"):
        MPJPE().update(pred, gt, mask.float())


@pytest.mark.parametrize(
    ("make", "pred_shape", "target_shape", "valid_shape", "match"),
    [
        (MPJPE, (4, 14, 3), (4, 13, 3), None, "must both have shape"),
        (MPJPE, (4, 14, 2), (4, 14, 2), None, "must both have shape"),
        (MPJPE, (2, 4, 14, 3), (2, 4, 14, 3), None, r"must both have shape \(N, P, 3\)"),
        (AccelError, (14, 3), (14, 3), None, r"\(T, J, 3\) or \(B, T, J, 3\)"),
        (MPJPE, (4, 14, 3), (4, 14, 3), (5,), "one flag per frame"),
        (AccelError, (4, 14, 3), (4, 14, 3), (4, 1), "one flag per frame"),
        (lambda: MPJPE(root=14), (4, 14, 3), (4, 14, 3), None, "out of range"),
    ],
)
def test_bad_input_gets_a_clear_error(make, pred_shape, target_shape, valid_shape, match):
    valid = None if valid_shape is None else torch.ones(valid_shape, dtype=torch.bool)
    with pytest.raises(ValueError, match=match):
        make().update(torch.zeros(pred_shape), torch.zeros(target_shape), valid)


def test_bad_root_is_rejected():
    with pytest.raises(TypeError, match="root must be"):
        MPJPE(root=(2.0, 3))


def test_align_to_root_uses_the_mean_of_the_root_points():
    points = torch.arange(12.0).view(1, 4, 3)
    aligned = align_to_root(points, (1, 2))
    assert torch.equal(aligned[0, 1] + aligned[0, 2], torch.zeros(3))
    assert torch.equal(align_to_root(points, None), points)


@pytest.mark.parametrize("root", [0, -1, (1, 2), (-2, -1), (0, 2), (3, 1), (-1, 0), (2, 2)])
def test_align_to_root_takes_any_root_by_slice_or_index(root):
    points = torch.randn(2, 5, 4, 3)
    indices = [root] if isinstance(root, int) else list(root)
    expected = points - torch.stack([points[..., i, :] for i in indices], -2).mean(-2, keepdim=True)
    torch.testing.assert_close(align_to_root(points, root), expected)


def test_common14_root_is_the_mid_hip():
    from str_lightning.body.joints import ROOTS

    x = torch.randn(3, 14, 3)
    assert torch.allclose(align_to_root(x, ROOTS["common14"]), x - (x[:, 2:3] + x[:, 3:4]) / 2)
