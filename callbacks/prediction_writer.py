"""Write ``str-lightning predict``'s per-sequence results to disk as they are computed.

:class:`SequencePredictionWriter` writes what ``PoseShapeModule.predict_step`` returns for one
sequence to ``<output_dir>/<dataset>/<sequence>.npz`` (the format of
:mod:`str_lightning.outputs.predictions`, docs/predictions.md). Under DDP each sequence belongs to
exactly one rank (the evaluation loaders' plan) and that rank writes it, so every file is
written once; padding items (``predict_step`` returns None) write nothing. Files are written
atomically, so an interrupted run leaves no partial file and a rerun overwrites.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from str_lightning.outputs.predictions import FRAME_ARRAYS, prediction_arrays, write_prediction_file


class SequencePredictionWriter(BasePredictionWriter):
    """One prediction file per sequence (see module doc).

    Args:
        output_dir: where the ``<dataset>/<sequence>.npz`` files go; the CLI sets it to
            ``<run dir>/predictions`` when left empty.
        vertices: also write the posed mesh ``(N, V, 3)`` (about 83 kB per frame for SMPL).
    """

    def __init__(self, output_dir: str | None = None, vertices: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.vertices = vertices
        self.written: Counter[str] = Counter()  # files per dataset, on this rank

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.written.clear()

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Say where the files went and how many (all ranks together), on rank 0."""
        datasets = list(getattr(trainer.datamodule, "predict_datasets", None) or self.written)
        counts = torch.tensor([self.written[name] for name in datasets], dtype=torch.int64,
                              device=trainer.strategy.root_device)
        counts = trainer.strategy.reduce(counts, reduce_op="sum").tolist() if datasets else []
        if trainer.is_global_zero:
            each = ", ".join(f"{name}: {count}" for name, count in zip(datasets, counts))
            print(f"predict: wrote {sum(counts)} prediction file(s) to {self.output_dir}"
                  + (f" ({each})" if each else ""))

    def write_on_batch_end(self, trainer: Trainer, pl_module: LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        if prediction is None:
            return
        if not self.output_dir:
            raise ValueError("SequencePredictionWriter: output_dir is not set (the str-lightning "
                             "CLI sets it to <run dir>/predictions)")
        names = [*FRAME_ARRAYS, *(["vertices"] if self.vertices else [])]
        fields = {
            "dataset": prediction["dataset"], "sequence": prediction["sequence"],
            "fps": prediction["fps"], "model": _class_path(pl_module),
            "encoder": _class_path(pl_module.encoder),
            "body_model": pl_module.hparams.get("body_model", ""),
            "checkpoint": trainer.ckpt_path or "",
        }
        arrays = prediction_arrays({name: prediction[name] for name in names}, fields)
        path = Path(self.output_dir) / _file_name(prediction["dataset"]) / (
            _file_name(prediction["sequence"]) + ".npz")
        write_prediction_file(path, arrays)
        self.written[prediction["dataset"]] += 1


def _class_path(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _file_name(name: str) -> str:
    """``name`` as one path component (sample keys are already safe; dataset names may not be)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    if not safe:
        raise ValueError(f"cannot make a file name of {name!r}")
    return safe


WRITER_CLASS_PATH = f"{__name__}.{SequencePredictionWriter.__qualname__}"


def add_prediction_writer(trainer_config: Any, output_dir: Path) -> None:
    """What the CLI does to a ``predict`` trainer config: give a configured
    :class:`SequencePredictionWriter` without ``output_dir`` the run's ``predictions/``, or add
    one writing there when none is configured."""
    callbacks = trainer_config.get("callbacks") or []
    writers = [c for c in callbacks
               if hasattr(c, "get") and str(c.get("class_path", "")).endswith("SequencePredictionWriter")]
    for writer in writers:
        if not writer["init_args"].get("output_dir"):
            writer["init_args"]["output_dir"] = str(output_dir)
    if not writers:
        trainer_config["callbacks"] = [*callbacks, {"class_path": WRITER_CLASS_PATH,
                                                    "init_args": {"output_dir": str(output_dir)}}]
