"""Prediction-vs-ground-truth pictures: throttled by validation count, not blank, correct curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_runners import run_cli_in_process
from training_helpers import tiny_config, tiny_run_dir, write_config
from wandb_helpers import pixel_spread

from callbacks.visuals import SequenceVisuals, bone_indices, per_frame_acceleration, shown_frames
from str_lightning.evaluation.metrics import AccelError

KINDS = ("accel", "mesh", "skeleton2d", "skeleton3d")


@pytest.fixture(scope="module")
def visual_run(tiny_shards, tmp_path_factory):
    """Two validations (steps 3 and 6), pictures every 2nd: only the first one is drawn."""
    root = tmp_path_factory.mktemp("visuals")
    config = tiny_config(tiny_shards, root, experiment="vis", max_steps=6, logger=True)
    config["trainer"]["callbacks"].append({
        "class_path": "callbacks.visuals.SequenceVisuals",
        "init_args": {"every_n_validations": 2, "num_sequences": 2, "num_frames": 3}})
    config["data"].pop("motion_dataset", None)
    run_cli_in_process("fit", "--config", str(write_config(config, root / "vis.yaml")))
    return tiny_run_dir(root, "vis") / "visuals"


def test_pictures_only_after_every_nth_validation(visual_run):
    assert [p.name for p in visual_run.iterdir()] == ["step0000003"]
    names = sorted(p.name for p in (visual_run / "step0000003").iterdir())
    sequences = sorted({name.rsplit("-", 1)[0] for name in names})
    assert len(sequences) == 2
    assert names == sorted(f"{s}-{kind}.png" for s in sequences for kind in KINDS)


def test_pictures_are_not_blank(visual_run):
    for png in (visual_run / "step0000003").iterdir():
        assert pixel_spread(png) > 0.03, png.name


def test_per_frame_acceleration_error_averages_to_the_accel_metric():
    generator = torch.Generator().manual_seed(0)
    pred, target = (torch.randn(12, 14, 3, generator=generator, dtype=torch.float64) for _ in "ab")
    valid = torch.ones(12, dtype=torch.bool)
    valid[5] = False
    metric = AccelError(root=None)
    metric.update(pred, target, valid)
    per_frame = np.linalg.norm(per_frame_acceleration(pred.numpy(), valid.numpy())
                               - per_frame_acceleration(target.numpy(), valid.numpy()), axis=-1)
    assert np.nanmean(per_frame.mean(-1)) * 1000 == pytest.approx(float(metric.compute()))
    assert np.isnan(per_frame[[0, 4, 5, 6, 11]]).all() and not np.isnan(per_frame[[1, 7]]).any()


def test_shown_frames_are_valid_and_spread():
    valid = np.array([0, 1, 1, 0, 1, 1, 1, 0, 1, 0], bool)
    assert shown_frames(valid, 3).tolist() == [1, 4, 8]  # valid 1,2,4,5,6,8: first, middle, last
    assert shown_frames(valid, 50).tolist() == np.flatnonzero(valid).tolist()


def test_bones_follow_the_joint_set():
    assert len(bone_indices("common14")) == 15
    assert len(bone_indices("spin49")) == 15
    assert len(bone_indices("h36m17")) == 15


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="every_n_validations"):
        SequenceVisuals(every_n_validations=0)
