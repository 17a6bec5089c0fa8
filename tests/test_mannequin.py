"""The procedural mannequin: SMPL layout, a sound closed surface, human proportions, landmarks,
skinning through smplx, joint regressors and determinism."""

from __future__ import annotations

import contextlib
import hashlib
import io
import math

import matplotlib.image
import numpy as np
import pytest
import smplx
import torch
from smplx.utils import Struct

from str_lightning.body.joints import EXTRA9, H36M17, SMPL24, SMPL_PARENTS
from str_lightning.body.mannequin import (
    REST_POINTS,
    SMPLX_VERTEX_IDS,
    _cached_files,
    build_mannequin,
    write_mannequin,
)
from str_lightning.body.render import render_views
from str_lightning.body.sources import load_body_files

LEFT_ARM_JOINTS = ("left_shoulder", "left_elbow", "left_wrist", "left_hand")


@pytest.fixture(scope="module")
def files():
    return build_mannequin()


@pytest.fixture(scope="module")
def smpl(files, tmp_path_factory):
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.SMPL(model_path=str(tmp_path_factory.mktemp("smpl")),
                          data_struct=Struct(**files.smpl), create_transl=False)


def _forward(smpl, betas=None, pose: dict[str, tuple[float, float, float]] | None = None):
    body_pose = torch.zeros(1, 69)
    for name, axis_angle in (pose or {}).items():
        i = SMPL24.index(name) - 1
        body_pose[0, 3 * i: 3 * i + 3] = torch.tensor(axis_angle)
    betas = torch.zeros(1, 10) if betas is None else torch.as_tensor(betas, dtype=torch.float32)[None]
    with torch.no_grad():
        out = smpl(betas=betas, body_pose=body_pose, global_orient=torch.zeros(1, 3))
    return out.vertices[0].numpy().astype(np.float64), out.joints[0, :24].numpy().astype(np.float64)


