"""The SMPL wrapper on an arbitrary (random) model directory: joint plumbing and checkpoints."""

import pytest
import torch
from helpers import write_random_body_dir

from str_lightning.body import BodyModel
from str_lightning.body.joints import SMPL24, SPIN49, convert_joints
from str_lightning.geometry import axis_angle_to_rotmat


@pytest.fixture(scope="module")
def random_model_dir(tmp_path_factory):
    return write_random_body_dir(tmp_path_factory.mktemp("smpl_random"))


@pytest.fixture(scope="module")
def body(random_model_dir):
    return BodyModel(random_model_dir)


def posed_batch(batch: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    rotmat = axis_angle_to_rotmat(0.3 * torch.randn(batch, 24, 3, generator=gen))
    return rotmat, torch.randn(batch, 10, generator=gen)


def test_nothing_trainable_and_nothing_in_state_dict(body):
    assert list(body.parameters()) == []
    assert body.state_dict() == {}
    wrapper = torch.nn.Sequential(torch.nn.Linear(2, 2), body)
    assert set(wrapper.state_dict()) == {"0.weight", "0.bias"}


def test_spin_joints_come_from_the_right_sources(body):
    rotmat, betas = posed_batch()
    out = body(rotmat, betas)
    assert out.vertices.shape == (3, 6890, 3) and out.joints.shape == (3, 49, 3)
    assert out.smpl_joints.shape == (3, 24, 3)
    extra = torch.einsum("jv,bvc->bjc", body.j_regressor_extra, out.vertices)
    by_name = dict(zip(SPIN49, out.joints.unbind(1)))
    smpl = dict(zip(SMPL24, out.smpl_joints.unbind(1)))
    assert torch.equal(by_name["op_midhip"], smpl["pelvis"])
    assert torch.equal(by_name["rknee"], smpl["right_knee"])
    assert torch.equal(by_name["op_lwrist"], smpl["left_wrist"])
    assert torch.allclose(by_name["rhip"], extra[:, 0]) and torch.allclose(by_name["lhip"], extra[:, 1])
    assert torch.allclose(by_name["head_h36m"], extra[:, 8])
    nose_vertex = out.vertices[:, 332]  # smplx's default SMPL nose vertex
    assert torch.allclose(by_name["op_nose"], nose_vertex) and torch.allclose(by_name["nose"], nose_vertex)


def test_eval_joints_through_h36m_regressor(body):
    rotmat, betas = posed_batch(2, seed=1)
    verts = body(rotmat, betas).vertices
    h36m = body.eval_joints(verts, "h36m17")
    assert torch.allclose(h36m, torch.einsum("jv,bvc->bjc", body.j_regressor_h36m, verts))
    assert torch.equal(body.eval_joints(verts), convert_joints(h36m, "h36m17", "common14"))


def test_rest_pose_reproduces_template(body):
    rotmat = torch.eye(3).expand(1, 24, 3, 3)
    out = body(rotmat, torch.zeros(1, 10))
    template = torch.as_tensor(body.smpl.v_template)
    assert torch.allclose(out.vertices[0], template, atol=1e-5)


def test_mean_params_exposed(body):
    assert body.mean_params["pose"].shape == (144,)
    assert body.mean_params["cam"][0] == pytest.approx(0.9)


def test_joints_only_equals_the_full_forward(body):
    rotmat, betas = posed_batch(4, seed=2)
    full = body(rotmat, betas)
    fast = body.joints_only(rotmat, betas)
    assert fast.vertices is None
    assert torch.allclose(fast.joints, full.joints, atol=1e-5)
    assert torch.allclose(fast.smpl_joints, full.smpl_joints, atol=1e-5)


def test_joints_only_on_the_mannequin_with_gradients():
    body = BodyModel("mannequin")
    rotmat, betas = posed_batch(3, seed=3)
    rotmat.requires_grad_(True)
    fast = body.joints_only(rotmat, betas)
    assert torch.allclose(fast.joints, body(rotmat, betas).joints, atol=1e-5)
    fast.joints.sum().backward()
    assert torch.isfinite(rotmat.grad).all() and rotmat.grad.abs().sum() > 0
