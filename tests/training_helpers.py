"""Tiny shards and tiny configs for end-to-end runs of the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from data_helpers import write_split
from lightning.pytorch import Callback, LightningModule, Trainer

ENCODERS = {
    "str": ("str_lightning.modules.PoseShapeModule", "str_lightning.nets.STREncoder",
            {"hidden_size": 8, "num_layers": 1, "integration_hidden_size": 8}),
    "tcmr": ("str_lightning.modules.PoseShapeModule", "str_lightning.nets.TCMREncoder",
             {"hidden_size": 8, "num_layers": 1, "attention_hidden_size": 8}),
    "vibe": ("str_lightning.modules.VIBEModule", "str_lightning.nets.VIBEEncoder",
             {"hidden_size": 8, "num_layers": 1}),
    "single_frame": ("str_lightning.modules.PoseShapeModule", "str_lightning.nets.SingleFrameEncoder",
                     {"hidden_size": 8}),
}


def write_tiny_shards(root: Path) -> Path:
    """Train (spin49 + SMPL), 2D-only train and a validation split (common14 + SMPL)."""
    write_split(root / "train", [40, 33, 50, 20], kp3d="spin49", split="train")
    write_split(root / "train2d", [30, 25], kp3d="", smpl=False, split="train")
    write_split(root / "val", [21, 5, 30], kp3d="common14", split="val")
    return root


def tiny_config(shards: Path, run_root: Path, variant: str = "str", experiment: str = "run",
                max_steps: int = 3, steps_per_epoch: int = 3, every_n_steps: int | None = None,
                logger: bool = False) -> dict:
    """A complete fit/test config for a model small enough to train in seconds."""
    module, encoder, encoder_args = ENCODERS[variant]
    model_args = {
        "encoder": {"class_path": encoder, "init_args": dict(encoder_args)},  # a copy: callers edit it
        "regressor_hidden_size": 16,
        "monitor": "val/toy/pa_mpjpe",
        "eval_protocols": {"toy": "synthetic"},
        "allow_mannequin_on_real_data": True,  # random toy shards, not the synthetic benchmark
    }
    if variant == "vibe":
        model_args.update(discriminator_hidden_size=8, discriminator_attention_size=8)
    best = {"monitor": "val/toy/pa_mpjpe", "mode": "min", "save_top_k": 1,
            "filename": "best-step{step:07d}", "auto_insert_metric_name": False}
    latest = {"save_top_k": 1, "filename": "step{step:07d}",
              "auto_insert_metric_name": False}
    if every_n_steps:
        latest.update(every_n_train_steps=every_n_steps, save_top_k=-1)
    return {
        "run": {"root": str(run_root), "project": "tiny", "experiment": experiment},
        "trainer": {
            "accelerator": "cpu", "devices": 1, "max_steps": max_steps, "max_epochs": 1000,
            "use_distributed_sampler": False, "num_sanity_val_steps": 0,
            "enable_progress_bar": False, "enable_model_summary": False,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                       "init_args": {"save_dir": ".", "name": "csv"}} if logger else False,
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                           "init_args": args} for args in (best, latest)],
        },
        "model": {"class_path": module, "init_args": model_args},
        "data": {
            "train_datasets": [{"path": str(shards / "train"), "weight": 1.0, "group": "3d"},
                               {"path": str(shards / "train2d"), "weight": 1.0, "group": "2d"}],
            "val_datasets": {"toy": str(shards / "val")},
            "test_datasets": {"toy": str(shards / "val")},
            "motion_dataset": str(shards / "train"),
            "seq_len": 8, "batch_size": 4, "steps_per_epoch": steps_per_epoch, "num_workers": 0,
        },
    }


def tiny_run_dir(run_root: Path, experiment: str = "run", seed: int = 0) -> Path:
    """Where the CLI puts a :func:`tiny_config` run: ``<root>/<project>/<experiment>/seed<N>``."""
    return run_root / "tiny" / experiment / f"seed{seed}"


def write_config(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class BatchFingerprints(Callback):
    """Records, per global step, a fingerprint of the training batch (the sum of its features
    in float64): two runs trained on the same batches in the same order record the same."""

    def __init__(self) -> None:
        self.by_step: dict[int, float] = {}

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.by_step[trainer.global_step] = float(batch["features"].double().sum())


def batch_fingerprints(cli: Any) -> dict[int, float]:
    """What the :class:`BatchFingerprints` callback of a CLI run recorded."""
    (recorder,) = [c for c in cli.trainer.callbacks if isinstance(c, BatchFingerprints)]
    return recorder.by_step
