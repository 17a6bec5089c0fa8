"""Fault injection for checkpoints on real files, file systems, processes and signals.

- SIGKILL at random points of a save: a forked process saves checkpoints in a loop through the
  CLI's ``AtomicCheckpointIO`` (step files with top-1 deletion, a ``last.ckpt`` link, and one file
  rewritten under a fixed name), resuming each time from ``RunDirectory.newest_checkpoint`` as
  ``--ckpt_path auto`` does, and is killed at a random time; after every kill each checkpoint file
  present loads with ``weights_only=True`` and holds one save's data, and the newest is at most one
  save older than the last save reported complete. Once on the default file system, once with the
  run directory on a small tmpfs and ``$TMPDIR`` on another file system.
- A full disk (a tmpfs too small for the next checkpoint): the write fails with an error naming
  the file, and every earlier checkpoint (including the one being replaced) is intact. The same
  situation through Lightning's default CheckpointIO truncates the destination: the control that
  shows what this suite catches.
- The real CLI on a full tmpfs (slow) and killed at random while training (slow).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import signal
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import torch
from cli_runners import STR_LIGHTNING_COMMAND, command_environment, run_command
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from training_helpers import tiny_config, tiny_run_dir, write_config

from str_lightning.runs.checkpoint_io import AtomicCheckpointIO
from str_lightning.runs.checkpoints import CheckpointWriteError, read_checkpoint_meta
from str_lightning.runs.directory import RunDirectory

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = 1 << 19  # float32 values per checkpoint: 2 MiB, so a save takes a while
KILLS_PER_FILE_SYSTEM = 30
ROLLING = "rolling.ckpt"  # rewritten under the same name on every save


# ---------------------------------------------------------------------- tmpfs
def mount_tmpfs(path: Path, size: str) -> Path:
    """Mount a tmpfs of ``size`` at ``path``; skip the test, saying why, when that is impossible."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                capture_output=True, text=True, timeout=30, check=False)
    except OSError as error:
        pytest.skip(f"cannot mount a tmpfs (needs root and the mount command): {error}")
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}")
    return path


@pytest.fixture
def small_tmpfs(tmp_path):
    """``mount(size) -> path`` of a fresh tmpfs, unmounted at the end; ``$TMPDIR`` stays on
    ``tmp_path``'s file system, as on a cluster with local /tmp and runs on a shared file system."""
    mounted = []

    def mount(size: str) -> Path:
        mounted.append(mount_tmpfs(tmp_path / f"tmpfs{len(mounted)}", size))
        return mounted[-1]

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


@pytest.fixture
def tmpdir_elsewhere(tmp_path, monkeypatch):
    """``$TMPDIR`` (and Python's cached temporary directory) on ``tmp_path``'s file system."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


# ---------------------------------------------------------------------- the save loop
def checkpoint_at(step: int, numel: int = PAYLOAD) -> dict:
    return {"global_step": step, "epoch": 0, "state_dict": {"w": torch.full((numel,), float(step))}}


def save_forever(run_dir: str, report_fd: int) -> None:
    """Resume from the newest checkpoint and save the following steps until killed; report on
    ``report_fd`` (8 bytes each) ``-step`` when a step's saves begin and ``step`` when they are
    complete. The order of a Lightning save: write, link ``last``, delete the previous top-1."""
    torch.set_num_threads(1)  # a forked child must not reuse the parent's thread pool
    run = RunDirectory(run_dir)
    for leftover in run.leftover_temporaries():  # as the preemption callback does at fit start
        leftover.unlink()
    newest = run.newest_checkpoint()
    step = read_checkpoint_meta(newest)["global_step"] if newest else 0
    io = AtomicCheckpointIO(run_dir, resumed_from=str(newest) if newest else None)
    previous = newest if newest and newest.name.startswith("step") else None
    while True:
        step += 1
        path = run.checkpoint_dir / f"step{step:07d}.ckpt"
        os.write(report_fd, struct.pack("<q", -step))
        io.save_checkpoint(checkpoint_at(step), path)
        io.save_checkpoint(checkpoint_at(step), run.checkpoint_dir / ROLLING)
        os.write(report_fd, struct.pack("<q", step))
        if previous is not None:
            previous.unlink()
        previous = path


def stored_step(path: Path) -> int:
    """The step of a complete checkpoint; fails the test for a torn or mixed one."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    step = checkpoint["global_step"]
    weights = checkpoint["state_dict"]["w"]
    assert weights.numel() == PAYLOAD and bool((weights == step).all()), f"{path}: mixed content"
    return step


