"""``str-lightning fit | validate | test | predict``: a LightningCLI with fixed run directories.

Every run lives in ``<run.root>/<run.project>/<run.experiment>`` (no timestamps), shared by all
ranks and by every requeue of a SLURM job; :class:`~str_lightning.run_directory.RunDirectory` owns
its layout. ``--ckpt_path auto`` resumes from the run's newest checkpoint by global step (or
starts fresh); ``--ckpt_path best`` tests the best one. A ``fit`` into a run directory that already
has checkpoints must say ``--ckpt_path auto`` (continue) or ``--run.start_over true`` (archive the
old run); a checkpoint whose architecture differs from the config's model is refused unless
``--run.allow_model_mismatch true``. Checkpoints are written by
:class:`~str_lightning.checkpoint_io.AtomicCheckpointIO`. The feature size is read from the data's
manifests and the window length from the data config, and both are linked into the model.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from str_lightning import run_guards
from str_lightning.checkpoint_io import CLASS_PATH as CHECKPOINT_IO_CLASS_PATH
from str_lightning.modules import PoseShapeModule
from str_lightning.run_directory import RunDirectory

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process killed by SIGTERM


class STRLightningCLI(LightningCLI):
    """LightningCLI with omegaconf configs, run directories and checkpoint resolution."""

    def __init__(self, args: list[str] | None = None, run: bool = True, **kwargs: Any) -> None:
        # datamodules and callbacks may import str_lightning, never the other way round but here
        from callbacks.wandb_run import WandbRunInfo
        from datamodules.datamodule import ShardDataModule

        super().__init__(
            model_class=PoseShapeModule,
            datamodule_class=ShardDataModule,
            subclass_mode_model=True,
            parser_kwargs={"parser_mode": "omegaconf", "prog": "str-lightning"},
            save_config_callback=WandbRunInfo,
            save_config_kwargs={"overwrite": True, "config_filename": RunDirectory.CONFIG_FILENAME},
            auto_configure_optimizers=False,
            args=args,
            run=run,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--run.root", type=str, default="runs", help="where run directories live")
        parser.add_argument("--run.project", type=str, default="str-lightning",
                            help="project name: the second level of the run directory")
        parser.add_argument("--run.experiment", type=str, default="default",
                            help="experiment name: the run directory's own name (fixed, so "
                            "requeues and --ckpt_path auto find the same run)")
        parser.add_argument("--run.start_over", type=bool, default=False,
                            help="fit: move a run directory that already has checkpoints to "
                            "<run>.old-<timestamp> and start a fresh run (without this, or "
                            "--ckpt_path auto to continue it, such a fit is refused)")
        parser.add_argument("--run.allow_model_mismatch", type=bool, default=False,
                            help="use a --ckpt_path whose model architecture differs from the "
                            "config's; the checkpoint's own model settings are then used")
        parser.link_arguments("data.seq_len", "model.init_args.seq_len")
        parser.link_arguments("data.feature_dim", "model.init_args.feature_dim", apply_on="instantiate")

    @property
    def run_dir(self) -> Path:
        subcommand = self.config.get("subcommand")
        run = self.config[subcommand]["run"] if subcommand else self.config["run"]
        return Path(run["root"]) / run["project"] / run["experiment"]

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        run_guards.check_config_files(parser, args)
        super().parse_arguments(parser, args)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        run_dir = self.run_dir
        config["trainer"]["default_root_dir"] = str(run_dir)
        for callback in config["trainer"].get("callbacks") or []:
            if callback["class_path"].endswith("ModelCheckpoint") and not callback["init_args"].get("dirpath"):
                callback["init_args"]["dirpath"] = str(RunDirectory(run_dir).checkpoint_dir)
        _add_checkpoint_io(config["trainer"], run_dir,
                           config.get("ckpt_path") if self.subcommand in (None, "fit") else None)
        if self.subcommand in (None, "fit"):
            _add_preemption_handling(config["trainer"])
        _configure_loggers(config["trainer"].get("logger"), config["run"], run_dir, self.subcommand)

    def _parse_ckpt_path(self) -> None:
        """Resolve ``auto``/``best``, refuse a fit that would mix runs, and refuse a checkpoint of
        another architecture; only an allowed mismatch takes the checkpoint's model settings
        (LightningCLI's own behaviour), otherwise the config's model is built."""
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        run = RunDirectory(self.run_dir)
        if subcommand == "fit":
            run_guards.prepare_fit(run, config.get("ckpt_path"), config["run"]["start_over"])
        config["ckpt_path"] = run.resolve_ckpt_path(config.get("ckpt_path"))
        if config["ckpt_path"] and run_guards.check_checkpoint_model(
                config["ckpt_path"], config["model"].as_dict(), config["run"]["allow_model_mismatch"]):
            super()._parse_ckpt_path()


def _add_preemption_handling(trainer: Any) -> None:
    """The preemption callback always; Lightning's SLURM plugin only under SLURM."""
    from callbacks.preemption import preemption_additions  # callbacks import us, not v.v.

    callbacks, plugins = preemption_additions(trainer)
    trainer["callbacks"] = [*(trainer.get("callbacks") or []), *callbacks]
    _add_plugins(trainer, plugins)


def _add_checkpoint_io(trainer: Any, run_dir: Path, resumed_from: str | None) -> None:
    """Atomic checkpoint writes (and the run's ``last.ckpt`` link) unless a config names its own
    CheckpointIO."""
    if not any("CheckpointIO" in str(_class_path(p)) for p in _plugins(trainer)):
        _add_plugins(trainer, [{"class_path": CHECKPOINT_IO_CLASS_PATH,
                                "init_args": {"run_dir": str(run_dir), "resumed_from": resumed_from}}])


def _plugins(trainer: Any) -> list:
    existing = trainer.get("plugins")
    return [] if existing is None else existing if isinstance(existing, list) else [existing]


def _class_path(plugin: Any) -> str:
    return plugin.get("class_path", "") if hasattr(plugin, "get") else type(plugin).__name__


def _add_plugins(trainer: Any, plugins: list[dict]) -> None:
    if plugins:
        trainer["plugins"] = [*_plugins(trainer), *plugins]


def _configure_loggers(logger: Any, run: Any, run_dir: Path, subcommand: str | None) -> None:
    """``save_dir: .`` means the run directory; W&B loggers get project, name and group."""
    from callbacks.wandb_run import fill_wandb_init_args, is_wandb_logger_config

    for entry in logger if isinstance(logger, list) else [logger]:
        init_args = getattr(entry, "init_args", None)
        if init_args is not None and init_args.get("save_dir") in (None, "."):
            init_args["save_dir"] = str(run_dir)
        if is_wandb_logger_config(entry):
            fill_wandb_init_args(init_args, run, subcommand)


def run_lightning(args: list[str] | None = None) -> int:
    """Run a Lightning sub-command: ``args`` like ``["fit", "--config", "x.yaml"]``, or None for
    the process's own command line."""
    from callbacks.wandb_run import finish_wandb

    try:
        STRLightningCLI(args=args)
    except run_guards.RunRefused as refusal:
        print(f"str-lightning: error: {refusal}", file=sys.stderr)
        return 2
    except SIGTERMException:
        finish_wandb(exit_code=SIGTERM_EXIT_CODE)
        print("str-lightning: stopped by SIGTERM (a checkpoint was saved first when training; "
              "resume with --ckpt_path auto)", file=sys.stderr)
        return SIGTERM_EXIT_CODE
    except BaseException:
        finish_wandb(exit_code=1)
        raise
    finish_wandb()
    return 0
