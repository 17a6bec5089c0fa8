"""Preemption without SLURM: a real training process gets SIGUSR1 mid-training, saves an hpc
checkpoint and exits cleanly; ``--ckpt_path auto`` resumes with a continuous global step."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from cli_runners import STR_LIGHTNING_COMMAND, command_environment
from lightning.pytorch import Callback
from training_helpers import tiny_config, tiny_run_dir, write_config

from callbacks.preemption import (
    CALLBACK_CLASS_PATH,
    SLURM_ENVIRONMENT_CLASS_PATH,
    preemption_additions,
    slurm_job_id,
)
from str_lightning.app.lightning_cli import STRLightningCLI
from str_lightning.runs.directory import RunDirectory
from str_lightning.runs.signals import ignore_preemption_signals, parse_signal

REPO = Path(__file__).resolve().parents[1]
PREEMPTION = {"class_path": CALLBACK_CLASS_PATH, "init_args": {"signal": "SIGUSR1"}}


def preemptible_config(shards: Path, run_root: Path, max_steps: int) -> dict:
    config = tiny_config(shards, run_root, max_steps=max_steps, steps_per_epoch=50,
                         every_n_steps=2)
    config["trainer"]["callbacks"].append(PREEMPTION)
    config["data"]["num_workers"] = 1  # a worker process gets the signal too, and must survive
    return config


def saved_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def fit_then_signal_group(config_path: Path, run: RunDirectory,
                          signum: signal.Signals) -> tuple[int, str, int]:
    """Run ``str-lightning fit`` outside SLURM in its own process group and, once a step
    checkpoint exists, send ``signum`` to the whole group (as a scheduler or ``kill -- -PGID``
    does: the DataLoader worker gets it too). Returns the exit status, stderr and the newest
    step saved before the signal."""
    outside_slurm = command_environment(
        {name: None for name in ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_ARRAY_JOB_ID")})
    process = subprocess.Popen([*STR_LIGHTNING_COMMAND, "fit", "--config", str(config_path)],
                               cwd=REPO, env=outside_slurm, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not list(run.checkpoint_dir.glob("step*.ckpt")):
            assert process.poll() is None and time.monotonic() < deadline, "training never started"
            time.sleep(0.2)
        seen = max(saved_step(p) for p in run.checkpoint_dir.glob("step*.ckpt"))
        os.killpg(process.pid, signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, stderr, seen


class SignalAtStep(Callback):
    """Sends the preemption signal to this very process when a batch at ``step`` starts."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)


def fit(config_path: Path, *callbacks: Callback) -> STRLightningCLI:
    return STRLightningCLI(args=["fit", "--config", str(config_path), "--ckpt_path", "auto"],
                           trainer_defaults={"callbacks": list(callbacks)})


def test_signal_saves_stops_cleanly_and_auto_resumes_continuously(tiny_shards, tmp_path, caplog):
    config = preemptible_config(tiny_shards, tmp_path, max_steps=100_000)
    path = write_config(config, tmp_path / "long.yaml")
    run = RunDirectory(tiny_run_dir(tmp_path))
    returncode, stderr, _ = fit_then_signal_group(path, run, signal.SIGUSR1)
    assert returncode == 0, stderr[-3000:]
    assert list(run.hpc_checkpoints()) == [1]
    assert not run.leftover_temporaries()  # renamed away
    preempted_at = saved_step(run.hpc_checkpoint(1))
    assert saved_step(run.last_checkpoint) == preempted_at  # last = newest
    assert 2 <= preempted_at < 1000

    # Resume, and get preempted again by a real signal at a known step.
    config["trainer"]["max_steps"] = preempted_at + 100
    caplog.set_level(logging.INFO)
    second = fit(write_config(config, tmp_path / "second.yaml"), SignalAtStep(preempted_at + 2))
    assert second.trainer.global_step == preempted_at + 3  # continued, not restarted
    assert saved_step(run.hpc_checkpoint(2)) == preempted_at + 3
    assert "Restored all states" in caplog.text and "weights_only" not in caplog.text

    # The last resume finishes; resuming from hpc_ckpt_2 removes the older hpc_ckpt_1.
    config["trainer"]["max_steps"] = preempted_at + 5
    third = fit(write_config(config, tmp_path / "third.yaml"))
    assert third.trainer.global_step == preempted_at + 5
    assert third.trainer.ckpt_path == str(run.hpc_checkpoint(2))
    assert list(run.hpc_checkpoints()) == [2]


def test_additions_attach_slurm_environment_only_under_slurm(monkeypatch):
    for name in ("SLURM_NTASKS", "SLURM_JOB_NAME"):
        monkeypatch.delenv(name, raising=False)
    callbacks, plugins = preemption_additions({"callbacks": [], "plugins": None})
    assert [c["class_path"] for c in callbacks] == [CALLBACK_CLASS_PATH] and plugins == []

    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    callbacks, plugins = preemption_additions({"callbacks": [PREEMPTION]})
    assert callbacks == []  # the config's own callback (and its signal) is kept
    assert plugins == [{"class_path": SLURM_ENVIRONMENT_CLASS_PATH,
                        "init_args": {"auto_requeue": False}}]

    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # Lightning's opt-out of SLURM
    assert preemption_additions({})[1] == []


def test_job_id_signal_names_and_worker_ignore(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    assert slurm_job_id() == "77"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "70")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert slurm_job_id() == "70_3"

    assert parse_signal("USR2") == parse_signal("SIGUSR2") == signal.SIGUSR2
    with pytest.raises(ValueError, match="SIGUSR1 or SIGUSR2, got 'SIGFOO'"):
        parse_signal("SIGFOO")

    monkeypatch.setenv("STR_PREEMPTION_SIGNALS", "SIGUSR2")
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        ignore_preemption_signals(0)
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_sigterm_saves_a_checkpoint_and_exits_non_zero(tiny_shards, tmp_path):
    config = preemptible_config(tiny_shards, tmp_path, max_steps=100_000)
    config["trainer"]["callbacks"].pop()  # the CLI adds the preemption callback itself
    path = write_config(config, tmp_path / "long.yaml")
    run = RunDirectory(tiny_run_dir(tmp_path))
    returncode, stderr, seen = fit_then_signal_group(path, run, signal.SIGTERM)
    assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "stopped by SIGTERM" in stderr
    assert list(run.hpc_checkpoints()) == [1]
    assert saved_step(run.hpc_checkpoint(1)) >= seen
    assert run.newest_checkpoint() == run.hpc_checkpoint(1)
    assert saved_step(run.last_checkpoint) == saved_step(run.hpc_checkpoint(1))  # last = newest
