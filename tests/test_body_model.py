"""The SMPL wrapper on an arbitrary (random) model directory: joint plumbing and checkpoints."""

import numpy as np
import pytest
import torch
from helpers import write_random_body_dir
from smplx.lbs import batch_rigid_transform

from str_lightning.body import BodyModel, BodyModelFileError
from str_lightning.body.joints import SMPL24, SPIN49, convert_joints
from str_lightning.body.smpl import KinematicTree
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


@pytest.fixture(scope="module", params=["mannequin", "random"])
def either_body(request, body):
    """The mannequin (SMPL's tree, no pose correctives) and the random model (a chain of 24
    joints, pose correctives)."""
    return BodyModel("mannequin") if request.param == "mannequin" else body


def test_forward_equals_smplx_smpl(either_body):
    """The skinning is smplx's, with the chain walked in Python: the same numbers."""
    rotmat, betas = posed_batch(5, seed=4)
    ours = either_body(rotmat, betas)
    smplx_out = either_body.smpl(betas=betas, global_orient=rotmat[:, :1], body_pose=rotmat[:, 1:],
                                 pose2rot=False)
    torch.testing.assert_close(ours.vertices, smplx_out.vertices, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.smpl_joints, smplx_out.joints[:, :24], rtol=0, atol=1e-6)
    landmarks = smplx_out.joints[:, 24:]  # smplx's vertex joints (nose, eyes, toes, fingers)
    extra = torch.einsum("jv,bvc->bjc", either_body.j_regressor_extra, smplx_out.vertices)
    reference = torch.cat((smplx_out.joints[:, :24], landmarks, extra), 1)[:, either_body.spin_index]
    torch.testing.assert_close(ours.joints, reference, rtol=0, atol=1e-6)


def test_kinematic_tree_equals_smplx_batch_rigid_transform_with_gradients(either_body):
    rotmat, betas = posed_batch(4, seed=5)
    rest = either_body.rest_joints(betas)
    inputs = [(rotmat.clone().requires_grad_(), rest.clone().requires_grad_()) for _ in range(2)]
    ours = either_body.kinematic_tree(*inputs[0])
    smplx_result = batch_rigid_transform(*inputs[1], either_body.smpl.parents)
    for mine, theirs in zip(ours, smplx_result):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6)
    weights = torch.randn_like(ours[1])
    (ours[0].sum() + (ours[1] * weights).sum()).backward()
    (smplx_result[0].sum() + (smplx_result[1] * weights).sum()).backward()
    for mine, theirs in zip(*inputs):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=1e-6)


@pytest.mark.parametrize("parents", [(0, 0, 1), (-1, 2, 0), (-1, 0, 5), (), (-1, -1)])
def test_kinematic_tree_needs_each_parent_before_its_joint(parents):
    with pytest.raises(ValueError, match=r"expected the root's parent -1 first.*got parents"):
        KinematicTree(parents)


def test_a_model_file_with_parents_out_of_order_is_refused(tmp_path):
    root = write_random_body_dir(tmp_path)
    with np.load(root / "SMPL_NEUTRAL.npz") as npz:
        arrays = dict(npz)
    arrays["kintree_table"][0, 1] = 5
    np.savez(root / "SMPL_NEUTRAL.npz", **arrays)
    with pytest.raises(BodyModelFileError, match=rf"{root}: kintree_table: .*got parents \[-1, 5,"):
        BodyModel(root)
