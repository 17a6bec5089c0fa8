"""W&B run bookkeeping for the CLI: names, provenance, best-value summaries, finishing.

Offline first: ``configs/logger/wandb_offline.yaml`` writes the run under
``<run dir>/wandb/offline-run-*``; ``slurm/sync_wandb.sh`` uploads it later. Every CLI run is its
own W&B run named ``<experiment>-seed<N>-<sub-command>`` (``str_full-seed1-fit``), with job type
the sub-command and group ``<project>/<experiment>``: the seeds of one configuration form one
group, so W&B's grouping shows their mean and spread. Offline runs cannot be resumed, so every
SLURM segment is its own W&B run, its name suffixed ``-r<restart count>``.

:class:`WandbRunInfo` replaces LightningCLI's ``SaveConfigCallback``: besides writing
``cli_config.yaml`` into the run directory it records, once and from rank 0 only, the resolved
config, the git commit, package versions, the sha256 of every configured split's
``manifest.json`` and the SLURM ids in the run's W&B config (with the ``seed`` at its top level),
and summarises every validation and test error and every training loss by its ``min`` (the best:
all are errors) and its ``last`` value.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

RESTART_COUNT_ENV = "SLURM_RESTART_COUNT"
SLURM_ENV_KEYS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
                  "SLURM_JOB_NAME", "SLURM_NNODES", "SLURM_NTASKS", "SLURM_JOB_NODELIST",
                  "SLURM_CLUSTER_NAME")
PACKAGES = ("str-lightning", "torch", "lightning", "torchmetrics", "wandb", "numpy", "webdataset",
            "smplx", "jsonargparse", "omegaconf")
EVAL_STAGES = ("val", "test")
TRAIN_LOSS_KEY = "train/loss"
ERROR_SUMMARY = "min,last"  # lower is better for every summarised metric: min is the best
_REPO_DIR = Path(__file__).resolve().parents[1]


def run_name(experiment: str, seed: int, subcommand: str | None,
             environ: Mapping[str, str] = os.environ) -> str:
    """``<experiment>-seed<N>-<subcommand>``, plus ``-r<n>`` when SLURM says this is restart ``n``
    of the job."""
    name = "-".join([experiment, f"seed{seed}", *([subcommand] if subcommand else [])])
    restart = environ.get(RESTART_COUNT_ENV, "").strip()
    return f"{name}-r{restart}" if restart else name


def run_group(run: Mapping[str, str]) -> str:
    """``<project>/<experiment>``: the W&B group of every seed (and sub-command) of a configuration."""
    return f"{run['project']}/{run['experiment']}"


def fill_wandb_init_args(init_args: dict[str, Any], run: Mapping[str, str], seed: int,
                         subcommand: str | None, environ: Mapping[str, str] = os.environ) -> None:
    """Fill a WandbLogger's unset (None) ``project``, ``name``, ``group`` and ``job_type`` in place.

    ``run`` is the CLI's ``run`` section: project <- ``run.project``; name <- :func:`run_name`;
    group <- :func:`run_group`; job type <- the sub-command (fit, test, ...).
    """
    defaults = {"project": run["project"], "name": run_name(run["experiment"], seed, subcommand, environ),
                "group": run_group(run), "job_type": subcommand}
    for key, value in defaults.items():
        if init_args.get(key) is None:
            init_args[key] = value


def is_wandb_logger_config(entry: Any) -> bool:
    """Whether a ``trainer.logger`` entry of the config (a mapping or a jsonargparse Namespace,
    both with ``.get``) is a WandbLogger (``class_path``)."""
    return hasattr(entry, "get") and str(entry.get("class_path", "")).endswith("WandbLogger")


def git_state(repo_dir: Path = _REPO_DIR) -> dict[str, Any]:
    """``commit`` and ``dirty`` of the source checkout, or ``{}`` when it is not a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each package (``"not installed"`` for the missing ones)."""
    versions = {"python": sys.version.split()[0]}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def configured_splits(datamodule: Any) -> dict[str, str]:
    """Every split directory a ShardDataModule is configured with, by role
    (``train/<i>``, ``val/<name>``, ``test/<name>``, ``predict/<name>``, ``motion``)."""
    if datamodule is None:
        return {}
    splits = {f"train/{i}": str(d.path) for i, d in enumerate(getattr(datamodule, "train_datasets", []))}
    for stage in ("val", "test", "predict"):
        for name, path in (getattr(datamodule, f"{stage}_datasets", None) or {}).items():
            splits[f"{stage}/{name}"] = str(path)
    if getattr(datamodule, "motion_dataset", None):
        splits["motion"] = str(datamodule.motion_dataset)
    return splits


def manifest_hashes(splits: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    """``{role: {"path", "sha256"}}`` with the sha256 of each split's ``manifest.json`` (None
    when the manifest is missing: the data module reports that error itself)."""
    hashes = {}
    for role, directory in splits.items():
        manifest = Path(directory) / "manifest.json"
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None
        hashes[role] = {"path": directory, "sha256": digest}
    return hashes


def slurm_ids(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The SLURM job variables that identify this job and segment (empty outside SLURM)."""
    return {key.removeprefix("SLURM_").lower(): environ[key] for key in SLURM_ENV_KEYS if key in environ}


