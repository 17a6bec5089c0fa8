"""``str-lightning fit | validate | test | predict``: a LightningCLI with fixed run directories.

Every run lives in ``<run.root>/<run.project>/<run.experiment>/seed<N>`` (no timestamps; ``N`` is
``seed_everything``, 0 by default), shared by all ranks and by every requeue of a SLURM job;
:class:`~str_lightning.runs.directory.RunDirectory` owns its layout. The seed is also the default
of the training data stream's seed (``data.seed``) and of the initial weights'
(``model.init_args.init_seed``), so two seeds of one experiment differ in initialisation, data
order and dropout and never share a directory, while two experiments run with the same seed are
paired: same data order, same initial weights in every layer they share. ``--ckpt_path auto``
resumes from the run's newest checkpoint by global step (or starts fresh); ``--ckpt_path best``
tests the best one. A ``fit`` into a run directory that already has checkpoints must say
``--ckpt_path auto`` (continue) or ``--run.start_over true`` (archive the old run); a checkpoint
whose architecture differs from the config's model is refused unless
``--run.allow_model_mismatch true``. Checkpoints are written by
:class:`~str_lightning.runs.checkpoint_io.AtomicCheckpointIO`. The feature size is read from the
manifests of the splits the sub-command reads (only their directories must exist; a checkpoint
built for another size is refused) and the window length from the data config; both are linked
into the model.
What the trainer gets beyond its config (the run directory, the results tables, atomic checkpoint
writes, preemption handling, the prediction writer, the loggers' directories) is added in one
place, :func:`~str_lightning.app.trainer_setup.complete_trainer`.
Config files are composed before parsing (``base:``, sub-config files, ``${...}``; see
:mod:`str_lightning.runs.config_files`), and a value still ``???`` after parsing stops the run with
the keys to set.
``validate`` and ``test`` end with one table per dataset (``callbacks.console``) instead of
Lightning's table; the notices every run prints are silenced (:mod:`str_lightning.app.quiet`).
"""

from __future__ import annotations

import signal
import sys
from argparse import ArgumentError
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from callbacks.wandb_run import WandbRunInfo, finish_wandb
from datamodules.datamodule import ShardDataModule
from str_lightning.app.config_errors import ConfigError, explain_parse_error
from str_lightning.app.quiet import silence_known_notices
from str_lightning.app.trainer_setup import complete_trainer
from str_lightning.modules import PoseShapeModule
from str_lightning.runs import guards as run_guards
from str_lightning.runs.config_files import register_parser_mode, required_keys
from str_lightning.runs.directory import NONE, RunDirectory

DEFAULT_SEED = 0
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process killed by SIGTERM


def checked_seed(seed_everything: Any) -> int:
    """``seed_everything`` as the run's integer seed; ``true``/``false`` (a random seed, or none)
    would give a run directory no requeue or ``--ckpt_path auto`` could find again."""
    if isinstance(seed_everything, bool) or not isinstance(seed_everything, int):
        raise TypeError(f"seed_everything must be an integer seed (it names the run directory "
                         f"seed<N> and seeds the data stream and the initial weights), got "
                         f"{seed_everything!r}; pass e.g. --seed_everything {DEFAULT_SEED}")
    return seed_everything


_CKPT_CHOICES = ("'auto': the run's newest checkpoint by global step; 'best': the best "
                 "checkpoint the run's ModelCheckpoint recorded; 'last'; or a file path")
_UNTRAINED = (f"; required unless the config names released or SPIN weights ('{NONE}': "
              "evaluate the untrained model on purpose)")
CKPT_PATH_HELP = {
    "fit": f"checkpoint to resume from: {_CKPT_CHOICES} (auto starts fresh when the run has none)",
    "validate": f"checkpoint to evaluate: {_CKPT_CHOICES}{_UNTRAINED}",
    "test": f"checkpoint to test: {_CKPT_CHOICES}{_UNTRAINED}",
    "predict": f"checkpoint to predict with: {_CKPT_CHOICES}{_UNTRAINED}",
}