def _winding_number(vertices: np.ndarray, faces: np.ndarray, point: np.ndarray) -> float:
    """Generalised winding number (van Oosterom-Strackee solid angles): 1 inside, 0 outside."""
    a, b, c = (vertices[faces[:, k]] - point for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
    numerator = np.einsum("ij,ij->i", a, np.cross(b, c))
    denominator = la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + \
        np.einsum("ij,ij->i", a, c) * lb + np.einsum("ij,ij->i", b, c) * la
    return float(2.0 * np.arctan2(numerator, denominator).sum() / (4.0 * math.pi))


def test_arrays_have_the_smpl_layout(files):
    expected = {
        "v_template": (6890, 3), "f": (13776, 3), "kintree_table": (2, 24), "weights": (6890, 24),
        "J_regressor": (24, 6890), "shapedirs": (6890, 3, 10), "posedirs": (6890, 3, 207),
    }
    assert {k: v.shape for k, v in files.smpl.items()} == expected
    assert files.j_regressor_extra.shape == (9, 6890)
    assert files.j_regressor_h36m.shape == (17, 6890)
    assert {k: v.shape for k, v in files.mean_params.items()} == {
        "pose": (144,), "shape": (10,), "cam": (3,)}
    kintree = files.smpl["kintree_table"]
    assert kintree[0, 0] == 4294967295
    assert tuple(kintree[0, 1:]) == SMPL_PARENTS[1:]
    assert tuple(kintree[1]) == tuple(range(24))
    assert not np.any(files.smpl["posedirs"])
    for array in (*files.smpl.values(), files.j_regressor_extra, files.j_regressor_h36m):
        assert np.all(np.isfinite(array))


def test_cached_arrays_are_read_only(files):
    with pytest.raises(ValueError):
        files.smpl["v_template"][0, 0] = 1.0


def test_mean_pose_is_six_d_of_proper_rotations(files):
    six_d = files.mean_params["pose"].reshape(24, 3, 2)  # R[:, :2] read row-major
    gram = np.einsum("jrc,jrd->jcd", six_d, six_d)
    assert np.allclose(gram, np.eye(2), atol=1e-9)
    assert np.allclose(six_d[0], np.array([[1, 0], [0, -1], [0, 0]]), atol=1e-9)  # pi about x
    assert np.allclose(six_d[SMPL24.index("spine1")], np.eye(3)[:, :2])


def test_surface_is_closed_oriented_genus_zero(files):
    faces, vertices = files.smpl["f"], files.smpl["v_template"]
    directed = np.stack((faces, np.roll(faces, -1, axis=1)), -1).reshape(-1, 2)
    assert len(np.unique(directed, axis=0)) == len(directed)  # consistent orientation
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert np.all(counts == 2)  # closed, every edge between exactly two faces
    assert np.array_equal(np.unique(faces), np.arange(6890))
    labels = np.arange(6890)  # connected: propagate the smallest label along edges
    while True:
        smallest = np.minimum(labels[undirected[:, 0]], labels[undirected[:, 1]])
        updated = labels.copy()
        np.minimum.at(updated, undirected[:, 0], smallest)
        np.minimum.at(updated, undirected[:, 1], smallest)
        if np.array_equal(updated, labels):
            break
        labels = updated
    assert np.all(labels == 0)
    assert 6890 - len(undirected) + len(faces) == 2  # Euler characteristic of a sphere
    corners = vertices[faces]
    volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6
    assert 0.045 < volume < 0.09  # outward normals; a 1.7 m adult is ~0.06-0.08 m^3


def test_weights_and_regressors_are_convex_combinations(files):
    weights = files.smpl["weights"]
    assert weights.min() >= 0.0 and np.allclose(weights.sum(1), 1.0)
    for regressor in (files.smpl["J_regressor"], files.j_regressor_extra, files.j_regressor_h36m):
        assert regressor.min() >= 0.0 and np.allclose(regressor.sum(1), 1.0)
        assert np.all((regressor > 1e-4).sum(1) >= 10)  # spread over a patch, not one vertex


def test_skinning_blends_across_joints(files):
    weights, vertices = files.smpl["weights"], files.smpl["v_template"]
    elbow = REST_POINTS["left_elbow"]
    near_elbow = np.linalg.norm(vertices - elbow, axis=1) < 0.06
    shared = weights[near_elbow][:, [SMPL24.index("left_shoulder"), SMPL24.index("left_elbow")]]
    assert np.any((shared[:, 0] > 0.2) & (shared[:, 1] > 0.2))  # a blend, not a hard cut
    faces = files.smpl["f"]
    edge_jump = np.abs(weights[faces[:, 0]] - weights[faces[:, 1]]).max()
    assert edge_jump < 0.6  # neighbours share most of their weights


def test_rest_height_and_orientation(files):
    vertices = files.smpl["v_template"]
    height = np.ptp(vertices[:, 1])
    assert 1.6 < height < 1.8
    joints = files.smpl["J_regressor"] @ vertices
    assert np.allclose(joints[0], 0.0, atol=1e-6)  # the pelvis is the origin
    for name in ("left_hip", "left_shoulder", "left_hand", "left_ankle"):
        assert joints[SMPL24.index(name), 0] > 0.05
        assert joints[SMPL24.index(name.replace("left", "right")), 0] < -0.05
    head = joints[SMPL24.index("smpl_head")]
    nose = vertices[SMPLX_VERTEX_IDS["nose"]]
    assert nose[2] > head[2] + 0.07
    hand, shoulder = joints[SMPL24.index("left_hand")], joints[SMPL24.index("left_shoulder")]
    assert abs(hand[1] - shoulder[1]) < 0.05 and hand[0] - shoulder[0] > 0.5  # T-pose


def test_rest_joints_are_the_intended_points(files):
    vertices = files.smpl["v_template"]
    for regressor, names in ((files.smpl["J_regressor"], SMPL24),
                             (files.j_regressor_extra, EXTRA9), (files.j_regressor_h36m, H36M17)):
        expected = np.stack([REST_POINTS[name] for name in names])
        assert np.abs(regressor @ vertices - expected).max() < 1e-6


def test_regressed_joints_lie_inside_the_body(files):
    vertices, faces = files.smpl["v_template"], files.smpl["f"]
    for regressor in (files.smpl["J_regressor"], files.j_regressor_extra, files.j_regressor_h36m):
        for joint in regressor @ vertices:
            assert _winding_number(vertices, faces, joint) == pytest.approx(1.0, abs=1e-6)
    outside = vertices.max(0) + 0.1
    assert _winding_number(vertices, faces, outside) == pytest.approx(0.0, abs=1e-6)


def test_h36m_joints_match_the_smpl_joints(files):
    vertices = files.smpl["v_template"]
    h36m = files.j_regressor_h36m @ vertices
    smpl = files.smpl["J_regressor"] @ vertices
    for side, prefix in (("l", "left_"), ("r", "right_")):
        for part, smpl_part in (("hip", "hip"), ("knee", "knee"), ("ankle", "ankle"),
                                ("shoulder", "shoulder"), ("elbow", "elbow"), ("wrist", "wrist")):
            distance = np.linalg.norm(h36m[H36M17.index(side + part)]
                                      - smpl[SMPL24.index(prefix + smpl_part)])
            assert distance < 0.05, (side + part, distance)
    headtop = h36m[H36M17.index("headtop")]
    assert vertices[:, 1].max() - 0.04 < headtop[1] < vertices[:, 1].max()
    assert np.linalg.norm(h36m[H36M17.index("hip")] - smpl[0]) < 0.05


def test_face_landmarks(files):
    v = files.smpl["v_template"]
    head = REST_POINTS["head_h36m"]
    nose, leye, reye, lear, rear = (v[SMPLX_VERTEX_IDS[k]] for k in ("nose", "leye", "reye",
                                                                      "lear", "rear"))
    head_region = v[(v[:, 1] > 0.6) & (np.abs(v[:, 0]) < 0.12)]
    assert nose[2] >= head_region[:, 2].max() - 0.005  # the most forward point of the head
    assert abs(nose[0]) < 0.01
    for eye, sign in ((leye, 1), (reye, -1)):
        assert sign * eye[0] > 0.015 and eye[2] > head[2] + 0.05 and eye[1] > nose[1]
    for ear, sign in ((lear, 1), (rear, -1)):
        assert sign * ear[0] > 0.07 and abs(ear[2] - head[2]) < 0.03 and abs(ear[1] - head[1]) < 0.04


def test_foot_landmarks(files):
    v = files.smpl["v_template"]
    sole = v[:, 1].min()
    for side, prefix, sign in (("L", "left_", 1), ("R", "right_", -1)):
        ankle = REST_POINTS[prefix + "ankle"]
        big, small, heel = (v[SMPLX_VERTEX_IDS[side + k]] for k in ("BigToe", "SmallToe", "Heel"))
        for toe in (big, small):
            assert toe[2] > ankle[2] + 0.12 and toe[1] < sole + 0.03 and sign * toe[0] > 0.03
        assert sign * (small[0] - big[0]) > 0.02  # the big toe is on the inner side
        assert heel[2] < ankle[2] - 0.04 and heel[1] < sole + 0.02
        assert abs(heel[0] - ankle[0]) < 0.03


def test_finger_tip_landmarks(files):
    v = files.smpl["v_template"]
    for side, prefix, sign in (("l", "left_", 1), ("r", "right_", -1)):
        wrist = REST_POINTS[prefix + "wrist"]
        tips = np.stack([v[SMPLX_VERTEX_IDS[side + k]]
                         for k in ("thumb", "index", "middle", "ring", "pinky")])
        assert np.all(sign * (tips[:, 0] - wrist[0]) > 0.08)  # beyond the wrist, on this hand
        assert np.all(np.abs(tips[:, 1] - wrist[1]) < 0.04)
        assert np.all(np.diff(tips[:, 2]) < 0)  # thumb at the front (+z) ... pinky at the back
        assert sign * (tips[2, 0] - tips[0, 0]) > 0.03  # the thumb tip is short of the middle


def test_smplx_reproduces_the_rest_pose(files, smpl):
    vertices, joints = _forward(smpl)
    assert np.abs(vertices - files.smpl["v_template"]).max() < 1e-5
    expected = np.stack([REST_POINTS[name] for name in SMPL24])
    assert np.abs(joints - expected).max() < 1e-5


def test_bending_the_left_elbow_moves_only_the_left_forearm(files, smpl):
    rest, _ = _forward(smpl)
    bent, joints = _forward(smpl, pose={"left_elbow": (0.0, -math.pi / 2, 0.0)})
    assert np.all(np.isfinite(bent))
    moved = np.linalg.norm(bent - rest, axis=1)
    x = rest[:, 0]
    elbow_x = REST_POINTS["left_elbow"][0]
    forearm = (x > elbow_x + 0.08) & (rest[:, 1] > 0.3)
    assert moved[forearm].min() > 0.05
    assert moved[x < 0.3].max() < 1e-6  # torso, right arm, legs untouched
    hand = joints[SMPL24.index("left_hand")]
    assert hand[2] > 0.25 and abs(hand[0] - elbow_x) < 0.03  # the forearm now points forward
    edge = files.smpl["f"][:, :2]
    stretch = np.linalg.norm(bent[edge[:, 0]] - bent[edge[:, 1]], axis=1) / \
        np.linalg.norm(rest[edge[:, 0]] - rest[edge[:, 1]], axis=1)
    assert stretch.max() < 3.0  # bends without tearing


def test_betas_change_height_and_girth(files, smpl):
    heights, girths = [], []
    for value in (-2.0, -1.0, 0.0, 1.0, 2.0):
        betas = np.zeros(10)
        betas[0] = value
        vertices, _ = _forward(smpl, betas)
        heights.append(np.ptp(vertices[:, 1]))
        betas = np.zeros(10)
        betas[1] = value
        vertices, _ = _forward(smpl, betas)
        waist = vertices[(np.abs(vertices[:, 1] - 0.12) < 0.02) & (np.abs(vertices[:, 0]) < 0.2)]
        girths.append(np.ptp(waist[:, 0]) + np.ptp(waist[:, 2]))
    assert np.all(np.diff(heights) > 0.02) and np.all(np.diff(heights) < 0.08)
    assert np.all(np.diff(girths) > 0.01)
    shapedirs, faces, rest = files.smpl["shapedirs"], files.smpl["f"], files.smpl["v_template"]
    edge_length = np.linalg.norm(rest[faces[:, 0]] - rest[faces[:, 1]], axis=1)
    for k in range(10):
        displacement = np.linalg.norm(shapedirs[:, :, k], axis=1)
        assert 0.01 < displacement.max() < 0.08, k  # a few centimetres per unit beta
        jump = np.linalg.norm(shapedirs[faces[:, 0], :, k] - shapedirs[faces[:, 1], :, k], axis=1)
        assert (jump / edge_length).max() < 0.5, k  # smooth: neighbours move alike


def test_build_is_deterministic(tmp_path):
    first, second = _cached_files.__wrapped__(), _cached_files.__wrapped__()

    def digest(files) -> str:
        arrays = {**files.smpl, "extra": files.j_regressor_extra, "h36m": files.j_regressor_h36m,
                  **files.mean_params}
        sha = hashlib.sha256()
        for name in sorted(arrays):
            sha.update(name.encode() + arrays[name].tobytes())
        return sha.hexdigest()

    assert digest(first) == digest(second)
    paths_a = write_mannequin(tmp_path / "a")
    paths_b = write_mannequin(tmp_path / "b")
    assert [p.name for p in paths_a] == ["SMPL_NEUTRAL.npz", "J_regressor_extra.npy",
                                         "J_regressor_h36m.npy", "smpl_mean_params.npz"]
    for a, b in zip(paths_a, paths_b):
        assert a.read_bytes() == b.read_bytes()


def test_written_files_load_as_an_smpl_directory(tmp_path, files):
    write_mannequin(tmp_path)
    loaded = load_body_files(tmp_path)
    for key, array in files.smpl.items():
        assert np.array_equal(loaded.smpl[key], array), key
    assert np.array_equal(loaded.j_regressor_h36m, files.j_regressor_h36m)
    assert np.array_equal(loaded.mean_params["pose"], files.mean_params["pose"])


def test_render_views_draws_the_body(tmp_path, files):
    out = render_views([files.smpl["v_template"]], files.smpl["f"], ["rest"], tmp_path / "m.png",
                       views=("front",))
    image = matplotlib.image.imread(out)[..., :3]
    assert (image.mean(-1) < 0.9).mean() > 0.02  # the body covers part of the panel
    with pytest.raises(ValueError, match="titles"):
        render_views([files.smpl["v_template"]], files.smpl["f"], [], tmp_path / "x.png")
