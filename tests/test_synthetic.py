"""The synthetic benchmark: determinism, splits, supervision, corruptions, targets, schema."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.schema import iterate_clips, read_manifest
from datamodules.synthetic import get_preset
from datamodules.synthetic.generate import feature_network, make_split
from datamodules.synthetic.motion import FPS, generate_motion
from datamodules.synthetic.simulated_features import Segment, corrupt, light_level
from str_lightning.app.cli import main
from str_lightning.body import BodyModel
from str_lightning.body.joints import SPIN49
from str_lightning.geometry import axis_angle_to_rotmat

SMALL = get_preset("small")
PLANS = {plan.directory: plan for plan in SMALL.splits}


def _synth(argv: list[str]) -> int:
    return main(["synth", *argv])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "small"
    assert _synth(["--out", str(out), "--preset", "small", "--seed", "0", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def description(dataset) -> dict:
    return json.loads((dataset / "synthetic.json").read_text())


@pytest.fixture(scope="module")
def clips(dataset) -> dict[str, list[dict]]:
    """Every clip of every split, read through the data-core validator."""
    return {name: list(iterate_clips(dataset / name, validate=True)) for name in PLANS}


def _file_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(dataset, tmp_path):
    again = tmp_path / "again"
    assert _synth(["--out", str(again), "--preset", "small", "--seed", "0", "--quiet"]) == 0
    assert _file_digests(again) == _file_digests(dataset)


def test_different_seed_gives_different_data():
    body = BodyModel("mannequin")
    network = feature_network(SMALL)
    first, second = (make_split(PLANS["val"], SMALL, seed, body, network) for seed in (0, 1))
    assert not np.array_equal(first[0].pose, second[0].pose)
    assert not np.array_equal(first[0].features, second[0].features)


def test_existing_output_needs_overwrite(dataset, capsys):
    assert _synth(["--out", str(dataset), "--preset", "small", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_negative_seed_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _synth(["--out", str(tmp_path / "x"), "--preset", "small", "--seed", "-1"])
    assert "expected an integer >= 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_every_split_has_the_planned_videos_clips_and_frames(dataset, description, clips):
    assert set(description["summary"]) == set(PLANS)
    for name, plan in PLANS.items():
        manifest = read_manifest(dataset / name)
        counts = description["summary"][name]
        assert (manifest.dataset, manifest.split) == (plan.dataset, plan.split)
        assert counts["videos"] == plan.videos == len({c["meta"]["video"] for c in clips[name]})
        assert counts["clips"] == manifest.samples == len(clips[name])
        assert counts["frames"] == manifest.frames == sum(len(c["valid"]) for c in clips[name])
        lengths = [len(c["valid"]) for c in clips[name]]
        if plan.chunk_frames is None:
            assert counts["clips"] == plan.videos
            assert all(plan.frames[0] <= n <= plan.frames[1] for n in lengths)
        else:
            assert max(lengths) <= plan.chunk_frames and counts["clips"] > plan.videos
    assert read_manifest(dataset / "train").feature_dim == SMALL.feature_dim
    assert "| `test-dark/` |" in (dataset / "README.md").read_text()


def test_supervision_flags_and_members(clips):
    expected = {
        "train": ({"kp2d": True, "kp3d": True, "smpl": True}, "spin49", "clip"),
        "train-2d": ({"kp2d": True, "kp3d": False, "smpl": False}, "", "clip"),
        "motion": ({"kp2d": False, "kp3d": False, "smpl": True}, "", "motion"),
        "test-dark": ({"kp2d": True, "kp3d": True, "smpl": True}, "common14", "clip"),
    }
    for name, (supervision, joints3d, kind) in expected.items():
        for clip in clips[name]:
            meta = clip["meta"]
            assert (meta["supervision"], meta["joints3d"], meta["kind"]) == \
                (supervision, joints3d, kind)
            assert meta["fps"] == FPS
    assert all("kp3d" not in c and "pose" not in c for c in clips["train-2d"])
    assert all("features" not in c and "kp2d" not in c for c in clips["motion"])
    assert clips["val"][0]["kp3d"].shape[1:] == (14, 3)
    assert clips["train"][0]["kp3d"].shape[1:] == (49, 3)


def test_frame_ids_tile_each_video(clips):
    for name in ("train", "test"):
        by_video: dict[str, list[np.ndarray]] = {}
        for clip in clips[name]:
            assert clip["frame_id"][0] == clip["meta"]["start"]
            by_video.setdefault(clip["meta"]["video"], []).append(clip["frame_id"])
        for ids in by_video.values():
            joined = np.concatenate(ids)
            np.testing.assert_array_equal(joined, np.arange(len(joined)))


def _light(record: dict, frames: int) -> np.ndarray:
    segments = [Segment(s["kind"], s["start"], s["end"], s["level"])
                for s in record["corruptions"] if s["kind"] == "dark"]
    return light_level(frames, segments, SMALL.splits[0].corruption.ramp_frames)


def test_every_test_dark_video_has_long_dark_segments(description):
    settings = PLANS["test-dark"].corruption
    for record in description["videos"]["test-dark"]:
        dark = [s for s in record["corruptions"] if s["kind"] == "dark"]
        assert len(dark) >= settings.dark_count[0] >= 1
        assert all(s["end"] - s["start"] >= settings.dark_frames[0] for s in dark)
        assert all(settings.dark_level[0] <= s["level"] <= settings.dark_level[1] for s in dark)


def test_dark_segments_lower_feature_energy(description, clips):
    records = {r["video"]: r for r in description["videos"]["test-dark"]}
    for clip in clips["test-dark"]:
        features = clip["features"].astype(np.float32)
        light = _light(records[clip["meta"]["video"]], len(features))
        energy = features.mean(axis=1)
        assert energy[light < 0.35].mean() < 0.75 * energy[light == 1].mean()


def test_kp3d_is_the_body_model_of_the_stored_pose_and_shape(clips):
    body = BodyModel("mannequin")
    for name, joint_set in (("train", "spin49"), ("val", "common14")):
        clip = clips[name][0]
        rotmat = axis_angle_to_rotmat(torch.from_numpy(clip["pose"]).view(-1, 24, 3))
        with torch.no_grad():
            out = body(rotmat, torch.from_numpy(clip["shape"]))
            expected = out.joints if joint_set == "spin49" else body.eval_joints(out.vertices)
        np.testing.assert_allclose(clip["kp3d"], expected.numpy(), atol=1e-5)


def test_kp2d_is_a_framing_of_the_3d_joints(clips):
    """Each frame's kp2d is the camera-frame joints' x, y up to scale and shift (the crop camera
    puts the body ~50 m away, so perspective moves points by well under 1e-2), in the crop."""
    for clip in clips["train"]:
        xy, xy3d = clip["kp2d"][..., :2], clip["kp3d"][..., :2]
        assert set(np.unique(clip["kp2d"][..., 2])) <= {0.0, 1.0}
        for frame in range(0, len(xy), 7):
            design = np.concatenate([xy3d[frame].reshape(-1, 1), np.kron(np.ones((49, 1)),
                                                                        np.eye(2))], axis=1)
            fit, *_ = np.linalg.lstsq(design, xy[frame].reshape(-1), rcond=None)
            assert np.abs(design @ fit - xy[frame].reshape(-1)).max() < 1e-2
            assert 0.5 < fit[0] < 2.0
        assert np.abs(xy).max() <= 1.0


def test_people_stand_upright_in_the_camera_frame(clips):
    """y points down in the camera frame: the head is above (smaller y than) the ankles."""
    head, ankles = SPIN49.index("headtop"), [SPIN49.index("lankle"), SPIN49.index("rankle")]
    for clip in clips["train"]:
        joints = clip["kp3d"]
        assert (joints[:, head, 1] < joints[:, ankles, 1].mean(axis=1)).mean() > 0.95


def test_features_are_non_negative_with_the_preset_dim(clips):
    for name in ("train", "train-2d", "test-dark"):
        for clip in clips[name]:
            assert clip["features"].dtype == np.float16
            assert clip["features"].shape[1] == SMALL.feature_dim
            assert clip["features"].min() >= 0


def test_motion_is_deterministic_and_smooth():
    first = generate_motion(np.random.default_rng(3), 120)
    again = generate_motion(np.random.default_rng(3), 120)
    np.testing.assert_array_equal(first.pose, again.pose)
    assert first.pose.shape == (120, 72) and first.pose.dtype == np.float32
    rotmat = axis_angle_to_rotmat(torch.from_numpy(first.pose).view(-1, 24, 3))
    step = torch.linalg.matrix_norm(rotmat[1:] - rotmat[:-1]).max()
    assert step < 0.8  # no jumps: a running knee, the fastest joint, turns < 0.6 rad a frame
    assert first.segments[0][1] == 0 and first.segments[-1][2] == 120


def test_corruptions_follow_their_definitions():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.5, 1.5, size=(40, 8)).astype(np.float32)
    background = np.full(8, 0.1)
    segments = [Segment("dark", 10, 20, 0.1), Segment("occlusion", 25, 30, (2, 3)),
                Segment("blur", 32, 36, 3)]
    out = corrupt(clean, segments, background, noise_std=0.0, rng=rng, ramp_frames=2)
    np.testing.assert_allclose(out[12:18], 0.1 + 0.1 * (clean[12:18] - 0.1), rtol=1e-6)
    assert (out[25:30, 2:5] == 0).all() and (out[25:30, 5:] == clean[25:30, 5:]).all()
    np.testing.assert_allclose(out[33], clean[32:35].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(out[:7], clean[:7])
    light = light_level(40, segments, ramp_frames=2)
    assert light[0] == 1 and light[15] == pytest.approx(0.1) and 0.1 < light[8] < 1