VERBOSE_HELP = ("print the traceback of an error in the config, data or checkpoint (also "
                "STR_LIGHTNING_VERBOSE=1); without it such an error is one message, exit status 2")


class STRLightningCLI(LightningCLI):
    """LightningCLI with composed configs, required values, run directories and checkpoint
    resolution."""

    def __init__(self, args: list[str] | None = None, run: bool = True, **kwargs: Any) -> None:
        silence_known_notices()
        super().__init__(
            model_class=PoseShapeModule,
            datamodule_class=ShardDataModule,
            subclass_mode_model=True,
            parser_kwargs={"parser_mode": register_parser_mode(), "prog": "str-lightning",
                           "exit_on_error": False},  # parse errors: ConfigError, one line each
            save_config_callback=WandbRunInfo,
            save_config_kwargs={"overwrite": True, "config_filename": RunDirectory.CONFIG_FILENAME},
            seed_everything_default=DEFAULT_SEED,
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
                            help="experiment name: the third level of the run directory, whose "
                            "fourth is seed<seed_everything> (fixed, so requeues and --ckpt_path "
                            "auto find the same run)")
        parser.add_argument("--run.start_over", type=bool, default=False,
                            help="fit: move a run directory that already has checkpoints to "
                            "<run>.old-<timestamp> and start a fresh run (without this, or "
                            "--ckpt_path auto to continue it, such a fit is refused)")
        parser.add_argument("--run.allow_model_mismatch", type=bool, default=False,
                            help="use a --ckpt_path whose model architecture differs from the "
                            "config's; the checkpoint's own model settings are then used")
        parser.link_arguments("data.seq_len", "model.init_args.seq_len")
        parser.link_arguments("data.feature_dim_for", "model.init_args.feature_dim",
                              compute_fn=self._feature_dim, apply_on="instantiate")

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict[str, Any],
                     subparser_kwargs: dict[str, Any]) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        for name, parser in (self._subcommand_parsers if add_subcommands else {}).items():
            parser._option_string_actions["--ckpt_path"].help = CKPT_PATH_HELP[name]
            # checkpoints are read without unpickling code (and Lightning need not say so)
            parser.set_defaults(weights_only=True)
            if "--verbose" in parser._option_string_actions:  # validate, test: Lightning's flag
                parser._option_string_actions["--verbose"].help = VERBOSE_HELP + (
                    "; also Lightning's own results table (DatasetMetricsTable prints ours)")
                parser.set_defaults(verbose=False)
            else:
                parser.add_argument("--verbose", type=bool, default=False, help=VERBOSE_HELP)

    def _feature_dim(self, feature_dim_for: Callable[[str], int]) -> int:
        """The feature size of the data this sub-command reads (``ShardDataModule.feature_dim_for``:
        only its own directories are checked). Linked from the bound method, not from the data
        module: the parser prints a link's source when it fails, and a LightningDataModule's
        ``str`` builds every loader."""
        return feature_dim_for(self.config.get("subcommand") or "fit")

    @property
    def run_dir(self) -> Path:
        """This run's directory (see :meth:`RunDirectory.of`)."""
        subcommand = self.config.get("subcommand")  # also before self.subcommand is set
        config = self.config[subcommand] if subcommand else self.config
        return RunDirectory.of(config["run"], checked_seed(config["seed_everything"])).path

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, or raise :class:`ConfigError` with one line per mistake of the command line
        (and the first of the config files)."""
        command_line = sys.argv[1:] if args is None else args
        try:
            run_guards.check_config_files(parser, command_line)
            super().parse_arguments(parser, args)
            subcommand = self.config.get("subcommand")
            try:
                checked_seed((self.config[subcommand] if subcommand else self.config)["seed_everything"])
            except TypeError as error:
                parser.error(str(error))
        except ArgumentError as error:
            if not isinstance(command_line, (list, tuple)):
                raise ConfigError(str(error)) from None
            subcommand = command_line[0] if command_line else ""
            known = _option_keys(self._subcommand_parsers.get(subcommand, parser))
            raise ConfigError(explain_parse_error(error, command_line, known, parser.parse_args,
                                                  f"str-lightning {subcommand} --help")) from None

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        _check_required_values(config)
        complete_trainer(config["trainer"], self.subcommand, config["run"], config["seed_everything"],
                         self.run_dir, config.get("ckpt_path"))

    def _parse_ckpt_path(self) -> None:
        """Resolve ``auto``/``best``/``none``, refuse a fit that would mix runs, an evaluation of
        untrained weights and a checkpoint of another architecture; only an allowed mismatch
        takes the checkpoint's model settings (LightningCLI's own behaviour), otherwise the
        config's model is built."""
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        run = RunDirectory(self.run_dir)
        requested = config.get("ckpt_path")
        if subcommand == "fit":
            run_guards.prepare_fit(run, requested, config["run"]["start_over"])
        elif requested != NONE:
            run_guards.check_trained_weights(subcommand, requested, config["model"]["init_args"])
        config["ckpt_path"] = run.resolve_ckpt_path(requested)
        if config["ckpt_path"] and run_guards.check_checkpoint_model(
                config["ckpt_path"], config["model"].as_dict(), config["run"]["allow_model_mismatch"]):
            super()._parse_ckpt_path()

    def after_instantiate_classes(self) -> None:
        """Refuse a checkpoint built for features of another size than the data's, before
        Lightning reads it."""
        ckpt_path = self.config[self.subcommand].get("ckpt_path") if self.subcommand else None
        if ckpt_path:
            run_guards.check_checkpoint_features(ckpt_path, self.model.hparams.feature_dim,
                                                 self.datamodule.feature_paths(self.subcommand))

    def before_predict(self) -> None:
        """The writer has the results on disk: unless asked, the trainer keeps none in memory."""
        config = self.config_init[self.subcommand]
        if config.get("return_predictions") is None:
            config["return_predictions"] = False


