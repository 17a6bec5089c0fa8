"""Tiny CLI runs with the W&B logger and the reporting callbacks, for the W&B/compare/visual tests."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import yaml
from cli_runners import run_cli_in_process
from training_helpers import tiny_config, write_config

from callbacks.wandb_run import finish_wandb
from str_lightning.app.lightning_cli import STRLightningCLI

REPO = Path(__file__).resolve().parents[1]


def wandb_logger_config(**init_args) -> dict:
    """``configs/logger/wandb_offline.yaml`` with some ``init_args`` set."""
    config = yaml.safe_load((REPO / "configs" / "logger" / "wandb_offline.yaml").read_text())
    config["init_args"].update(init_args)
    return config


def reporting_config(shards: Path, run_root: Path, experiment: str, logger: dict | list | bool,
                     visuals: dict | None = None, seed_everything: int | None = None,
                     trainer: dict | None = None, max_steps: int = 3, steps_per_epoch: int = 3,
                     **encoder_args) -> Path:
    """A tiny STR config with ``logger``, the results-table (and optionally visuals) callback,
    optionally a seed and other ``trainer`` settings."""
    config = tiny_config(shards, run_root, experiment=experiment, max_steps=max_steps,
                         steps_per_epoch=steps_per_epoch)
    if seed_everything is not None:
        config["seed_everything"] = seed_everything
    config["trainer"].update(trainer or {})
    config["trainer"]["logger"] = logger
    config["trainer"]["callbacks"].append({"class_path": "callbacks.results.DatasetResultsTable"})
    if visuals is not None:
        config["trainer"]["callbacks"].append({"class_path": "callbacks.visuals.SequenceVisuals",
                                               "init_args": visuals})
    config["model"]["init_args"]["encoder"]["init_args"].update(encoder_args)
    config["data"].pop("motion_dataset", None)
    return write_config(config, run_root / f"{experiment}.yaml")


def run_cli_in_process_with_wandb(*args: str) -> tuple[STRLightningCLI, str]:
    """:func:`cli_runners.run_cli_in_process`, then the W&B run finished as the command's exit
    finishes it (so the next run starts its own); returns the CLI and what it printed."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            cli = run_cli_in_process(*args)
    finally:
        finish_wandb()
    return cli, printed.getvalue()


def pixel_spread(png: Path) -> float:
    """Standard deviation of a PNG's RGB values in [0, 1] (about 0 for a blank picture)."""
    from matplotlib.image import imread

    return float(np.asarray(imread(png))[..., :3].std())
