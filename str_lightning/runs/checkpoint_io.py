"""The Lightning ``CheckpointIO`` every CLI run writes its checkpoints with.

Lightning's default (``TorchCheckpointIO``) writes through an fsspec transaction whose temporary
file lives in ``$TMPDIR``; when that is another file system than the run directory (local /tmp,
runs on NFS or Lustre) the final move copies into the destination, truncating it first, so a kill
or a full disk during the copy destroys the checkpoint under its final name. This plugin writes
next to the destination and renames instead (:func:`~str_lightning.runs.checkpoints.save_atomically`),
and keeps the run's ``checkpoints/last.ckpt`` linked to the checkpoint it wrote last.

A resumed fit re-saves at the step it resumed from (Lightning repeats the end of that epoch), and
with the same file name pattern that is the very file it resumed from: that save is skipped, so
the file a run resumed from is never rewritten while the run may still need it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from str_lightning.runs.checkpoints import read_checkpoint_meta, save_atomically
from str_lightning.runs.directory import RunDirectory

log = logging.getLogger(__name__)

CLASS_PATH = "str_lightning.runs.checkpoint_io.AtomicCheckpointIO"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with atomic, durable writes and a ``last.ckpt`` link.

    Args:
        run_dir: the run directory; every checkpoint written inside it becomes the target of its
            ``checkpoints/last.ckpt`` (None: no link is kept).
        resumed_from: the checkpoint this fit resumed from: a save of the same global step to
            that file is skipped (it holds that step already); a later step replaces it atomically.

    Contract: Lightning calls :meth:`save_checkpoint` on global rank 0 only. When it returns, the
    file is complete and durable under its final name and ``last.ckpt`` points at it; when it
    raises (:class:`~str_lightning.runs.checkpoints.CheckpointWriteError`), no file of the run changed.
    """

    def __init__(self, run_dir: str | None = None, resumed_from: str | None = None) -> None:
        self.run = RunDirectory(run_dir) if run_dir else None
        self.resumed_from = resumed_from

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        if self._is_resumed_file(path) and checkpoint.get("global_step") == self._resumed_step():
            log.info("not rewriting %s: this run resumed from it at the same step", path)
        else:
            save_atomically(checkpoint, path)
        if self.run is not None and self.run.contains(path):
            self.run.point_last_at(path)

    def _is_resumed_file(self, path: str | Path) -> bool:
        if not self.resumed_from:
            return False
        try:
            return os.path.samefile(path, self.resumed_from)
        except OSError:  # either file does not exist (any more)
            return False

    def _resumed_step(self) -> int:
        return read_checkpoint_meta(self.resumed_from)["global_step"]
