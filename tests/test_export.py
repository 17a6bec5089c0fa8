"""``str-lightning export``: BVH, mesh and AMASS files read back against the prediction file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybvh
import pytest
import torch

from str_lightning.app.cli import main
from str_lightning.body import BodyModel
from str_lightning.body.joints import SMPL24, SPIN49, SPIN49_FROM_SMPLX54
from str_lightning.geometry import axis_angle_to_rotmat
from str_lightning.outputs.exporters import BVH_UNITS_PER_METRE, upright_rotation
from str_lightning.outputs.predictions import prediction_arrays, write_prediction_file

FRAMES = 6
BVH_TOLERANCE_M = 1e-4  # the BVH prints 1e-6 cm and 1e-6 degrees; float32 posing is ~1e-6 m
# spin49 slots that are SMPL kinematic-tree joints: (spin49 index, smpl24 index)
SMPL_SLOTS = [(i, s) for i, s in enumerate(SPIN49_FROM_SMPLX54) if s < len(SMPL24)]


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return BodyModel("mannequin")


@pytest.fixture(scope="module")
def prediction(body, tmp_path_factory) -> Path:
    """A prediction file of a posed body with one shape (so one skeleton fits every frame)."""
    rng = np.random.default_rng(3)
    pose = (0.4 * rng.standard_normal((FRAMES, 72))).astype(np.float32)
    betas = np.repeat(rng.standard_normal((1, 10)).astype(np.float32), FRAMES, axis=0)
    with torch.no_grad():
        out = body(axis_angle_to_rotmat(torch.from_numpy(pose).reshape(-1, 24, 3)),
                   torch.from_numpy(betas))
        h36m = body.eval_joints(out.vertices, "h36m17")
    frames = {"pose": pose, "betas": betas, "cam": np.tile([0.9, 0.1, -0.2], (FRAMES, 1)),
              "joints_spin49": out.joints.numpy(), "joints_h36m17": h36m.numpy(),
              "frame_id": np.arange(10, 10 + FRAMES)}
    fields = {"dataset": "toy", "sequence": "walk_000000", "fps": 30.0, "model": "m",
              "encoder": "e", "body_model": "mannequin", "checkpoint": ""}
    path = tmp_path_factory.mktemp("pred") / "walk_000000.npz"
    return write_prediction_file(path, prediction_arrays(frames, fields))


def _read(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def _export(prediction: Path, out: Path, fmt: str, *extra: str) -> Path:
    assert main(["export", str(prediction), "--format", fmt, "--out", str(out), *extra]) == 0
    return out


@pytest.mark.parametrize("up", ["camera", "y", "z"])
def test_bvh_re_posed_reproduces_the_written_joints(prediction, tmp_path, up):
    """pybvh's forward kinematics of the file gives the predicted SMPL joints (the spin49 slots
    that are kinematic-tree joints), turned about the pelvis into the ``up`` frame."""
    out = _export(prediction, tmp_path, "bvh", "--up", up)
    animation = pybvh.read_bvh_file(out / "walk_000000.bvh")
    assert animation.frame_count == FRAMES and animation.fps == pytest.approx(30.0)
    order = [animation.joint_index[name] for name in SMPL24]
    bvh_joints = animation.joint_positions(centered="world")[:, order] / BVH_UNITS_PER_METRE
    written = _read(prediction)["joints_spin49"].astype(np.float64)
    pelvis = written[:, [SPIN49.index("op_midhip")]]
    expected = (written - pelvis) @ upright_rotation(up).numpy().T + pelvis
    spin, smpl = zip(*SMPL_SLOTS)
    assert np.abs(bvh_joints[:, list(smpl)] - expected[:, list(spin)]).max() < BVH_TOLERANCE_M


def test_bvh_skeleton_is_the_persons_shaped_rest_pose(prediction, body, tmp_path):
    animation = pybvh.read_bvh_file(_export(prediction, tmp_path, "bvh") / "walk_000000.bvh")
    betas = torch.from_numpy(_read(prediction)["betas"][:1])
    parents = body.parents
    with torch.no_grad():
        shaped, template = body.rest_joints(betas)[0].numpy(), body.rest_joints(0 * betas)[0].numpy()
    offsets = {node.name: np.asarray(node.offset) / BVH_UNITS_PER_METRE for node in animation.nodes
               if node.name in SMPL24}
    for joint in range(1, 24):
        bone = shaped[joint] - shaped[parents[joint]]
        np.testing.assert_allclose(offsets[SMPL24[joint]], bone, atol=1e-7)
    shaped_bones = np.linalg.norm(shaped[1:] - shaped[parents[1:]], axis=1)
    template_bones = np.linalg.norm(template[1:] - template[parents[1:]], axis=1)
    assert np.abs(shaped_bones - template_bones).max() > 1e-3  # not a template skeleton


def _obj_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    lines = path.read_text().splitlines()
    vertices = np.array([line.split()[1:] for line in lines if line.startswith("v ")], dtype=float)
    faces = np.array([line.split()[1:] for line in lines if line.startswith("f ")], dtype=int) - 1
    return vertices, faces


def _ply_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = path.read_bytes()
    header, body = data.split(b"end_header\n", 1)
    counts = {line.split()[1]: int(line.split()[2]) for line in header.decode().splitlines()
              if line.startswith("element")}
    assert b"format binary_little_endian 1.0" in header
    vertices = np.frombuffer(body, "<f4", count=3 * counts[b"vertex".decode()]).reshape(-1, 3)
    records = np.frombuffer(body, [("n", "u1"), ("i", "<i4", (3,))], offset=vertices.nbytes)
    assert len(records) == counts["face"] and (records["n"] == 3).all()
    return vertices, records["i"]


@pytest.mark.parametrize("fmt", ["obj", "ply", "npz"])
def test_meshes_round_trip(prediction, body, tmp_path, fmt):
    out = _export(prediction, tmp_path, fmt)
    pred = _read(prediction)
    rotmat = axis_angle_to_rotmat(torch.from_numpy(pred["pose"]).double().reshape(-1, 24, 3))
    rotmat[:, 0] = upright_rotation("y") @ rotmat[:, 0]
    with torch.no_grad():
        expected = body(rotmat.float(), torch.from_numpy(pred["betas"])).vertices.numpy()
    if fmt == "npz":
        meshes = _read(out / "walk_000000_meshes.npz")
        np.testing.assert_array_equal(meshes["faces"], body.faces)
        np.testing.assert_array_equal(meshes["frame_id"], pred["frame_id"])
        np.testing.assert_allclose(meshes["vertices"], expected, atol=1e-6)
        return
    files = sorted(out.glob(f"*.{fmt}"))
    assert [f.name for f in files] == [f"walk_000000_{i:06d}.{fmt}" for i in pred["frame_id"]]
    for path, frame_vertices in zip(files, expected):
        vertices, faces = (_obj_mesh if fmt == "obj" else _ply_mesh)(path)
        assert vertices.shape == (6890, 3)
        np.testing.assert_array_equal(faces, body.faces)
        np.testing.assert_allclose(vertices, frame_vertices, atol=1e-6)


def test_amass_layout(prediction, tmp_path):
    params = _read(_export(prediction, tmp_path, "amass", "--up", "camera") / "walk_000000_poses.npz")
    pred = _read(prediction)
    assert params["poses"].shape == (FRAMES, 72) and params["betas"].shape == (10,)
    np.testing.assert_array_equal(params["trans"], np.zeros((FRAMES, 3)))
    assert float(params["mocap_framerate"]) == 30.0
    assert str(params["gender"]) == "neutral" and str(params["surface_model_type"]) == "smpl"
    np.testing.assert_allclose(params["betas"], pred["betas"].mean(0), atol=1e-7)
    rotations = [axis_angle_to_rotmat(torch.from_numpy(p).double().reshape(-1, 24, 3))
                 for p in (params["poses"], pred["pose"])]
    torch.testing.assert_close(rotations[0], rotations[1], atol=1e-6, rtol=0)
    turned = _read(_export(prediction, tmp_path / "z", "amass") / "walk_000000_poses.npz")
    root = axis_angle_to_rotmat(torch.from_numpy(turned["poses"][:, :3]))
    torch.testing.assert_close(root, upright_rotation("z") @ rotations[1][:, 0], atol=1e-6, rtol=0)


def test_bad_input_is_a_clear_error(prediction, tmp_path, capsys):
    pred = _read(prediction)
    del pred["betas"]
    broken = tmp_path / "broken.npz"
    np.savez(broken, **pred)
    assert main(["export", str(broken), "--format", "bvh", "--out", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "broken.npz" in message and "'betas'" in message
    assert main(["export", str(prediction), "--format", "obj", "--out", str(tmp_path),
                 "--body-model", str(tmp_path / "no_such_model")]) == 2
    assert "no_such_model" in capsys.readouterr().err
