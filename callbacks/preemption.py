"""Preemption that does not depend on luck: save at a step boundary, requeue, exit cleanly.

SLURM sends ``--signal=SIGUSR1@<seconds>`` (or ``scancel --signal=USR1``) to every process of
the job step. :class:`PreemptionCheckpoint` makes the signal handler do nothing but set a flag
(saving inside a handler can interrupt a backward pass or a collective, Lightning#21406). At the
end of each optimizer step the ranks agree on the flag with an all-reduce(max), so all of them act
at the same step even when only one was signalled; then every rank calls
``trainer.save_checkpoint`` for the run directory's next ``hpc_ckpt_<n>.ckpt`` (written atomically
by the CLI's CheckpointIO: a kill mid-write never leaves a truncated file under the real name),
rank 0 runs ``scontrol requeue`` when the process runs under SLURM, and training stops without
error. ``--ckpt_path auto`` then resumes from that checkpoint; after a successful resume the
older ``hpc_ckpt_*`` files and any temporary files a killed write left are deleted.

SIGTERM (``kill``, ``scancel``, a scheduler's stop) is different: Lightning notices it at the
next step boundary and raises ``SIGTERMException``; this callback then saves the next
``hpc_ckpt_<n>.ckpt`` the same way (no requeue: the job was told to stop) and the CLI exits with
status 143 (128 + SIGTERM), never 0.

DataLoader workers receive the signal too (SLURM signals the whole step); they must ignore it:
the handler is a no-op outside the process that installed it, and the data loaders' workers
ignore it entirely (``str_lightning.runs.signals``).

:func:`preemption_additions` gives the CLI what to add to a trainer config: this callback, and
under SLURM only, ``SLURMEnvironment(auto_requeue=False)`` so Lightning's own in-handler
save-and-requeue stays off (configuring that plugin outside SLURM breaks local runs,
Lightning#21404).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from str_lightning.runs.directory import RunDirectory, hpc_checkpoint_number
from str_lightning.runs.signals import SIGNALS_ENV, parse_signal

log = logging.getLogger(__name__)

CALLBACK_CLASS_PATH = "callbacks.preemption.PreemptionCheckpoint"
SLURM_ENVIRONMENT_CLASS_PATH = "lightning.fabric.plugins.environments.SLURMEnvironment"


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` needs: ``<array job>_<task>`` in an array, else the job id;
    None outside SLURM."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def requeue_slurm_job(job_id: str) -> bool:
    """``scontrol requeue <job_id>``; True on success, a logged error otherwise (never raises:
    the checkpoint is already safe, and the job can be resubmitted by hand)."""
    if not re.fullmatch(r"[0-9]+(_[0-9]+)?", job_id):
        log.error("preemption: not requeueing, %r is not a SLURM job id", job_id)
        return False
    try:
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True,
                                timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.error("preemption: `scontrol requeue %s` could not run (%s); is scontrol on PATH in "
                  "the job's environment?", job_id, error)
        return False
    if result.returncode:
        log.error("preemption: `scontrol requeue %s` failed (exit %d): %s", job_id,
                  result.returncode, result.stderr.strip())
        return False
    return True


class PreemptionCheckpoint(Callback):
    """Save ``hpc_ckpt_<n>.ckpt`` in the run directory and stop when the preemption signal
    arrives; requeue the SLURM job.

    Args:
        signal: the signal SLURM sends before the time limit (``--signal=<sig>@<seconds>``);
            SIGUSR1 by default, SIGUSR2 where another library (e.g. NCCL, submitit) owns SIGUSR1.
        requeue: run ``scontrol requeue`` on rank 0 when under SLURM (set False to only save and
            stop, e.g. when the batch script requeues itself).

    Contract: the handler is installed at ``setup("fit")`` in the main thread of each rank's
    main process and restored at ``teardown``; a signal before ``setup`` gets the previous
    disposition. The check runs at the end of every optimizer step on every rank (one
    all-reduce of one number), so a signal during validation is acted on at the next training
    step: the signal margin must cover the longest validation plus one checkpoint write.
    """

    def __init__(self, signal: str = "SIGUSR1", requeue: bool = True) -> None:
        self.signal = parse_signal(signal)
        self.requeue = requeue
        self.requested = False
        self._owner_pid: int | None = None
        self._previous_handler: Any = None

    # ------------------------------------------------------------------ signal handling

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # A forked DataLoader worker inherits this handler: only the installing process acts.
        if os.getpid() == self._owner_pid:
            self.requested = True

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if threading.current_thread() is not threading.main_thread():
            log.warning("preemption: not in the main thread, %s handler not installed",
                        self.signal.name)
            return
        # Workers also ignore SIGTERM: the main process saves and stops them itself.
        os.environ[SIGNALS_ENV] = ",".join(dict.fromkeys([self.signal.name, "SIGTERM"]))
        self._owner_pid = os.getpid()
        self._previous_handler = signal.signal(self.signal, self._on_signal)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and self._owner_pid == os.getpid():
            signal.signal(self.signal, self._previous_handler or signal.SIG_DFL)
            self._owner_pid = None

    # ------------------------------------------------------------------ step boundary

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        run = RunDirectory(trainer.default_root_dir)
        for leftover in run.leftover_temporaries():  # of writes killed in an earlier start
            leftover.unlink(missing_ok=True)
        if trainer.ckpt_path:
            self._remove_older_hpc_checkpoints(run, Path(trainer.ckpt_path))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # mid-accumulation: act only where an optimizer step just completed
        flag = torch.tensor(float(self.requested), device=trainer.strategy.root_device)
        if trainer.strategy.reduce(flag, reduce_op="max").item() == 0:
            return
        self._save_and_stop(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.state.fn == TrainerFn.FITTING:
            self._save(trainer, "SIGTERM")

    def _save(self, trainer: Trainer, reason: str) -> None:
        run = RunDirectory(trainer.default_root_dir)
        path = trainer.strategy.broadcast(str(run.next_hpc_checkpoint()), src=0)
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(path, weights_only=False)  # all states (collective, barrier)
        if trainer.is_global_zero:
            log.warning("%s: saved %s at global step %d", reason, path, trainer.global_step)

    def _save_and_stop(self, trainer: Trainer) -> None:
        self._save(trainer, "preemption")
        job_id = slurm_job_id()
        under_slurm = bool(job_id) and SLURMEnvironment.detect()
        if trainer.is_global_zero and self.requeue and under_slurm and requeue_slurm_job(job_id):
            log.warning("preemption: requeued SLURM job %s", job_id)
        trainer.should_stop = True
        # Lightning validates before an early stop; a preempted job has no time for that.
        trainer.limit_val_batches = 0
        self.requested = False

    @staticmethod
    def _remove_older_hpc_checkpoints(run: RunDirectory, resumed_from: Path) -> None:
        """After resuming from ``hpc_ckpt_<n>``, delete ``hpc_ckpt_<m>`` for m < n
        (Lightning#6204: otherwise every preemption adds a full checkpoint)."""
        resumed = hpc_checkpoint_number(resumed_from)
        if resumed is None or resumed_from.resolve().parent != run.path.resolve():
            return
        for number, path in run.hpc_checkpoints().items():
            if number < resumed:
                path.unlink(missing_ok=True)


def preemption_additions(trainer_config: Any) -> tuple[list[dict], list[dict]]:
    """What the CLI adds to a ``fit`` trainer config: ``(callbacks, plugins)`` as
    ``{"class_path", "init_args"}`` dicts.

    The callback is added unless the config already has one (then its own ``signal`` wins).
    ``SLURMEnvironment(auto_requeue=False)`` is added only when ``SLURMEnvironment.detect()``
    is true and the config names no cluster environment itself.
    """
    callbacks = [] if _has_class(trainer_config.get("callbacks"), CALLBACK_CLASS_PATH) else [
        {"class_path": CALLBACK_CLASS_PATH, "init_args": {"signal": "SIGUSR1", "requeue": True}}]
    plugins = []
    if SLURMEnvironment.detect() and not _has_class(trainer_config.get("plugins"), "Environment"):
        plugins.append({"class_path": SLURM_ENVIRONMENT_CLASS_PATH,
                        "init_args": {"auto_requeue": False}})
    return callbacks, plugins


def _has_class(entries: Any, class_path_suffix: str) -> bool:
    if entries is None:
        return False
    for entry in entries if isinstance(entries, list) else [entries]:
        class_path = entry.get("class_path", "") if hasattr(entry, "get") else type(entry).__name__
        if str(class_path).endswith(class_path_suffix):
            return True
    return False
