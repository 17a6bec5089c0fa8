"""``str-lightning fit | validate | test | predict``: a LightningCLI with fixed run directories.

Every run lives in ``<run.root>/<run.project>/<run.experiment>`` (no timestamps), shared by all
ranks and by every requeue of a SLURM job: checkpoints in ``checkpoints/``, the saved CLI config
``cli_config.yaml``, logs. ``--ckpt_path auto`` resumes from the run's newest checkpoint by global
step (or starts fresh); ``--ckpt_path best`` tests the best one. The feature size is read from the
data's manifests and the window length from the data config, and both are linked into the model.
``validate`` and ``test`` end with one table per dataset (``callbacks.console``) instead of
Lightning's table; the notices every run prints are silenced (:mod:`str_lightning.app.quiet`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from callbacks.console import DatasetMetricsTable
from callbacks.preemption import preemption_additions
from callbacks.wandb_run import (
    WandbRunInfo,
    fill_wandb_init_args,
    finish_wandb,
    is_wandb_logger_config,
)
from datamodules.datamodule import ShardDataModule
from str_lightning.app.quiet import silence_known_notices, silence_wandb_notices
from str_lightning.checkpoints import resolve_ckpt_path
from str_lightning.modules import PoseShapeModule

CONFIG_FILENAME = "cli_config.yaml"
_CKPT_CHOICES = ("'auto': the run's newest checkpoint by global step; 'best': the best "
                 "checkpoint the run's ModelCheckpoint recorded; 'last'; or a file path")
CKPT_PATH_HELP = {
    "fit": f"checkpoint to resume from: {_CKPT_CHOICES} (auto starts fresh when the run has none)",
    "validate": f"checkpoint to evaluate: {_CKPT_CHOICES}",
    "test": f"checkpoint to test: {_CKPT_CHOICES}",
    "predict": f"checkpoint to predict with: {_CKPT_CHOICES}",
}


class STRLightningCLI(LightningCLI):
    """LightningCLI with omegaconf configs, run directories and checkpoint resolution."""

    def __init__(self, args: list[str] | None = None, run: bool = True,
                 trainer_defaults: dict[str, Any] | None = None, **kwargs: Any) -> None:
        trainer_defaults = dict(trainer_defaults or {})
        callbacks = trainer_defaults.get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        trainer_defaults["callbacks"] = [*callbacks, DatasetMetricsTable()]
        silence_known_notices()
        super().__init__(
            model_class=PoseShapeModule,
            datamodule_class=ShardDataModule,
            subclass_mode_model=True,
            parser_kwargs={"parser_mode": "omegaconf", "prog": "str-lightning"},
            save_config_callback=WandbRunInfo,
            save_config_kwargs={"overwrite": True, "config_filename": CONFIG_FILENAME},
            auto_configure_optimizers=False,
            trainer_defaults=trainer_defaults,
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
        parser.link_arguments("data.seq_len", "model.init_args.seq_len")
        parser.link_arguments("data.feature_dim", "model.init_args.feature_dim", apply_on="instantiate")

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict[str, Any],
                     subparser_kwargs: dict[str, Any]) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        for name, parser in (self._subcommand_parsers if add_subcommands else {}).items():
            parser._option_string_actions["--ckpt_path"].help = CKPT_PATH_HELP[name]
            if name in ("validate", "test"):  # DatasetMetricsTable prints the results instead
                parser.set_defaults(verbose=False)

    @property
    def run_dir(self) -> Path:
        run = self.config[self.subcommand]["run"] if self.subcommand else self.config["run"]
        return Path(run["root"]) / run["project"] / run["experiment"]

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        run_dir = self.run_dir
        config["trainer"]["default_root_dir"] = str(run_dir)
        for callback in config["trainer"].get("callbacks") or []:
            if callback["class_path"].endswith("ModelCheckpoint") and not callback["init_args"].get("dirpath"):
                callback["init_args"]["dirpath"] = str(run_dir / "checkpoints")
        if self.subcommand in (None, "fit"):
            _add_preemption_handling(config["trainer"])
        _configure_loggers(config["trainer"].get("logger"), config["run"], run_dir, self.subcommand)

    def _resolve_checkpoint(self) -> None:
        config = self.config_init[self.subcommand]
        config["ckpt_path"] = resolve_ckpt_path(config.get("ckpt_path"), self.run_dir)

    before_fit = before_validate = before_test = before_predict = _resolve_checkpoint


def _add_preemption_handling(trainer: Any) -> None:
    """The preemption callback always; Lightning's SLURM plugin only under SLURM."""
    callbacks, plugins = preemption_additions(trainer)
    trainer["callbacks"] = [*(trainer.get("callbacks") or []), *callbacks]
    if plugins:
        existing = trainer.get("plugins")
        existing = [] if existing is None else existing if isinstance(existing, list) else [existing]
        trainer["plugins"] = [*existing, *plugins]


def _configure_loggers(logger: Any, run: Any, run_dir: Path, subcommand: str | None) -> None:
    """``save_dir: .`` means the run directory; W&B loggers get project, name and group."""
    for entry in logger if isinstance(logger, list) else [logger]:
        init_args = getattr(entry, "init_args", None)
        if init_args is not None and init_args.get("save_dir") in (None, "."):
            init_args["save_dir"] = str(run_dir)
        if is_wandb_logger_config(entry):
            silence_wandb_notices()
            fill_wandb_init_args(init_args, run, subcommand)


def run_lightning(args: list[str] | None = None) -> int:
    """Run a Lightning sub-command: ``args`` like ``["fit", "--config", "x.yaml"]``, or None for
    the process's own command line."""
    try:
        STRLightningCLI(args=args)
    except BaseException:
        finish_wandb(exit_code=1)
        raise
    finish_wandb()
    return 0
