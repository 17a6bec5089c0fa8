"""Prediction files and their writer: format, atomic writes, CLI wiring, DDP exactly once."""

from __future__ import annotations

import numpy as np
import pytest
from cli_runners import run_command
from training_helpers import tiny_config, tiny_run_dir, write_config

from callbacks.prediction_writer import WRITER_CLASS_PATH, add_prediction_writer
from str_lightning.outputs.predictions import (
    PredictionFileError,
    prediction_arrays,
    read_prediction_file,
    write_prediction_file,
)


def _frames(n: int = 4, vertices: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    frames = {"pose": rng.standard_normal((n, 72)), "betas": rng.standard_normal((n, 10)),
              "cam": rng.standard_normal((n, 3)), "joints_spin49": rng.standard_normal((n, 49, 3)),
              "joints_h36m17": rng.standard_normal((n, 17, 3)), "frame_id": np.arange(n)}
    if vertices:
        frames["vertices"] = rng.standard_normal((n, 20, 3))
    return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in frames.items()}


FIELDS = {"dataset": "3dpw", "sequence": "downtown_walking_00__000000", "fps": 30,
          "model": "str_lightning.modules.base.PoseShapeModule", "encoder": "e",
          "body_model": "mannequin", "checkpoint": "/runs/x/best.ckpt"}


def test_written_file_loads_without_pickle_and_round_trips(tmp_path):
    arrays = prediction_arrays(_frames(vertices=True), FIELDS)
    path = write_prediction_file(tmp_path / "d" / "seq.npz", arrays)
    assert sorted(p.name for p in path.parent.iterdir()) == ["seq.npz"]  # no temporary left
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(arrays)
        for name, value in arrays.items():
            np.testing.assert_array_equal(data[name], value)
        assert data["sequence"].dtype.kind == "U" and str(data["sequence"]) == FIELDS["sequence"]
        assert data["fps"].dtype == np.float64 and data["frame_id"].dtype == np.int64
    assert read_prediction_file(path).keys() == arrays.keys()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_prediction_file(tmp_path / "seq.npz", prediction_arrays(_frames(), FIELDS))
    before = path.read_bytes()
    arrays = prediction_arrays(_frames(), FIELDS)
    arrays["frame_id"] = np.array([object()] * 4)  # cannot be written without a pickle
    with pytest.raises(PredictionFileError, match="'frame_id'"):
        write_prediction_file(path, arrays)
    arrays = dict(prediction_arrays(_frames(), FIELDS), extra=np.array([object()]))
    with pytest.raises(PredictionFileError, match="object array"):
        write_prediction_file(path, arrays)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("joints_spin49"), "missing member.*joints_spin49"),
    (lambda a: a.update(cam=a["cam"][:2]), r"'cam': expected shape \(N, 3\) with N = 4.*\(2, 3\)"),
    (lambda a: a.update(vertices=np.zeros((4, 5))), r"'vertices': expected shape \(N, V, 3\)"),
    (lambda a: a.update(format_version=np.asarray(7)), "format_version 7"),
])
def test_a_bad_file_names_its_member(tmp_path, change, message):
    arrays = prediction_arrays(_frames(), FIELDS)
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(PredictionFileError, match=message):
        read_prediction_file(tmp_path / "bad.npz")


def test_cli_adds_a_writer_or_completes_the_configured_one(tmp_path):
    config = {"callbacks": [{"class_path": "x.ModelCheckpoint", "init_args": {}}]}
    add_prediction_writer(config, tmp_path / "p")
    assert config["callbacks"][-1] == {"class_path": WRITER_CLASS_PATH,
                                       "init_args": {"output_dir": str(tmp_path / "p")}}
    configured = {"callbacks": [{"class_path": WRITER_CLASS_PATH, "init_args": {"vertices": True}}]}
    add_prediction_writer(configured, tmp_path / "p")
    assert configured["callbacks"] == [{"class_path": WRITER_CLASS_PATH, "init_args": {
        "vertices": True, "output_dir": str(tmp_path / "p")}}]


@pytest.mark.slow
def test_ddp_writes_every_sequence_once_like_one_process(tiny_shards, tmp_path):
    config = tiny_config(tiny_shards, tmp_path, max_steps=2, steps_per_epoch=2)
    config["data"]["predict_datasets"] = {"toy": str(tiny_shards / "val")}
    path = write_config(config, tmp_path / "c.yaml")
    fit = run_command("fit", "--config", str(path))
    assert fit.returncode == 0, fit.stderr[-3000:]
    predictions = tiny_run_dir(tmp_path) / "predictions" / "toy"
    results = {}
    for name, extra in (("single", []), ("ddp", ["--trainer.strategy=ddp", "--trainer.devices=2"])):
        predict = run_command("predict", "--config", str(path), "--ckpt_path", "best", *extra)
        assert predict.returncode == 0, predict.stderr[-3000:]
        results[name] = {p.name: read_prediction_file(p) for p in sorted(predictions.iterdir())}
        for p in predictions.iterdir():
            p.unlink()
    assert sorted(results["ddp"]) == ["video0__000000.npz", "video1__000000.npz",
                                      "video2__000000.npz"]
    for name, single in results["single"].items():
        np.testing.assert_allclose(results["ddp"][name]["joints_h36m17"], single["joints_h36m17"],
                                   atol=1e-6)