def kill_at_random_times(run_dir: Path, kills: int, seed: int) -> dict[str, int]:
    """Fork the save loop ``kills`` times and SIGKILL it at a random moment; check the run
    directory after every kill. Returns counts of what the kills hit."""
    rng = random.Random(seed)
    context = multiprocessing.get_context("fork")
    newest = 0  # the step each start resumes from
    counts = {"kills": 0, "inside_a_save": 0, "left_a_temporary_file": 0, "checkpoints_checked": 0}
    for _ in range(kills):
        read_fd, write_fd = os.pipe()
        process = context.Process(target=save_forever, args=(str(run_dir), write_fd), daemon=True)
        process.start()
        os.close(write_fd)
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=30)
        assert process.exitcode == -signal.SIGKILL
        with os.fdopen(read_fd, "rb") as reports:
            data = reports.read()
        reports = [value for (value,) in struct.iter_unpack("<q", data)]
        completed = max([newest, *reports])
        counts["kills"] += 1
        counts["inside_a_save"] += bool(reports) and reports[-1] < 0
        newest, checked = check_run_after_kill(run_dir, completed)
        counts["checkpoints_checked"] += checked
        counts["left_a_temporary_file"] += bool(RunDirectory(run_dir).leftover_temporaries())
    return counts


def check_run_after_kill(run_dir: Path, completed: int) -> tuple[int, int]:
    """Every checkpoint loads and is whole (the rolling file too, replaced in place at every
    save); the newest holds the last completed step or the one after it (killed between the
    rename and the report); ``last`` is the newest or one save behind it (killed between the
    rename and the link). Returns the newest step and the number of files checked."""
    run = RunDirectory(run_dir)
    files = run.checkpoints()
    steps = {path: stored_step(path) for path in files}
    newest = run.newest_checkpoint()
    if completed == 0 and newest is None:
        return 0, 0
    assert newest is not None, f"after {completed} completed saves no checkpoint is left"
    assert steps[newest] in (completed, completed + 1), (steps[newest], completed)
    last = run.last_checkpoint
    assert last.is_symlink() and last.exists(), f"{last} missing or dangling"
    assert stored_step(last) in (steps[newest] - 1, steps[newest])
    rolling = run.checkpoint_dir / ROLLING
    if rolling.exists():
        assert stored_step(rolling) <= steps[newest]
    else:  # killed inside the very first step, before its second save had begun
        assert completed == 0, f"{rolling} lost after {completed} completed saves"
    return steps[newest], len(files)


def test_sigkill_during_saves_never_corrupts_or_loses_beyond_one_save(tmp_path, capsys):
    counts = kill_at_random_times(tmp_path / "run", KILLS_PER_FILE_SYSTEM, seed=1)
    with capsys.disabled():
        print(f"\n[default file system] {counts}")
    assert counts["kills"] == KILLS_PER_FILE_SYSTEM
    assert counts["inside_a_save"] >= KILLS_PER_FILE_SYSTEM // 2


def test_sigkill_with_run_on_tmpfs_and_tmpdir_elsewhere(small_tmpfs, tmpdir_elsewhere, capsys):
    run_dir = small_tmpfs("48m") / "run"
    counts = kill_at_random_times(run_dir, KILLS_PER_FILE_SYSTEM, seed=2)
    with capsys.disabled():
        print(f"\n[tmpfs run directory, $TMPDIR elsewhere] {counts}")
    assert os.stat(run_dir).st_dev != os.stat(tmpdir_elsewhere).st_dev
    assert counts["kills"] == KILLS_PER_FILE_SYSTEM
    assert counts["inside_a_save"] >= KILLS_PER_FILE_SYSTEM // 2


