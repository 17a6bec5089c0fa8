"""Evaluation results on the console: one small table per dataset, in mm with one decimal.

:class:`DatasetMetricsTable` replaces Lightning's end-of-``test``/``validate`` table (one column
per dataloader, raw floats, no units). The CLI adds it to every run and turns Lightning's own
table off (``verbose: false``); the logged values are untouched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn

from str_lightning.evaluation.metrics import METRIC_LABELS, METRIC_UNITS
from str_lightning.reporting.results_files import metrics_from_keys, ordered_metrics


def format_dataset_table(stage: str, dataset: str, metrics: Mapping[str, float],
                         frames: float | None) -> str:
    """One dataset's table: a title line with the frame count, then one metric per row."""
    count = "?" if frames is None or math.isnan(frames) else f"{int(frames):,}"
    labels = {name: METRIC_LABELS.get(name, name) for name in ordered_metrics(list(metrics))}
    width = max(len(label) for label in labels.values())
    lines = [f"{stage} · {dataset} · {count} frames"]
    for name, label in labels.items():
        lines.append(f"  {label:<{width}}  {metrics[name]:8.1f} {METRIC_UNITS.get(name, '')}".rstrip())
    return "\n".join(lines)


def format_results(stage: str, logged: Mapping[str, float]) -> str:
    """The tables of every dataset in ``logged`` (keys ``<stage>/<dataset>/<metric>``), or ""."""
    tables = [format_dataset_table(stage, dataset, metrics, logged.get(f"{stage}/{dataset}/frames"))
              for dataset, metrics in metrics_from_keys(logged, stage).items()]
    return "\n\n".join(tables)


class DatasetMetricsTable(Callback):
    """Print the per-dataset tables at the end of ``test`` and of a stand-alone ``validate``
    (rank 0 only; validation inside ``fit`` shows the monitored metric in the progress bar)."""

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._print(trainer, "test")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:
            self._print(trainer, "val")

    @staticmethod
    def _print(trainer: Trainer, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        text = format_results(stage, {k: float(v) for k, v in trainer.callback_metrics.items()})
        if text:
            print(f"\n{text}\n")
