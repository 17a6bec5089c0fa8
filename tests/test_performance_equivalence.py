"""The optimised paths (docs/benchmarks.md) against their reference formulations, on random inputs."""

import torch

from str_lightning import geometry
from str_lightning.evaluation.metrics import PAMPJPE
from str_lightning.nets.str import TimeDomainEnhancement


def random_covariances(count: int, seed: int) -> torch.Tensor:
    """Matrices ``(count, 3, 3)``: generic, mirrored (det < 0), rank-deficient and zero ones."""
    gen = torch.Generator().manual_seed(seed)
    cov = torch.randn(count, 3, 3, generator=gen, dtype=torch.float64)
    quarter = count // 4
    cov[quarter:2 * quarter, :, 0] *= -torch.sign(torch.linalg.det(cov[quarter:2 * quarter]))[:, None]
    cov[2 * quarter:3 * quarter, :, 2] = cov[2 * quarter:3 * quarter, :, 0]  # rank 2
    cov[-1] = 0.0
    return cov


def test_polar_rotation_equals_the_svd_rotation():
    cov = random_covariances(400, seed=0)
    rotation, trace = geometry.procrustes_rotation(cov.permute(1, 2, 0))
    expected_rotation, expected_trace = geometry._svd_rotation(cov)
    torch.testing.assert_close(trace, expected_trace, rtol=0, atol=1e-10)
    generic = torch.linalg.matrix_rank(cov) == 3  # elsewhere the rotation is not unique
    torch.testing.assert_close(rotation.permute(2, 0, 1)[generic], expected_rotation[generic],
                               rtol=0, atol=1e-10)
    assert generic.sum() == 299  # the generic and the mirrored quarters, less the zero matrix


def test_newton_path_takes_positive_determinants_and_leaves_the_rest_to_the_svd():
    cov = random_covariances(400, seed=1)
    _, converged = geometry._newton_polar(cov.permute(1, 2, 0))
    positive = torch.linalg.det(cov) > 1e-6
    assert torch.equal(converged, positive)


def svd_pa_mpjpe_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Reference: Umeyama with one batched SVD, as (N, J, 3) matrix products."""
    x, y = pred.double(), target.double()
    xc, yc = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    rotation, trace = geometry._svd_rotation(xc.transpose(1, 2) @ yc)
    scale = trace / (xc * xc).sum((1, 2))
    return (scale[:, None, None] * xc @ rotation.transpose(1, 2) - yc).norm(dim=-1)


def test_pa_mpjpe_equals_the_svd_reference_with_mirrored_frames():
    gen = torch.Generator().manual_seed(2)
    target = torch.randn(2000, 14, 3, generator=gen)
    pred = target + 0.3 * torch.randn(2000, 14, 3, generator=gen)
    pred[::7] *= torch.tensor([-1.0, 1.0, 1.0])  # these need a reflection-corrected SVD
    expected = svd_pa_mpjpe_errors(pred, target)
    torch.testing.assert_close(geometry.procrustes_errors(pred, target), expected,
                               rtol=0, atol=1e-12)
    aligned = geometry.similarity_procrustes(pred.double(), target.double())
    torch.testing.assert_close((aligned - target.double()).norm(dim=-1), expected,
                               rtol=0, atol=1e-12)
    metric = PAMPJPE()
    metric.update(pred, target)
    torch.testing.assert_close(metric.compute(), 1000 * expected.mean(-1).mean(),
                               rtol=1e-12, atol=0)


def test_ste_excitation_at_the_window_ends_equals_the_full_equation():
    torch.manual_seed(3)
    ste = TimeDomainEnhancement(feature_dim=32, hidden_size=8, num_layers=1, target_index=8)
    features = torch.randn(5, 16, 32, dtype=torch.float64)
    ste.double()
    spatial = ste.conv(features.transpose(1, 2)).transpose(1, 2)
    full = torch.sigmoid((spatial.diff(dim=1) - features.diff(dim=1)).mean(dim=1))
    torch.testing.assert_close(ste.excitation(features), full, rtol=0, atol=1e-12)