# ---------------------------------------------------------------------- full disk
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_full_disk_keeps_every_previous_checkpoint(small_tmpfs, tmpdir_elsewhere):
    run = RunDirectory(small_tmpfs("3m") / "run")
    io = AtomicCheckpointIO(str(run.path))
    first = run.checkpoint_dir / "step0000001.ckpt"
    io.save_checkpoint(checkpoint_at(1), first)  # 2 MiB of 3
    digest = sha256(first)

    for target in (run.checkpoint_dir / "step0000002.ckpt", first, run.hpc_checkpoint(1)):
        with pytest.raises(CheckpointWriteError, match="No space left on device") as error:
            io.save_checkpoint(checkpoint_at(2), target)
        assert str(target) in str(error.value) and "untouched" in str(error.value)
        assert sha256(first) == digest and stored_step(first) == 1
        assert run.checkpoints() == [first] and not run.leftover_temporaries()
        assert run.newest_checkpoint() == first and stored_step(run.last_checkpoint) == 1

    io.save_checkpoint(checkpoint_at(2, numel=1024), run.checkpoint_dir / "step0000002.ckpt")
    assert run.newest_checkpoint().name == "step0000002.ckpt"  # space left for a small one


def test_control_lightning_default_io_truncates_across_file_systems(small_tmpfs, tmpdir_elsewhere):
    """What this suite guards against: Lightning's default writes in $TMPDIR and copies over the
    destination, so a full disk destroys the checkpoint it was replacing."""
    target = small_tmpfs("3m") / "last.ckpt"
    TorchCheckpointIO().save_checkpoint(checkpoint_at(1), target)
    stored_step(target)
    with pytest.raises(OSError):
        TorchCheckpointIO().save_checkpoint(checkpoint_at(2, numel=2 * PAYLOAD), target)
    with pytest.raises(Exception):  # noqa: B017  (whatever torch raises on a torn file)
        stored_step(target)


# ---------------------------------------------------------------------- the real CLI
@pytest.mark.slow
def test_cli_fit_on_a_full_disk_fails_clearly_and_resumes(tiny_shards, small_tmpfs,
                                                           tmpdir_elsewhere):
    root = small_tmpfs("700k")
    config = tiny_config(tiny_shards, root, max_steps=40, steps_per_epoch=50, every_n_steps=1)
    config["trainer"]["callbacks"][1]["init_args"]["save_top_k"] = -1  # keep all: fill the disk
    path = write_config(config, tmpdir_elsewhere / "full.yaml")
    result = run_command("fit", "--config", str(path), env={"TMPDIR": str(tmpdir_elsewhere)})
    assert result.returncode != 0
    assert "was not written (No space left on device)" in result.stderr, result.stderr[-3000:]
    run = RunDirectory(tiny_run_dir(root))
    steps = [read_checkpoint_meta(p)["global_step"] for p in run.checkpoints()]
    assert steps and not run.leftover_temporaries()
    newest = run.newest_checkpoint()
    assert read_checkpoint_meta(newest)["global_step"] == max(steps)
    assert read_checkpoint_meta(run.last_checkpoint)["global_step"] == max(steps)


@pytest.mark.slow
def test_cli_killed_at_random_resumes_from_a_whole_checkpoint(tiny_shards, small_tmpfs,
                                                              tmpdir_elsewhere, capsys):
    """The real training process, killed while it checkpoints every step, then resumed."""
    rng = random.Random(3)
    root = small_tmpfs("64m")
    config = tiny_config(tiny_shards, root, max_steps=100_000, steps_per_epoch=50,
                         every_n_steps=1)
    config["trainer"]["callbacks"][1]["init_args"]["save_top_k"] = 1  # as the experiment configs
    path = write_config(config, tmpdir_elsewhere / "long.yaml")
    run = RunDirectory(tiny_run_dir(root))
    env = command_environment({"TMPDIR": str(tmpdir_elsewhere)})
    kills, previous_step = 0, 0
    log = tmpdir_elsewhere / "fit.log"
    for _ in range(8):
        before = set(run.checkpoints())
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [*STR_LIGHTNING_COMMAND, "fit", "--config", str(path), "--ckpt_path", "auto"],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 300
        while not set(run.checkpoints()) - before:  # this start saved a checkpoint of its own
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no new checkpoint"
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        kills += 1
        for checkpoint in run.checkpoints():
            torch.load(checkpoint, map_location="cpu", weights_only=True)
        newest_step = read_checkpoint_meta(run.newest_checkpoint())["global_step"]
        assert newest_step > previous_step  # every start made progress that survived the kill
        assert read_checkpoint_meta(run.last_checkpoint)["global_step"] >= newest_step - 1
        previous_step = newest_step
    with capsys.disabled():
        print(f"\n[real fit killed] kills={kills}, reached step {previous_step}")
