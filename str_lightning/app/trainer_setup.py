"""What a run's trainer gets beyond its config file, in one place: :func:`complete_trainer`.

The config names the trainer's own callbacks (``configs/trainer/checkpoints.yaml``: the best and
the latest checkpoint, the learning rate) and its logger; LightningCLI adds the callback that
saves the config and fills the W&B run's provenance (:class:`callbacks.wandb_run.WandbRunInfo`,
given to it as ``save_config_callback``). Everything else is added here, to the parsed config
before anything is built, each entry only when the config does not already name its class (so a
run's saved ``cli_config.yaml`` given back as ``--config`` adds nothing twice).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callbacks.prediction_writer import add_prediction_writer
from callbacks.preemption import preemption_additions
from callbacks.wandb_run import fill_wandb_init_args, is_wandb_logger_config
from str_lightning.app.quiet import silence_wandb_notices
from str_lightning.runs.checkpoint_io import CLASS_PATH as CHECKPOINT_IO_CLASS_PATH
from str_lightning.runs.directory import RunDirectory

# every sub-command: the per-dataset console tables and the test's record
RESULT_CALLBACKS = ("callbacks.console.DatasetMetricsTable", "callbacks.results.DatasetResultsTable")


def complete_trainer(trainer: Any, subcommand: str | None, run: Any, seed: int, run_dir: Path,
                     ckpt_path: str | None) -> None:
    """Give the trainer config of ``subcommand`` (None: a bare ``LightningCLI`` run, as ``fit``)
    its run directory and add, unless configured:

    - the run directory as ``default_root_dir`` and as every ModelCheckpoint's ``dirpath``;
    - the console tables and the test's record (:data:`RESULT_CALLBACKS`);
    - atomic checkpoint writes (:class:`~str_lightning.runs.checkpoint_io.AtomicCheckpointIO`,
      which also keeps ``last.ckpt``; told the checkpoint a ``fit`` resumes from);
    - ``fit``: the preemption callback, and Lightning's SLURM environment under SLURM;
    - ``predict``: the prediction writer into the run's ``predictions/``;
    - the loggers' ``save_dir`` (``.`` means the run directory) and the W&B run's names.
    """
    fitting = subcommand in (None, "fit")
    trainer["default_root_dir"] = str(run_dir)
    for callback in _entries(trainer, "callbacks"):
        if str(_class_path(callback)).endswith("ModelCheckpoint") and not callback["init_args"].get("dirpath"):
            callback["init_args"]["dirpath"] = str(RunDirectory(run_dir).checkpoint_dir)
    _add(trainer, "callbacks", [{"class_path": path, "init_args": {}} for path in RESULT_CALLBACKS])
    _add(trainer, "plugins", [{"class_path": CHECKPOINT_IO_CLASS_PATH, "init_args": {
        "run_dir": str(run_dir), "resumed_from": ckpt_path if fitting else None}}], "CheckpointIO")
    if fitting:
        callbacks, plugins = preemption_additions(trainer)
        _add(trainer, "callbacks", callbacks)
        _add(trainer, "plugins", plugins)
    if subcommand == "predict":
        add_prediction_writer(trainer, RunDirectory(run_dir).predictions_dir)
    _configure_loggers(trainer.get("logger"), run, seed, run_dir, subcommand)


def _entries(trainer: Any, key: str) -> list:
    existing = trainer.get(key)
    return [] if existing is None else existing if isinstance(existing, list) else [existing]


def _class_path(entry: Any) -> str:
    return entry.get("class_path", "") if hasattr(entry, "get") else type(entry).__name__


def _add(trainer: Any, key: str, entries: list[dict], same_kind: str | None = None) -> None:
    """Append the entries whose class (or, given ``same_kind``, a class whose name contains it)
    the config does not name yet."""
    present = [str(_class_path(entry)) for entry in _entries(trainer, key)]
    new = [entry for entry in entries
           if not any((same_kind or entry["class_path"].rsplit(".", 1)[-1]) in path for path in present)]
    if new:
        trainer[key] = [*_entries(trainer, key), *new]


def _configure_loggers(logger: Any, run: Any, seed: int, run_dir: Path, subcommand: str | None) -> None:
    """``save_dir: .`` means the run directory; W&B loggers get project, name, group, job type."""
    for entry in logger if isinstance(logger, list) else [logger]:
        init_args = getattr(entry, "init_args", None)
        if init_args is not None and init_args.get("save_dir") in (None, "."):
            init_args["save_dir"] = str(run_dir)
        if is_wandb_logger_config(entry):
            silence_wandb_notices()
            fill_wandb_init_args(init_args, run, seed, subcommand)
