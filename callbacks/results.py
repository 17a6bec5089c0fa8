"""Per-dataset test results and what was tested, at test end (rank 0 only).

:class:`DatasetResultsTable` writes two files into the run directory, the record that
``str-lightning compare`` reads:

- ``results/test_config.yaml``: the configuration of this test (as the CLI saved it);
- ``results/test_results.csv``: one row per test dataset with the protocol's metrics, the number
  of evaluated frames, the checkpoint the weights came from and its global step (both empty
  when none was loaded), a SHA-256 of the tested weights and the seed of ``seed_everything``.

Both are written by :func:`~str_lightning.reporting.results_files.write_test_record`: a test
that dies half-way leaves no results paired with another test's configuration. The rows are also
logged as a W&B table ``results/test`` when a WandbLogger is attached. A later test of the same
run replaces both files. The CLI adds this callback to every run.
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback

from callbacks.wandb_run import wandb_loggers
from str_lightning.reporting.results_files import (
    metrics_from_keys,
    ordered_metrics,
    write_test_record,
)
from str_lightning.runs.checkpoints import read_checkpoint_meta, weights_digest

SEED_ENV = "PL_GLOBAL_SEED"  # set by Lightning's seed_everything


class DatasetResultsTable(Callback):
    """Write and log the per-dataset test results and their provenance (see module doc)."""

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
        results = metrics_from_keys(logged)
        if not results:
            return
        checkpoint = trainer.ckpt_path
        rows = {name: {**values, "frames": logged.get(f"test/{name}/frames", float("nan"))}
                for name, values in results.items()}
        write_test_record(
            trainer.default_root_dir, rows, tested_config(trainer),
            global_step=read_checkpoint_meta(checkpoint)["global_step"] if checkpoint else "",
            checkpoint=str(Path(checkpoint).absolute()) if checkpoint else "",
            weights_sha256=weights_digest(pl_module.state_dict()),
            seed=os.environ.get(SEED_ENV, ""))
        columns = ["dataset", *ordered_metrics({m for v in rows.values() for m in v})]
        data = [[name, *(values.get(c) for c in columns[1:])] for name, values in rows.items()]
        for logger in wandb_loggers(trainer):
            logger.log_table("results/test", columns=columns, data=data)


def tested_config(trainer: Trainer) -> str:
    """The YAML configuration the CLI saved for this run ("" outside the CLI)."""
    for callback in trainer.callbacks:
        if isinstance(callback, SaveConfigCallback):
            return callback.parser.dump(callback.config, skip_none=False)
    return ""
