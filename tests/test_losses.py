import numpy as np
import pytest
import torch

from str_lightning.geometry import axis_angle_to_rotmat
from str_lightning.modules.losses import LossWeights, PoseShapeLoss


def batch(n: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    pred = {
        "kp2d": torch.randn(n, 49, 2, generator=gen),
        "kp3d": torch.randn(n, 49, 3, generator=gen),
        "rotmat": axis_angle_to_rotmat(torch.randn(n, 24, 3, generator=gen)),
        "betas": torch.randn(n, 10, generator=gen),
    }
    target = {
        "kp2d": torch.cat((torch.randn(n, 49, 2, generator=gen), torch.rand(n, 49, 1, generator=gen)), -1),
        "kp3d": torch.randn(n, 49, 3, generator=gen),
        "pose": torch.randn(n, 72, generator=gen),
        "shape": torch.randn(n, 10, generator=gen),
        "w_kp2d": torch.tensor([1.0, 1, 0, 1, 1, 0])[:n],
        "w_kp3d": torch.tensor([0.0, 1, 1, 0, 1, 1])[:n],
        "w_smpl": torch.tensor([0.0, 0, 1, 1, 0, 1])[:n],
    }
    return pred, target


def reference(pred, target, w=LossWeights()):  # noqa: B008 - frozen dataclass
    """Per-frame numpy loops over TCMR's and VIBE's formulas."""
    p = {k: v.double().numpy() for k, v in pred.items()}
    t = {k: v.double().numpy() for k, v in target.items()}
    common = list(range(25, 39))
    out = {"kp2d": [], "kp3d": [], "pose": [], "shape": []}
    for i in range(len(p["kp2d"])):
        if t["w_kp2d"][i]:
            out["kp2d"].append(np.mean(t["kp2d"][i, :, 2:] * (p["kp2d"][i] - t["kp2d"][i, :, :2]) ** 2))
        if t["w_kp3d"][i]:
            a, b = p["kp3d"][i, common], t["kp3d"][i, common]
            a, b = a - (a[2] + a[3]) / 2, b - (b[2] + b[3]) / 2
            out["kp3d"].append(np.mean((a - b) ** 2))
        if t["w_smpl"][i]:
            rot = axis_angle_to_rotmat(torch.from_numpy(t["pose"][i].reshape(24, 3))).numpy()
            out["pose"].append(np.mean((p["rotmat"][i] - rot) ** 2))
            out["shape"].append(np.mean((p["betas"][i] - t["shape"][i]) ** 2))
    scale = {"kp2d": w.kp2d, "kp3d": w.kp3d, "pose": w.pose, "shape": w.shape}
    return {k: scale[k] * (np.mean(v) if v else 0.0) for k, v in out.items()}


def test_matches_per_frame_reference():
    pred, target = batch()
    ours = PoseShapeLoss()(pred, target)
    expected = reference(pred, target)
    for key, value in expected.items():
        assert ours[key].item() == pytest.approx(value, rel=1e-5), key
    assert ours["total"].item() == pytest.approx(sum(expected.values()), rel=1e-5)


def test_unsupervised_frames_contribute_nothing_even_if_nan():
    pred, target = batch()
    for key in ("kp2d", "kp3d", "pose", "shape"):
        target[key] = target[key].clone()
    target["kp3d"][0] = float("nan")  # w_kp3d[0] == 0
    target["pose"][1] = float("nan")  # w_smpl[1] == 0
    ours = PoseShapeLoss()(pred, target)
    assert torch.isfinite(ours["total"])
    assert ours["kp3d"].item() == pytest.approx(reference(*batch())["kp3d"], rel=1e-5)


def test_no_supervision_gives_zero_not_nan_and_gradients_flow():
    pred, target = batch()
    for key in ("w_kp2d", "w_kp3d", "w_smpl"):
        target[key] = torch.zeros_like(target[key])
    pred = {k: v.clone().requires_grad_(True) for k, v in pred.items()}
    ours = PoseShapeLoss()(pred, target)
    assert ours["total"].item() == 0.0
    ours["total"].backward()
    assert all(torch.isfinite(v.grad).all() for v in pred.values())


def test_perfect_prediction_has_zero_loss_and_3d_is_translation_invariant():
    _, target = batch()
    perfect = {
        "kp2d": target["kp2d"][..., :2],
        "kp3d": target["kp3d"] + torch.tensor([0.3, -1.0, 4.0]),
        "rotmat": axis_angle_to_rotmat(target["pose"].reshape(-1, 24, 3)),
        "betas": target["shape"],
    }
    ours = PoseShapeLoss()(perfect, target)
    assert ours["total"].item() == pytest.approx(0.0, abs=1e-8)
