"""What the training CLI refuses before it builds anything, each with what to do instead.

- a config file that is not valid YAML: the error names the file, line and column;
- a ``fit`` into a run directory that already holds checkpoints, unless it continues that run
  (``--ckpt_path auto`` or one of the run's own checkpoints) or starts over
  (``--run.start_over true`` moves the old run to ``<run>.old-<timestamp>``);
- a ``--ckpt_path`` whose model architecture (module class, encoder class and ``init_args``,
  regressor width) differs from the config's, unless ``--run.allow_model_mismatch true``;
- a ``validate``, ``test`` or ``predict`` of a model without trained weights (no ``--ckpt_path``,
  no released or SPIN weights in the config), unless ``--ckpt_path none`` asks for it;
- a ``--ckpt_path`` whose model reads features of another size than the data of the run.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from str_lightning.runs.checkpoints import (
    UNREADABLE_CHECKPOINT_ERRORS,
    architecture_differences,
    read_checkpoint_meta,
)
from str_lightning.runs.directory import AUTO, NONE, RunDirectory

CONFIG_FLAGS = ("--config", "-c")
YAML_SUFFIXES = (".yaml", ".yml")


class RunRefused(ValueError):
    """The CLI refuses to run as asked; the message says why and what to do."""


# ---------------------------------------------------------------------- config files
def check_config_files(parser: Any, args: Any) -> None:
    """Parse every ``--config`` file (and the YAML files it includes) with PyYAML first, so that
    a syntax error names the file instead of ``<unicode string>``; ``parser.error`` otherwise."""
    args = sys.argv[1:] if args is None else args
    if not isinstance(args, (list, tuple)):  # a config given as a dict or Namespace: no files
        return
    for path in config_paths(args):
        message = yaml_error(path)
        if message:
            parser.error(message)


def config_paths(args: Sequence[str]) -> list[Path]:
    """The existing files given to ``--config``/``-c`` (``--config=FILE`` too)."""
    paths = []
    for index, arg in enumerate(args):
        if arg in CONFIG_FLAGS and index + 1 < len(args):
            paths.append(Path(args[index + 1]))
        elif arg.startswith("--config="):
            paths.append(Path(arg.split("=", 1)[1]))
    return [path for path in paths if path.is_file()]


def yaml_error(path: Path, seen: set[Path] | None = None) -> str | None:
    """The YAML syntax error of ``path`` or of a YAML file it includes by relative path, or None."""
    seen = set() if seen is None else seen
    if path.resolve() in seen:
        return None
    seen.add(path.resolve())
    try:
        with path.open() as stream:  # a named stream: PyYAML's error then names the file
            content = yaml.safe_load(stream)
    except yaml.YAMLError as error:
        return f"config file {path} is not valid YAML: {error}"
    for value in _strings(content):
        included = path.parent / value
        if value.endswith(YAML_SUFFIXES) and included.is_file():
            message = yaml_error(included, seen)
            if message:
                return message
    return None


def _strings(node: Any) -> list[str]:
    if isinstance(node, Mapping):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


# ---------------------------------------------------------------------- fit into a run
def prepare_fit(run: RunDirectory, ckpt_path: str | None, start_over: bool) -> None:
    """Refuse, or archive the old run (global rank 0 only), when ``run`` already has checkpoints
    and this fit neither continues it nor says to start over."""
    existing = run.checkpoints()
    if not existing:
        return
    if start_over:
        if rank_zero_only.rank == 0:
            run.archive()
        return
    if ckpt_path == AUTO or (ckpt_path and run.contains(ckpt_path)):
        return
    raise RunRefused(
        f"run directory {run.path} already holds checkpoints of an earlier fit ({len(existing)} "
        f"files, e.g. {existing[-1].name}); starting a new fit there would mix the two runs. "
        "Continue it with --ckpt_path auto, or start over with --run.start_over true (moves the "
        f"old run to {run.path.name}.old-<timestamp>), or choose another --run.experiment.")


# ---------------------------------------------------------------------- trained weights
PRETRAINED_KEYS = ("released_checkpoint", "spin_checkpoint")


def check_trained_weights(subcommand: str, ckpt_path: str | None,
                          model_init_args: Mapping[str, Any]) -> None:
    """Refuse to evaluate a model that would keep its random initial weights: no ``--ckpt_path``
    and none of :data:`PRETRAINED_KEYS` in the model's ``init_args``. ``--ckpt_path none`` is
    the explicit request to do so."""
    if ckpt_path or any(model_init_args.get(key) for key in PRETRAINED_KEYS):
        return
    raise RunRefused(
        f"{subcommand} without trained weights: no --ckpt_path and no "
        "model.init_args.released_checkpoint or spin_checkpoint, so the model would be scored "
        "with its random initial weights. Pass --ckpt_path best (the run's best checkpoint), "
        f"--ckpt_path auto (its newest), a checkpoint file, or --ckpt_path {NONE} to evaluate "
        "the untrained model on purpose.")


# ---------------------------------------------------------------------- checkpoint model
def check_checkpoint_model(ckpt_path: str, config_model: Mapping[str, Any],
                           allow_mismatch: bool) -> bool:
    """Whether the checkpoint's model settings must replace the config's: False when the
    architectures agree; True (with a warning) when they differ and ``allow_mismatch``; raises
    :class:`RunRefused` listing the differences otherwise."""
    try:
        hparams = read_checkpoint_meta(ckpt_path)["hyper_parameters"]
    except UNREADABLE_CHECKPOINT_ERRORS as error:
        raise RunRefused(f"--ckpt_path {ckpt_path}: the file cannot be read safely "
                         f"({type(error).__name__}: {error})") from None
    differences = architecture_differences(hparams, config_model)
    if not differences:
        return False
    listed = "; ".join(differences)
    if allow_mismatch:
        warnings.warn(f"--ckpt_path {ckpt_path} holds another model than the config ({listed}); "
                      "running the checkpoint's model (--run.allow_model_mismatch)", stacklevel=2)
        return True
    saved = RunDirectory.of_checkpoint(ckpt_path)
    config = (f"--config {saved.config_file}" if saved else
              f"the {RunDirectory.CONFIG_FILENAME} of the run directory it was written in")
    raise RunRefused(
        f"--ckpt_path {ckpt_path} holds another model than the config builds: {listed}. Use the "
        f"config the checkpoint was trained with ({config}), or pass "
        "--run.allow_model_mismatch true to run the checkpoint's model anyway.")


def check_checkpoint_features(ckpt_path: str, feature_dim: int, splits: Mapping[str, str]) -> None:
    """Refuse a checkpoint whose model was built for ``D`` features other than ``feature_dim``,
    the size of the data the run reads (``splits``: config key -> directory)."""
    trained = read_checkpoint_meta(ckpt_path)["hyper_parameters"].get("feature_dim")
    if trained is None or trained == feature_dim:
        return
    listed = ", ".join(f"{key} ({path})" for key, path in splits.items())
    raise RunRefused(
        f"--ckpt_path {ckpt_path}: its model reads {trained}-D features, but {listed} "
        f"{'holds' if len(splits) == 1 else 'hold'} {feature_dim}-D features. Run it on data "
        f"with {trained}-D features (like the data it was trained on), or use a model trained "
        f"on {feature_dim}-D features"
        + (": for SPIN's 2048-D features (your own video, converted real data) a paper recipe "
           "(configs/experiment/paper_*.yaml) or a released TCMR/VIBE file "
           "(configs/experiment/released_*.yaml; docs/usage-own-video.md)"
           if feature_dim == 2048 else "") + ".")
