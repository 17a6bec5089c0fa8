"""The command's one error path: every anticipated error ends in a few lines and exit status 2.

An *anticipated* error is one a user causes and can fix: a config key or value, a data
directory, a shard, a checkpoint, a model or body-model file, a video, a full disk or a missing
file (:data:`ANTICIPATED_ERRORS`). Its message names the file or key, what was expected and what
was found, and what to run; :func:`reported` prints it as ``str-lightning: error: ...`` without a
traceback and returns 2. Any other exception is a bug in str-lightning and propagates with its
traceback. ``--verbose true`` on the command line, or ``STR_LIGHTNING_VERBOSE=1`` in the
environment, prints the traceback of anticipated errors too.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from argparse import ArgumentError
from collections.abc import Callable, Sequence

from datamodules.converters.safe_joblib import JoblibFormatError
from datamodules.schema import DataError
from str_lightning.app.config_errors import ConfigError
from str_lightning.app.video.frames import VideoInputError
from str_lightning.body import BodyModelFileError
from str_lightning.nets import ModelFileError
from str_lightning.outputs.predictions import PredictionFileError
from str_lightning.reporting.results_files import CompareError
from str_lightning.reporting.wandb_files import WandbFileError
from str_lightning.runs.config_files import ConfigFileError
from str_lightning.runs.guards import RunRefused

USAGE_ERROR_STATUS = 2
VERBOSE_FLAG = "--verbose"
VERBOSE_ENV = "STR_LIGHTNING_VERBOSE"
_TRUE = ("1", "true", "yes", "on")

ANTICIPATED_ERRORS: tuple[type[BaseException], ...] = (
    ArgumentError,  # the command line (argparse, LightningCLI)
    ConfigError, ConfigFileError, RunRefused,  # config keys and files, run guards
    DataError,  # split directories, manifests, shards, clips, conversions
    JoblibFormatError, pickle.UnpicklingError,  # files holding what must not be unpickled
    BodyModelFileError, ModelFileError, PredictionFileError,  # model and result files
    CompareError, WandbFileError,  # run directories read back
    VideoInputError,  # a user's video and boxes
    OSError,  # missing files, permissions, full disks (CheckpointWriteError)
)


def wants_traceback(argv: Sequence[str]) -> bool:
    """Whether the command line says ``--verbose true`` (or ``--verbose=true``) or the
    environment sets :data:`VERBOSE_ENV`."""
    if os.environ.get(VERBOSE_ENV, "").lower() in _TRUE:
        return True
    for index, arg in enumerate(argv):
        value = (argv[index + 1] if arg == VERBOSE_FLAG and index + 1 < len(argv)
                 else arg.partition("=")[2] if arg.startswith(f"{VERBOSE_FLAG}=") else "")
        if value.lower() in _TRUE:
            return True
    return False


def without_verbose_flag(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--verbose VALUE`` / ``--verbose=VALUE`` (for the commands whose own
    parser does not know the flag)."""
    kept: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg == VERBOSE_FLAG:
            skip_next = True
        elif not arg.startswith(f"{VERBOSE_FLAG}="):
            kept.append(arg)
    return kept


def anticipated(error: BaseException) -> BaseException | None:
    """``error`` when it is of an anticipated kind, else the first anticipated error it was
    raised from (``raise ... from``, e.g. a link of the config parser calling the data module),
    else None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ANTICIPATED_ERRORS):
            return error
        seen.add(id(error))
        error = error.__cause__
    return None


def error_message(error: BaseException) -> str:
    """The message of ``error`` as the user should read it.

    A DataLoader worker's error is re-raised in the main process with the worker's traceback
    inside its message; only the original message is kept.
    """
    message = str(error) or type(error).__name__
    if "Original Traceback" in message:
        for name in (f"{type(error).__module__}.{type(error).__qualname__}", type(error).__qualname__):
            marker = f"\n{name}: "
            if marker in message:
                return message.rsplit(marker, 1)[1].strip()
    return message.strip()


def reported(command: Callable[[], int], verbose: bool = False) -> int:
    """Run ``command``; an anticipated error is printed as ``str-lightning: error: MESSAGE``
    (after its traceback when ``verbose``) and gives :data:`USAGE_ERROR_STATUS`."""
    try:
        return command()
    except Exception as error:
        cause = anticipated(error)
        if cause is None:
            raise
        if verbose:
            traceback.print_exception(error)
        print(f"str-lightning: error: {error_message(cause)}", file=sys.stderr)
        return USAGE_ERROR_STATUS
