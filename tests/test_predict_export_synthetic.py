"""On the synthetic test split: fit -> test -> predict -> export through the CLI, and the files
read back (numpy alone for the predictions) give the figures ``test`` logged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pybvh
import pytest
import torch
from training_helpers import tiny_config, tiny_run_dir, write_config

from datamodules.schema import iterate_clips
from str_lightning.app.cli import main
from str_lightning.app.lightning_cli import STRLightningCLI
from str_lightning.body import BodyModel
from str_lightning.body.joints import ROOTS, SMPL24, convert_joints
from str_lightning.evaluation.metrics import PAMPJPE, AccelError
from str_lightning.geometry import axis_angle_to_rotmat
from str_lightning.outputs.exporters import BVH_UNITS_PER_METRE
from str_lightning.runs.directory import RunDirectory

BVH_TOLERANCE_M = 1e-4  # the BVH prints 1e-6 cm and 1e-6 degrees; float32 posing is ~1e-6 m


@pytest.fixture(scope="module")
def run(small_synthetic_benchmark, tmp_path_factory) -> dict:
    """Synthetic small preset, a tiny STR fitted for 4 steps, its test metrics and predictions."""
    root = tmp_path_factory.mktemp("synthetic_predict")
    data = small_synthetic_benchmark
    config = tiny_config(data, root, max_steps=4, steps_per_epoch=2)
    config["model"]["init_args"].update(monitor="val/synthetic/pa_mpjpe", eval_protocols={})
    config["trainer"]["callbacks"][0]["init_args"]["monitor"] = "val/synthetic/pa_mpjpe"
    config["data"].update(
        train_datasets=[{"path": str(data / "train"), "weight": 1.0, "group": "3d"},
                        {"path": str(data / "train-2d"), "weight": 1.0, "group": "2d"}],
        val_datasets={"synthetic": str(data / "val")},
        test_datasets={"synthetic": str(data / "test")},
        predict_datasets={"synthetic": str(data / "test")}, motion_dataset=None)
    path = write_config(config, root / "config.yaml")
    STRLightningCLI(args=["fit", "--config", str(path)])
    test = STRLightningCLI(args=["test", "--config", str(path), "--ckpt_path", "best"])
    logged = {k: float(v) for k, v in test.trainer.callback_metrics.items()}
    STRLightningCLI(args=[
        "predict", "--config", str(path), "--ckpt_path", "best",
        "--trainer.callbacks+=callbacks.prediction_writer.SequencePredictionWriter",
        "--trainer.callbacks.vertices=true"])
    run_dir = tiny_run_dir(root)
    return {"logged": logged, "data": data, "run_dir": run_dir, "root": root, "config": path,
            "files": sorted((run_dir / "predictions" / "synthetic").glob("*.npz"))}


@pytest.fixture(scope="module")
def ground_truth(run) -> dict[str, dict]:
    return {clip["__key__"]: clip for clip in iterate_clips(run["data"] / "test")}


def _read(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:  # allow_pickle=False: plain arrays only
        return {name: data[name] for name in data.files}


def test_one_file_per_test_sequence_with_the_documented_members(run, ground_truth):
    assert [p.stem for p in run["files"]] == sorted(ground_truth)
    for path in run["files"]:
        pred = _read(path)
        clip = ground_truth[str(pred["sequence"])]
        frames = len(clip["valid"])
        assert pred["pose"].shape == (frames, 72) and pred["betas"].shape == (frames, 10)
        assert pred["cam"].shape == (frames, 3) and pred["joints_spin49"].shape == (frames, 49, 3)
        assert pred["joints_h36m17"].shape == (frames, 17, 3)
        assert pred["vertices"].shape == (frames, 6890, 3)
        np.testing.assert_array_equal(pred["frame_id"], clip["frame_id"])
        assert float(pred["fps"]) == clip["meta"]["fps"]
        assert str(pred["dataset"]) == "synthetic"
        assert str(pred["model"]) == "str_lightning.modules.base.PoseShapeModule"
        assert str(pred["encoder"]) == "str_lightning.nets.str.STREncoder"
        assert Path(str(pred["checkpoint"])).name.startswith("best-step")
        assert str(pred["body_model"]) == "mannequin"


def test_metrics_from_the_written_files_equal_the_logged_test_metrics(run, ground_truth):
    """MPJPE by hand with numpy (the synthetic protocol: common-14 from J_regressor_h36m, mid-hip
    root, valid frames pooled); PA-MPJPE and Accel through the metric classes; MPVPE from the
    written meshes against the ground-truth meshes."""
    root = list(ROOTS["common14"])
    errors, vertex_errors = [], []
    pa_mpjpe, accel = PAMPJPE(), AccelError(root=tuple(root))
    body = BodyModel("mannequin")
    for path in run["files"]:
        pred = _read(path)
        clip = ground_truth[str(pred["sequence"])]
        valid = clip["valid"].astype(bool)
        pred14 = convert_joints(pred["joints_h36m17"], "h36m17", "common14").astype(np.float64)
        gt14 = clip["kp3d"].astype(np.float64)  # common14, the split's joints3d
        pred_rel = pred14 - pred14[:, root].mean(1, keepdims=True)
        gt_rel = gt14 - gt14[:, root].mean(1, keepdims=True)
        errors.append(np.linalg.norm(pred_rel - gt_rel, axis=-1).mean(-1)[valid])
        pa_mpjpe.update(torch.from_numpy(pred14), torch.from_numpy(gt14), torch.from_numpy(valid))
        accel.update(torch.from_numpy(pred14), torch.from_numpy(gt14), torch.from_numpy(valid))
        gt_rotmat = axis_angle_to_rotmat(torch.from_numpy(clip["pose"]).reshape(-1, 24, 3))
        with torch.no_grad():
            gt_vertices = body(gt_rotmat, torch.from_numpy(clip["shape"])).vertices.double().numpy()
        vertex_errors.append(np.linalg.norm(pred["vertices"] - gt_vertices, axis=-1).mean(-1)[valid])
    logged = run["logged"]
    assert 1000 * np.concatenate(errors).mean() == pytest.approx(logged["test/synthetic/mpjpe"], abs=1e-3)
    assert float(pa_mpjpe.compute()) == pytest.approx(logged["test/synthetic/pa_mpjpe"], abs=1e-3)
    assert float(accel.compute()) == pytest.approx(logged["test/synthetic/accel"], abs=1e-3)
    assert 1000 * np.concatenate(vertex_errors).mean() == pytest.approx(
        logged["test/synthetic/mpvpe"], abs=1e-3)


def test_predict_says_where_it_wrote_and_files_get_the_mode_of_checkpoints(run, capsys):
    assert main(["predict", "--config", str(run["config"]), "--ckpt_path", "best"]) == 0
    directory = run["run_dir"] / "predictions"
    count = len(run["files"])
    assert (f"predict: wrote {count} prediction file(s) to {directory} (synthetic: {count})"
            in capsys.readouterr().out)
    umask = os.umask(0o022)
    os.umask(umask)
    checkpoints = RunDirectory(run["run_dir"]).checkpoints()
    modes = {stat.S_IMODE(p.stat().st_mode) for p in [*run["files"], *checkpoints]}
    assert modes == {0o666 & ~umask}


def _export(run, fmt: str, *extra: str, files: list[Path] | None = None) -> Path:
    out = run["root"] / "export" / fmt
    paths = map(str, files or run["files"])
    assert main(["export", *paths, "--format", fmt, "--out", str(out), *extra]) == 0
    return out


def test_export_writes_every_format(run):
    frames = {str(_read(p)["sequence"]): len(_read(p)["frame_id"]) for p in run["files"]}
    first = str(_read(run["files"][0])["sequence"])
    for fmt in ("obj", "ply"):  # one sequence: text meshes of every frame take a while
        out = _export(run, fmt, files=run["files"][:1])
        assert len(list(out.glob(f"{first}_*.{fmt}"))) == frames[first]
    meshes = _export(run, "npz")
    amass = _export(run, "amass")
    bvh = _export(run, "bvh")
    for sequence, count in frames.items():
        with np.load(meshes / f"{sequence}_meshes.npz") as data:
            assert data["vertices"].shape == (count, 6890, 3) and data["faces"].shape[1] == 3
        with np.load(amass / f"{sequence}_poses.npz") as data:
            assert data["poses"].shape == (count, 72) and data["trans"].shape == (count, 3)
        assert pybvh.read_bvh_file(bvh / f"{sequence}.bvh").frame_count == count


def test_bvh_re_posed_reproduces_the_smpl_joints_of_the_exported_parameters(run):
    """FK of the BVH (pybvh's, an independent reader) equals SMPL's joints for the exported
    AMASS parameters (mean betas, zero translation, y-up turn of the root) within 0.1 mm."""
    bvh_dir, amass_dir = _export(run, "bvh", "--up", "y"), _export(run, "amass", "--up", "y")
    body = BodyModel("mannequin")
    for path in run["files"]:
        sequence = str(_read(path)["sequence"])
        with np.load(amass_dir / f"{sequence}_poses.npz") as params:
            rotmat = axis_angle_to_rotmat(torch.from_numpy(params["poses"]).reshape(-1, 24, 3))
            betas = torch.from_numpy(params["betas"]).float().expand(len(rotmat), -1)
        with torch.no_grad():
            expected = body(rotmat.float(), betas).smpl_joints.double().numpy()
        animation = pybvh.read_bvh_file(bvh_dir / f"{sequence}.bvh")
        order = [animation.joint_index[name] for name in SMPL24]
        joints = animation.joint_positions(centered="world")[:, order] / BVH_UNITS_PER_METRE
        assert np.abs(joints - expected).max() < BVH_TOLERANCE_M

