"""Evaluation protocols: registry, joints and roots, metric collections and their updates."""

import pytest
import torch
from helpers import write_random_body_dir

from str_lightning.body import BodyModel
from str_lightning.body.joints import COMMON14, MPII3D17, convert_joints
from str_lightning.evaluation.metrics import MPJPE, MPVPE, PAMPJPE, AccelError
from str_lightning.evaluation.protocols import (
    PROTOCOLS,
    build_metrics,
    get_protocol,
    predicted_joints,
    target_joints,
    update_metrics,
)


def test_registry_knows_the_four_datasets_and_names_them_on_error():
    assert set(PROTOCOLS) == {"3dpw", "mpii3d", "h36m", "synthetic"}
    with pytest.raises(KeyError, match=r"unknown evaluation protocol '3dpx'.*'3dpw'"):
        get_protocol("3dpx")


def test_joints_roots_and_metrics_per_dataset():
    pw3d, mpii3d, h36m = get_protocol("3dpw"), get_protocol("mpii3d"), get_protocol("h36m")
    assert (pw3d.joint_set, pw3d.joint_source) == ("common14", "h36m")
    assert [COMMON14[i] for i in pw3d.root] == ["rhip", "lhip"]
    assert (mpii3d.joint_set, mpii3d.joint_source, mpii3d.root) == ("mpii3d17", "spin", (14,))
    assert MPII3D17[14] == "hip"
    assert h36m.joint_set == "common14"
    with_meshes = {name for name, p in PROTOCOLS.items() if "mpvpe" in p.metrics}
    assert with_meshes == {"3dpw", "synthetic"}


def test_build_metrics_configures_each_metric_from_the_protocol():
    metrics = build_metrics(get_protocol("mpii3d"), prefix="test/mpii3d/")
    assert set(metrics.keys()) == {"test/mpii3d/mpjpe", "test/mpii3d/pa_mpjpe", "test/mpii3d/accel"}
    assert isinstance(metrics["mpjpe"], MPJPE) and metrics["mpjpe"].root == (14,)
    assert isinstance(metrics["accel"], AccelError) and metrics["accel"].root == (14,)
    assert isinstance(metrics["pa_mpjpe"], PAMPJPE)
    assert build_metrics(get_protocol("3dpw"))["mpvpe"].root is None


def sequences(batch=3, frames=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    gt_j, gt_v = torch.randn(batch, frames, 14, 3, generator=gen), torch.randn(batch, frames, 30, 3,
                                                                            generator=gen)
    pred_j = gt_j + 0.1 * torch.randn(gt_j.shape, generator=gen)
    pred_v = gt_v + 0.1 * torch.randn(gt_v.shape, generator=gen)
    valid = torch.rand(batch, frames, generator=gen) > 0.2
    return pred_j, gt_j, pred_v, gt_v, valid


def test_update_metrics_routes_frames_sequences_and_vertices():
    pred_j, gt_j, pred_v, gt_v, valid = sequences()
    metrics = build_metrics(get_protocol("3dpw"))
    update_metrics(metrics, pred_j, gt_j, valid, pred_v, gt_v)
    got = metrics.compute()
    expected = {"mpjpe": MPJPE(), "pa_mpjpe": PAMPJPE(), "mpvpe": MPVPE(), "accel": AccelError()}
    for seq in range(len(valid)):
        for name in ("mpjpe", "pa_mpjpe", "accel"):
            expected[name].update(pred_j[seq], gt_j[seq], valid[seq])
        expected["mpvpe"].update(pred_v[seq], gt_v[seq], valid[seq])
    for name, metric in expected.items():
        assert got[name].item() == pytest.approx(metric.compute().item(), rel=1e-12), name


def test_metrics_with_equal_first_states_are_not_merged():
    pred_j, gt_j, _, _, valid = sequences()
    metrics = build_metrics(get_protocol("h36m"))
    nothing = torch.zeros_like(valid[0])
    metrics.update(pred_j[0], gt_j[0], nothing)  # the collection's update; all states zero
    update_metrics(metrics, pred_j[1], gt_j[1], valid[1])
    values = metrics.compute()
    assert values["mpjpe"] != values["pa_mpjpe"] != values["accel"]


def test_mpvpe_without_vertices_is_an_error():
    pred_j, gt_j, *_ = sequences()
    with pytest.raises(ValueError, match="needs pred_vertices"):
        update_metrics(build_metrics(get_protocol("synthetic")), pred_j[0], gt_j[0])


def test_target_joints_convert_by_name_and_refuse_missing_joints():
    spin = torch.randn(4, 49, 3)
    common = target_joints(get_protocol("3dpw"), spin, "spin49")
    torch.testing.assert_close(common, spin[:, 25:39])
    with pytest.raises(ValueError, match=r"lacks \['head_h36m', 'hip', 'spine_h36m'\]"):
        target_joints(get_protocol("mpii3d"), common, "common14")


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    return BodyModel(write_random_body_dir(tmp_path_factory.mktemp("smpl_random"), seed=5))


def test_predicted_joints_use_the_protocols_source(body):
    vertices, spin = torch.randn(2, 6890, 3), torch.randn(2, 49, 3)
    h36m = torch.einsum("jv,bvc->bjc", body.j_regressor_h36m, vertices)
    torch.testing.assert_close(predicted_joints(get_protocol("3dpw"), body, vertices, spin),
                               convert_joints(h36m, "h36m17", "common14"))
    torch.testing.assert_close(predicted_joints(get_protocol("mpii3d"), body, vertices, spin),
                               convert_joints(spin, "spin49", "mpii3d17"))
