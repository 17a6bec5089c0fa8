"""The two ways tests run ``str-lightning``: :func:`run_command` as a user does, in a subprocess
(exit status and output), and :func:`run_cli_in_process` through ``STRLightningCLI`` (the
trainer, model and data it built)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from str_lightning.app.lightning_cli import STRLightningCLI

REPO = Path(__file__).resolve().parents[1]
STR_LIGHTNING_COMMAND = (sys.executable, "-m", "str_lightning")


def command_environment(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment with this checkout first on ``PYTHONPATH`` (the command runs
    this code from any directory), then ``overrides``: a value of ``None`` removes the variable."""
    inherited = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{inherited}" if inherited else str(REPO)}
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_command(*args: str, cwd: Path | str = REPO, env: Mapping[str, str | None] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``str-lightning ARGS`` in a subprocess in ``cwd``, with :func:`command_environment`
    ``(env)``. A failing command does not raise: read ``returncode``, ``stdout`` and ``stderr``."""
    return subprocess.run([*STR_LIGHTNING_COMMAND, *args], cwd=cwd, env=command_environment(env),
                          capture_output=True, text=True, timeout=timeout, check=False)


def run_cli_in_process(*args: str) -> STRLightningCLI:
    """``STRLightningCLI`` on ARGS in this process, returned so tests can read its trainer, model
    and datamodule. What it raises (``SystemExit`` included) reaches the caller."""
    return STRLightningCLI(args=list(args))
