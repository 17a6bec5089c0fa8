"""Checkpoint files: read without running code, written so that no kill or full disk destroys one,
and checked against the model a config builds.

Reading uses ``torch.load(weights_only=True, mmap=True)``: no arbitrary unpickling, and only the
small metadata is actually read from disk. Writing (:func:`save_atomically`) serialises in memory,
writes a temporary file in the destination's own directory, fsyncs it, renames it over the
destination with ``os.replace`` and fsyncs the directory: the destination is at every instant
either its old complete content or the new complete content, whatever the file system of
``$TMPDIR``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

TEMPORARY_SUFFIX = ".tmp"
# What torch.load(weights_only=True) raises on a truncated, corrupted or code-carrying file.
UNREADABLE_CHECKPOINT_ERRORS = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError)
# The model settings that fix the architecture (and so the meaning of the weights).
ARCHITECTURE_KEYS = ("_class_path", "encoder", "regressor_hidden_size")
_UMASK = os.umask(0o022)  # reading the umask means setting it: restored on the next line
os.umask(_UMASK)
NEW_FILE_MODE = 0o666 & ~_UMASK  # what open() gives a new file; mkstemp gives 0600


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (e.g. a full disk); earlier checkpoints are untouched."""


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """``global_step``, ``epoch``, the callback states and the hyper-parameters of a checkpoint,
    without its tensors. Raises one of :data:`UNREADABLE_CHECKPOINT_ERRORS` for a bad file."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return {
        "global_step": int(checkpoint.get("global_step", -1)),
        "epoch": int(checkpoint.get("epoch", -1)),
        "callbacks": checkpoint.get("callbacks", {}),
        "hyper_parameters": checkpoint.get("hyper_parameters", {}),
    }


def weights_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a ``state_dict``: every entry's name, dtype, shape and bytes, in name order.
    Equal for the same weights whatever the device or the file they came from."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_atomically(checkpoint: Mapping[str, Any], path: str | Path) -> None:
    """``torch.save`` to ``path`` through a temporary file next to it (see the module doc).

    Raises :class:`CheckpointWriteError` naming the file and the cause when the write fails;
    the temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(descriptor, NEW_FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise CheckpointWriteError(
                error.errno, f"checkpoint {path} was not written ({error.strerror or error}); "
                f"the checkpoints already in {path.parent} are untouched. Free space on that file "
                "system (or write the run elsewhere with --run.root), then resume with "
                "--ckpt_path auto") from error
        raise
    fsync_directory(path.parent)


def point_link_at(link: str | Path, target: str | Path) -> None:
    """Make ``link`` a relative symbolic link to ``target``, atomically: the new link is made under
    a temporary name and renamed over the old one, so ``link`` never disappears once made."""
    link = Path(link)
    if os.path.abspath(target) == os.path.abspath(link):
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(f".{link.name}.{os.getpid()}{TEMPORARY_SUFFIX}")
    temporary.unlink(missing_ok=True)
    os.symlink(os.path.relpath(os.path.abspath(target), os.path.abspath(link.parent)), temporary)
    os.replace(temporary, link)
    fsync_directory(link.parent)


def fsync_directory(directory: str | Path) -> None:
    """Make a rename or a new file in ``directory`` durable (its entry, not only its data)."""
    handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def architecture_differences(checkpoint_hparams: Mapping[str, Any],
                             config_model: Mapping[str, Any]) -> list[str]:
    """``"<key>: checkpoint <a>, config <b>"`` for every architecture setting that differs.

    ``checkpoint_hparams`` is a checkpoint's ``hyper_parameters`` (LightningCLI stores the module
    class as ``_class_path``); ``config_model`` the config's ``model`` (``class_path`` and
    ``init_args``). Settings present on one side only are not compared.
    """
    config = {"_class_path": config_model.get("class_path"), **(config_model.get("init_args") or {})}
    differences = []
    for key in ARCHITECTURE_KEYS:
        if key not in checkpoint_hparams or key not in config:
            continue
        differences += _differences(key, checkpoint_hparams[key], config[key])
    return differences


def _differences(key: str, stored: Any, configured: Any) -> list[str]:
    if isinstance(stored, Mapping) and isinstance(configured, Mapping):
        return [line for name in sorted(set(stored) & set(configured))
                for line in _differences(f"{key}.{name}", stored[name], configured[name])]
    if stored != configured:
        return [f"{key.removeprefix('_')}: checkpoint {stored!r}, config {configured!r}"]
    return []