REQUIRED_VALUE_HINTS = {
    "model.init_args.body_model": "the directory of your SMPL files (docs/body.md), e.g. data/body",
    "model.init_args.spin_checkpoint": "SPIN's spin_model_checkpoint.pth.tar, whose regressor "
                                       "initialises ours (docs/training.md)",
}


def _check_required_values(config: Any) -> None:
    """Stop naming every key still ``???`` (a value the recipe requires the user to give)."""
    missing = required_keys(config.as_dict())
    if missing:
        lines = [f"  {key}: {REQUIRED_VALUE_HINTS.get(key, 'a value')}" for key in missing]
        raise run_guards.RunRefused(
            "the config requires values that were not given (??? in the config):\n"
            + "\n".join(lines) + f"\nSet them in a config file or on the command line, e.g. "
            f"--{missing[0]} VALUE")


def _option_keys(parser: LightningArgumentParser) -> list[str]:
    """The dotted keys a (sub-command) parser accepts on the command line."""
    return [option[2:] for option in parser._option_string_actions if option.startswith("--")]


def cli_on(args: list[str]) -> STRLightningCLI:
    """The CLI run on ``args`` alone, from a command of our own (``quickstart``, ``reproduce``):
    the process's own command line is set aside meanwhile, as Lightning warns about both being
    given (a likely mistake when the CLI is called from a script)."""
    command_line, sys.argv = sys.argv, sys.argv[:1]
    try:
        return STRLightningCLI(args=args)
    finally:
        sys.argv = command_line


def run_lightning(args: list[str] | None = None) -> int:
    """Run a Lightning sub-command: ``args`` like ``["fit", "--config", "x.yaml"]``, or None for
    the process's own command line."""
    try:
        STRLightningCLI(args=args)
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
