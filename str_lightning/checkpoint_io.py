"""The Lightning ``CheckpointIO`` every CLI run writes its checkpoints with.

Lightning's default (``TorchCheckpointIO``) writes through an fsspec transaction whose temporary
file lives in ``$TMPDIR``; when that is another file system than the run directory (local /tmp,
runs on NFS or Lustre) the final move copies into the destination, truncating it first, so a kill
or a full disk during the copy destroys the checkpoint under its final name. This plugin writes
next to the destination and renames instead (:func:`~str_lightning.checkpoints.save_atomically`),
and keeps the run's ``checkpoints/last.ckpt`` linked to the checkpoint it wrote last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from str_lightning.checkpoints import save_atomically
from str_lightning.run_directory import RunDirectory

CLASS_PATH = "str_lightning.checkpoint_io.AtomicCheckpointIO"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with atomic, durable writes and a ``last.ckpt`` link.

    Args:
        run_dir: the run directory; every checkpoint written inside it becomes the target of its
            ``checkpoints/last.ckpt`` (None: no link is kept).

    Contract: Lightning calls :meth:`save_checkpoint` on global rank 0 only. When it returns, the
    file is complete and durable under its final name and ``last.ckpt`` points at it; when it
    raises (:class:`~str_lightning.checkpoints.CheckpointWriteError`), no file of the run changed.
    """

    def __init__(self, run_dir: str | None = None) -> None:
        self.run = RunDirectory(run_dir) if run_dir else None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        save_atomically(checkpoint, path)
        if self.run is not None and self.run.contains(path):
            self.run.point_last_at(path)
