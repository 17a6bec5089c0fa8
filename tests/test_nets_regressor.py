"""The SPIN/HMR iterative regressor: parameter count, outputs, dropout and SPIN weights."""

import pytest
import torch
from helpers import write_random_body_dir
from nets_helpers import linear, random_state, spin_regressor_keys

from str_lightning.geometry import axis_angle_to_rotmat, project_to_crop, rot6d_to_rotmat
from str_lightning.nets.regressor import Regressor, load_spin_checkpoint

DIM, HIDDEN = 24, 16


@pytest.fixture(scope="module")
def body_dir(tmp_path_factory):
    return write_random_body_dir(tmp_path_factory.mktemp("smpl_random"))


@pytest.fixture(scope="module")
def regressor(body_dir):
    torch.manual_seed(0)
    return Regressor(DIM, HIDDEN, body_model=body_dir)


def test_paper_dimension_count_and_state_keys(body_dir):
    regressor = Regressor(body_model=body_dir)
    trainable = sum(p.numel() for p in regressor.parameters() if p.requires_grad)
    assert trainable == 3_469_469
    assert trainable == (linear(2048 + 157, 1024) + linear(1024, 1024) + linear(1024, 144)
                         + linear(1024, 10) + linear(1024, 3))
    state = regressor.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == spin_regressor_keys(2048, 1024)


def test_mean_pose_baseline_predicts_the_mean_parameters_and_leaves_the_original(regressor):
    baseline = regressor.mean_pose_baseline()
    baseline.eval()
    with torch.no_grad():
        out = baseline(torch.rand(7, DIM) * 10)
    mean_rotmat = rot6d_to_rotmat(regressor.init_pose.reshape(-1, 6))
    assert torch.allclose(out.rotmat, mean_rotmat.expand(7, -1, -1, -1), atol=1e-6)
    assert torch.equal(out.betas, regressor.init_shape.expand(7, -1))
    assert torch.equal(out.cam, regressor.init_cam.expand(7, -1))
    assert regressor.decpose.weight.abs().sum() > 0  # the original keeps its weights


@pytest.mark.parametrize("leading", [(5,), (2, 3)])
def test_output_shapes_and_consistency(regressor, leading):
    regressor.eval()
    with torch.no_grad():
        out = regressor(torch.rand(*leading, DIM))
    expected = {"rotmat": (24, 3, 3), "pose": (72,), "betas": (10,), "cam": (3,),
                "vertices": (6890, 3), "joints": (49, 3), "joints2d": (49, 2)}
    for field, tail in expected.items():
        value = getattr(out, field)
        assert value.shape == (*leading, *tail) and torch.isfinite(value).all(), field
    eye = torch.eye(3).expand_as(out.rotmat)
    torch.testing.assert_close(out.rotmat @ out.rotmat.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(axis_angle_to_rotmat(out.pose.reshape(*leading, 24, 3)),
                               out.rotmat, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.joints2d, project_to_crop(out.joints, out.cam))


def test_zero_heads_return_the_mean_parameters(body_dir):
    regressor = Regressor(DIM, HIDDEN, body_model=body_dir).eval()
    with torch.no_grad():
        for head in (regressor.decpose, regressor.decshape, regressor.deccam):
            head.weight.zero_()
            head.bias.zero_()
        out = regressor(torch.rand(3, DIM))
    torch.testing.assert_close(out.rotmat, rot6d_to_rotmat(regressor.init_pose.reshape(1, 24, 6))
                               .expand(3, -1, -1, -1))
    torch.testing.assert_close(out.betas, regressor.init_shape.expand(3, -1))
    torch.testing.assert_close(out.cam, regressor.init_cam.expand(3, -1))


def test_dropout_acts_in_train_mode_only(regressor):
    features = torch.rand(4, DIM)
    with torch.no_grad():
        regressor.train()
        assert not torch.equal(regressor(features).betas, regressor(features).betas)
        regressor.eval()
        assert torch.equal(regressor(features).vertices, regressor(features).vertices)


def test_wrong_feature_size_is_rejected(regressor):
    with pytest.raises(ValueError, match=r"\(\.\.\., 24\), got \(2, 25\)"):
        regressor(torch.rand(2, 25))


def spin_state_dict(seed: int = 1) -> dict[str, torch.Tensor]:
    """Regressor weights plus a few of HMR's ResNet-50 entries, which must be ignored."""
    state = random_state(spin_regressor_keys(DIM, HIDDEN), seed)
    state.update({"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.running_mean": torch.zeros(64),
                  "layer4.2.conv3.weight": torch.zeros(2048, 512, 1, 1)})
    return state


def test_load_spin_state_dict(body_dir):
    regressor = Regressor(DIM, HIDDEN, body_model=body_dir)
    state = spin_state_dict()
    regressor.load_spin_state_dict(state)
    for key, value in regressor.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_load_spin_state_dict_reports_missing_and_mismatched_keys(body_dir):
    regressor = Regressor(DIM, HIDDEN, body_model=body_dir)
    state = spin_state_dict()
    del state["deccam.bias"]
    state["fc1.weight"] = torch.zeros(HIDDEN, 2205)
    with pytest.raises(ValueError, match=r"deccam\.bias.*fc1\.weight: expected \(16, 181\), "
                                         r"got \(16, 2205\)"):
        regressor.load_spin_state_dict(state)


def test_load_spin_checkpoint_file(tmp_path, body_dir):
    path = tmp_path / "spin_model_checkpoint.pth.tar"
    torch.save({"model": spin_state_dict(2), "epoch": 3}, path)
    regressor = Regressor(DIM, HIDDEN, body_model=body_dir)
    regressor.load_spin_state_dict(load_spin_checkpoint(path))
    assert torch.equal(regressor.fc2.weight, spin_state_dict(2)["fc2.weight"])
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt.*'model'.*\['state_dict'\]"):
        load_spin_checkpoint(tmp_path / "other.pt")