def run_metadata(config: Mapping[str, Any], datamodule: Any,
                 environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Everything recorded about a run besides its metrics (the W&B config of the run)."""
    return {
        "seed": config.get("seed_everything"),
        "cli_config": dict(config),
        "git": git_state(),
        "versions": package_versions(),
        "data_manifests": manifest_hashes(configured_splits(datamodule)),
        "slurm": slurm_ids(environ),
    }


def error_keys(trainer: Trainer, pl_module: LightningModule) -> list[str]:
    """``train/loss`` and ``<stage>/<dataset>/<metric>`` of every validation and test error the
    module logs."""
    datamodule = getattr(trainer, "datamodule", None)
    keys = [TRAIN_LOSS_KEY]
    for stage in EVAL_STAGES:
        for name in getattr(datamodule, f"{stage}_names", None) or []:
            keys += [f"{stage}/{name}/{metric}" for metric in pl_module.protocol(name).metrics]
    return keys


def wandb_loggers(trainer: Trainer) -> list[WandbLogger]:
    """The trainer's WandbLoggers (none when it logs elsewhere or not at all)."""
    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def define_best_summaries(experiment: Any, keys: list[str]) -> None:
    """Summarise each error by its minimum (the best) and its last value (``<key>.min`` and
    ``<key>.last`` in the runs table), on the same x-axis as Lightning's logger."""
    for key in keys:
        experiment.define_metric(key, summary=ERROR_SUMMARY, step_metric="trainer/global_step")


class WandbRunInfo(SaveConfigCallback):
    """LightningCLI's ``save_config_callback``: on rank 0, saves the config file
    (``cli_config.yaml``) in the run directory itself (``trainer.default_root_dir``, not a
    logger's version directory), replacing the previous start's, and records the run metadata
    and the best-value summaries in every attached WandbLogger."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "save_to_log_dir": False})

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        path = Path(trainer.default_root_dir) / self.config_filename
        path.parent.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, path, skip_unset=False, overwrite=self.overwrite,
                         multifile=self.multifile)
        loggers = wandb_loggers(trainer)
        if not loggers:
            return
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        info = run_metadata(config, getattr(trainer, "datamodule", None))
        keys = error_keys(trainer, pl_module)
        for logger in loggers:
            experiment = logger.experiment
            experiment.config.update(info, allow_val_change=True)
            define_best_summaries(experiment, keys)


def finish_wandb(exit_code: int = 0) -> None:
    """Finish the process's W&B run, if any, so the next CLI run in this process starts its own.

    Never imports wandb: a process that did not use it has nothing to finish.
    """
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)
