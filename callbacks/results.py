"""Per-dataset test results as a table at test end (rank 0 only).

:class:`DatasetResultsTable` writes ``<run dir>/results/test_results.csv`` (one row per test dataset:
the protocol's metrics, the number of evaluated frames, the global step, the checkpoint and the
seed of ``seed_everything``) —
the file ``str-lightning compare`` reads first — and logs the same rows as a W&B table
``results/test`` when a WandbLogger is attached. A later test of the same run overwrites it.
"""

from __future__ import annotations

import os

from lightning.pytorch import Callback, LightningModule, Trainer

from callbacks.wandb_run import wandb_loggers
from str_lightning.reporting.compare import metrics_from_keys, ordered_metrics, write_results_csv
from str_lightning.run_directory import RunDirectory

SEED_ENV = "PL_GLOBAL_SEED"  # set by Lightning's seed_everything


class DatasetResultsTable(Callback):
    """Write and log the per-dataset test results (see module doc)."""

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
        results = metrics_from_keys(logged)
        if not results:
            return
        extra = {"global_step": trainer.global_step, "checkpoint": trainer.ckpt_path or "",
                 "seed": os.environ.get(SEED_ENV, "")}
        rows = {name: {**values, "frames": logged.get(f"test/{name}/frames", float("nan"))}
                for name, values in results.items()}
        write_results_csv(RunDirectory(trainer.default_root_dir).results_csv, rows, extra)
        columns = ["dataset", *ordered_metrics({m for v in rows.values() for m in v})]
        data = [[name, *(values.get(c) for c in columns[1:])] for name, values in rows.items()]
        for logger in wandb_loggers(trainer):
            logger.log_table("results/test", columns=columns, data=data)
